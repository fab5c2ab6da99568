#!/bin/bash
# Run campaign plans one after another in the background on one workdir, and commit the workdir's state to git
# every SAVE_EVERY seconds (default 1800) as PARTIAL, so that a session that ends or a machine that is replaced
# costs at most that much computation, not the run. (Each save that finds a new epoch commits the training
# model's checkpoint, about 4 MB for fast-cnn-half with its optimizer state: every 30 minutes over a 16 h campaign
# that is about 130 MB of git history, so not more often.) A save also runs when the chain ends. Run it again in
# each new session: it loads the committed state when the workdir is missing, waits for a campaign already running
# on the workdir, and each plan resumes where it stopped (`bench campaign run` skips what the store holds; a plan already complete is a no-op).
#
#   leaderboards/background.sh STATE WORKDIR PLAN [PLAN ...]
#   leaderboards/background.sh cifar10-regime /work/sweeps/cifar10-regime cifar10-regime cifar10-paper-regime
#
# STATE names the committed state folder (leaderboards/STATE-state, written by campaign_state.sh; plans that share
# a workdir share it). PLAN is a plan's name (leaderboards/PLAN.toml). THREADS (default 2) is the campaign's torch
# threads. Logs: WORKDIR/campaign.log (the campaigns) and WORKDIR/background.log (this script: starts, exits,
# saves). Stop with: kill -- -$(cat WORKDIR/background.pid) (the campaign resumes from its last finished epoch).
# Run from the repository root with the project's virtual environment active.
set -euo pipefail
usage="usage: background.sh STATE WORKDIR PLAN [PLAN ...]"
STATE=${1:?$usage}
WD=${2:?$usage}
shift 2
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
[ -d leaderboards ] && [ -x leaderboards/campaign_state.sh ] || { echo "run from the repository root" >&2; exit 2; }
command -v bench >/dev/null || { echo "no bench on PATH: activate the project's virtual environment" >&2; exit 2; }
for plan in "$@"; do
  [ -f "leaderboards/$plan.toml" ] || { echo "no plan leaderboards/$plan.toml" >&2; exit 2; }
done
[ -f "leaderboards/$STATE.toml" ] || { echo "no plan leaderboards/$STATE.toml (STATE is a plan's name)" >&2; exit 2; }
if [ "${BACKGROUND_RUN:-}" != 1 ] && [ -f "$WD/background.pid" ] && kill -0 "$(cat "$WD/background.pid")" 2>/dev/null; then
  echo "a background run is already driving $WD (pid $(cat "$WD/background.pid"))" >&2; exit 2
fi
THREADS=${THREADS:-2}
SAVE_EVERY=${SAVE_EVERY:-1800}
if [ ! -f "$WD/results.sqlite" ] && [ ! -f "$WD/results.jsonl" ] && [ -d "leaderboards/$STATE-state" ]; then
  leaderboards/campaign_state.sh load "$STATE" "$WD"  # a new machine: what was committed (else a first run)
fi
mkdir -p "$WD"
log() { echo "$(date -u +%FT%TZ) $*" >> "$WD/background.log"; }

running() {  # a `bench campaign run` on this workdir (this driver's own, or one started by hand)
  pgrep -f "bench campaign run .*--workdir $WD( |\$)" >/dev/null
}

save() {  # the workdir's state into the repository, committed alone (never the rest of the working tree)
  leaderboards/campaign_state.sh save "$STATE" "$WD" >/dev/null 2>&1 || { log "save failed"; return 0; }
  git add "leaderboards/$STATE-state" >/dev/null 2>&1 || true
  local n
  n=$(wc -l < "leaderboards/$STATE-state/results.jsonl")
  if git commit -q -m "PARTIAL: $STATE campaign state ($n records, weights of finished models, the last epoch checkpoint of the one training)" -- "leaderboards/$STATE-state" >/dev/null 2>&1; then
    log "saved and committed $STATE ($n records)"
  fi
}

drive() {
  trap 'log "driver stopped"; exit 0' TERM INT
  while running; do sleep 30; done  # a campaign already on this workdir: after it
  for plan in "$@"; do
    log "start $plan"
    set +e
    OMP_NUM_THREADS=$THREADS bench campaign run "leaderboards/$plan.toml" --workdir "$WD" --threads "$THREADS" \
      --no-progress >> "$WD/campaign.log" 2>&1
    rc=$?
    set -e
    log "$plan exited with $rc"
    [ $rc -eq 0 ] || { log "stopping the chain: $plan failed (see campaign.log)"; break; }
  done
}

saver() {
  local driver=$1
  while kill -0 "$driver" 2>/dev/null; do
    sleep "$SAVE_EVERY" & wait $! || true
    save
  done
  save  # the last records and weights of the chain
  log "saver done"
}

if [ "${BACKGROUND_RUN:-}" = 1 ]; then  # the detached process: drive the plans, save alongside
  drive "$@" &
  driver=$!
  saver "$driver" &
  wait
  exit 0
fi
BACKGROUND_RUN=1 setsid nohup "$0" "$STATE" "$WD" "$@" > /dev/null 2>&1 < /dev/null &
echo $! > "$WD/background.pid"
log "background run $(cat "$WD/background.pid"): state $STATE, plans $*, threads $THREADS, saves every $SAVE_EVERY s"
echo "driving $* on $WD in the background (pid $(cat "$WD/background.pid")); logs $WD/campaign.log and $WD/background.log"
