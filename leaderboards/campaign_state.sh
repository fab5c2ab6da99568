#!/bin/bash
# Save a campaign's state into the repository, or load it into a workdir: a machine lost between
# sessions takes its workdir with it (it happened once: leaderboards/README.md), and only what is committed
# survives. The state is what a resumed sweep and the composer need and cannot rebuild cheaply: the trained
# weights (models/, vaes/: weights.safetensors + meta.json; a model still training: its last epoch checkpoint),
# the records (`bench export --retired` into results.jsonl: one JSON line each, retired ones with their
# retired_reason), passes.tsv, sweep.log, the campaign state file and the workdir's probes (probes.jsonl: `bench
# campaign probe`) and pauses.log (when the campaign was stopped with SIGSTOP, and why: the times measured before
# the stop-aware clock include those pauses). Not the decoded data cache (rebuilt from the archive).
#
#   leaderboards/campaign_state.sh save NAME WORKDIR   # then commit leaderboards/NAME-state
#   leaderboards/campaign_state.sh load NAME WORKDIR   # before resuming on a new machine; keeps what WORKDIR has
#
# NAME is the plan's name (leaderboards/NAME.toml), e.g. cifar10-regime (/work/sweeps/cifar10-regime, which
# cifar10-paper-regime shares: one state folder holds both plans' state files). Run from the repo root.
# background.sh runs plans in the background and calls this every 30 minutes.
set -euo pipefail
usage="usage: campaign_state.sh save|load NAME WORKDIR"
cmd=${1:?$usage}
NAME=${2:?$usage}
WD=${3:?$usage}
STATE=leaderboards/$NAME-state
[ -f "leaderboards/$NAME.toml" ] || { echo "no plan leaderboards/$NAME.toml" >&2; exit 2; }
[ -d leaderboards ] || { echo "run from the repository root" >&2; exit 2; }
# before anything is copied: a save cut short at `bench export` would leave weights newer than the records
command -v bench >/dev/null || { echo "campaign_state.sh: bench is not on PATH (activate the project's virtualenv)" >&2; exit 2; }

case "$cmd" in
  save)
    [ -f "$WD/results.sqlite" ] || [ -f "$WD/results.jsonl" ] || { echo "no sweep in $WD (no results.sqlite)" >&2; exit 2; }
    mkdir -p "$STATE"
    for kind in models vaes; do
      [ -d "$WD/$kind" ] || continue
      for dir in "$WD/$kind"/*/; do
        key=$(basename "$dir"); dest="$STATE/$kind/$key"
        if [ -f "$dir/weights.safetensors" ] && [ -f "$dir/meta.json" ]; then
          mkdir -p "$dest"; rm -f "$dest/checkpoint.safetensors"
          cp -p "$dir/weights.safetensors" "$dir/meta.json" "$dest/"
        elif [ -f "$dir/checkpoint.safetensors" ]; then  # still training: its last finished epoch
          mkdir -p "$dest"; cp -p "$dir/checkpoint.safetensors" "$dest/"
        fi
      done
    done
    bench export "$STATE/results.jsonl" --retired --workdir "$WD" >/dev/null  # a consistent snapshot, even mid-write
    rm -f "$STATE/retired.jsonl"  # the export holds the retired records too
    # every plan's state file: plans that share a workdir (cifar10-regime, cifar10-paper-regime) share this folder
    for f in passes.tsv sweep.log probes.jsonl pauses.log background.log "$WD"/campaign-*.jsonl; do  # probes: bench campaign probe; background.log: when the driver ran
      f=$(basename "$f")
      [ -f "$WD/$f" ] && cp -p "$WD/$f" "$STATE/$f"
    done
    echo "saved $(find "$STATE" -name '*.safetensors' | wc -l) weight file(s) and $(wc -l < "$STATE/results.jsonl") record(s) into $STATE; commit it"
    ;;
  load)
    [ -d "$STATE" ] || { echo "no saved state in $STATE" >&2; exit 2; }
    mkdir -p "$WD"
    if [ -f "$WD/results.sqlite" ] || [ -f "$WD/results.jsonl" ]; then
      echo "$WD already holds results: loading only the weights it lacks" >&2
      (cd "$STATE" && find models vaes -type f 2>/dev/null) | while read -r f; do
        [ -e "$WD/$f" ] || { mkdir -p "$(dirname "$WD/$f")"; cp -p "$STATE/$f" "$WD/$f"; }
      done
    else
      cp -rp "$STATE"/. "$WD"/
      rm -f "$WD/results.jsonl" "$WD/retired.jsonl"
      bench import "$STATE/results.jsonl" --workdir "$WD"
      [ -f "$STATE/retired.jsonl" ] && bench import "$STATE/retired.jsonl" --workdir "$WD"  # a state saved before SQLite
    fi
    echo "loaded $STATE into $WD; resume with bench campaign run leaderboards/$NAME.toml --workdir $WD"
    ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
