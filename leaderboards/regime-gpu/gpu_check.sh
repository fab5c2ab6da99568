#!/usr/bin/env bash
# The regime's GPU check (issue 30, item 4), run once on a lent H200 through the device tool:
#   1. the cifar-regime preset's ERM and VarMixup training with --device cuda, alone on the GPU (epoch times);
#   2. then, with the time left, a sizing probe run as parallel `bench run`s: ERM / Mixup / AT accuracy against epochs,
#      width and batch size, and the VAE fidelity ladder (test PSNR per epoch), to choose the CPU budget's epochs.
# Probe numbers size the CPU plan; the committed tables come from CPU runs. DRY=1 runs it tiny on the CPU.
# Needs: .devdata/cifar10-jpeg.tar.gz (a copy of ../shared's), .whl/ (typer, rich, torchattacks... for Python 3.12).
set -u
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
if [ -d .whl ] && [ "${DRY:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD/src || exit 1
else
  export PYTHONPATH=$PWD/src
fi
W=${W:-/tmp/w}; DATA=imagefolder:$PWD/.devdata/cifar10-jpeg.tar.gz
DEV=cuda; SMALL=""
if [ "${DRY:-0}" = 1 ]; then DEV=cpu; SMALL="--train-subset 1024 --test-subset 100 --vae-epochs 1"; fi
B="python3 -m varmixup_bench.cli run --preset cifar-regime --dataset $DATA --device $DEV --workdir $W --no-progress $SMALL"
T0=$(date +%s)
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; python3 -c 'import torch; print(torch.__version__)'; } \
  > "$OUT/machine.txt" 2>&1
# 1. the named check, alone on the GPU (SKIP_CHECK=1: a second probe)
[ "${SKIP_CHECK:-0}" = 1 ] || for d in erm varmixup; do
  E=""; [ "${DRY:-0}" = 1 ] && E="--epochs 1"
  timeout 200 $B --defense $d --attack clean $E > "$OUT/check-$d.log" 2>&1
  echo "check $d rc=$? at $(( $(date +%s) - T0 )) s" | tee -a "$OUT/progress.txt"
done
# 2. the sizing probe: one `bench run` per line of $JOBS, PAR at a time
cp "${JOBS:-leaderboards/regime-gpu/probe1.txt}" /tmp/jobs.txt
if [ "${DRY:-0}" = 1 ]; then sed -i -e 's/--epochs [0-9]*/--epochs 1/' -e 's/--vae-epochs [0-9]*//' -e 's/--test-subset [0-9]*//' /tmp/jobs.txt; head -3 /tmp/jobs.txt > /tmp/j && mv /tmp/j /tmp/jobs.txt; fi
sed -i 's/[[:space:]]*$//' /tmp/jobs.txt  # xargs -L joins a line that ends in a blank to the next
LEFT=$(( ${BUDGET:-500} - ($(date +%s) - T0) ))
echo "probe: $LEFT s left" | tee -a "$OUT/progress.txt"
mkdir -p /tmp/plogs
nl -w2 -s' ' /tmp/jobs.txt | timeout $LEFT xargs -P ${PAR:-6} -L 1 bash -c \
  'n=$0; '"$B"' "$@" > /tmp/plogs/job$n.log 2>&1; echo "job $n rc=$? $*" >> '"$OUT"'/progress.txt'
echo "probe done at $(( $(date +%s) - T0 )) s" | tee -a "$OUT/progress.txt"
python3 -m varmixup_bench.cli export "$OUT/records.jsonl" --workdir $W > /dev/null 2>&1
python3 - "$W" "$OUT/models.json" <<'PY'
import json, sys, glob, os
rows = []
for kind in ("models", "vaes"):
    for f in glob.glob(f"{sys.argv[1]}/**/{kind}/*/meta.json", recursive=True):
        m = json.load(open(f)); m.pop("versions", None); rows.append({"kind": kind, **m})
json.dump(rows, open(sys.argv[2], "w"), indent=1, default=str)
PY
tar czf "$OUT/logs.tgz" -C /tmp plogs 2>/dev/null
echo "all done at $(( $(date +%s) - T0 )) s" | tee -a "$OUT/progress.txt"
