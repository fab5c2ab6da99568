#!/bin/bash
# Run a command while the campaign on WORKDIR is stopped (SIGSTOP, then SIGCONT however the command ends), so that
# tests, a clean-clone CI or a rehearsal do not share the two cores with it: contention slows its epochs and the
# page's wall time counts that, while stopped time is not counted (core.clock). Each stop and resume is logged in
# WORKDIR/pauses.log, which campaign_state.sh saves with the state.
#
#   leaderboards/paused.sh WORKDIR COMMAND [ARG ...]
#   leaderboards/paused.sh /work/sweeps/cifar10-regime python -m pytest -q tests/test_campaign.py
set -uo pipefail
usage="usage: paused.sh WORKDIR COMMAND [ARG ...]"
WD=${1:?$usage}
shift
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
P=$(pgrep -f "bench campaign run .*--workdir $WD( |\$)" | head -1)
log() { mkdir -p "$WD" && echo "$(date -u +%FT%TZ) $*" >> "$WD/pauses.log"; }
if [ -n "$P" ]; then
  kill -STOP "$P" && log "STOP $P ($*)"
  trap 'kill -CONT "$P" 2>/dev/null; log "CONT $P"' EXIT
fi
"$@"
