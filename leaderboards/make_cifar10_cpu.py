"""Compose leaderboards/cifar10-cpu.{csv,md} and the ε plot from the sweep's workdir (run from the repo root).

    python leaderboards/make_cifar10_cpu.py WORKDIR "WALL TIME TEXT"

Every number comes from `bench leaderboard` / `bench diagnose` / `bench plot` on WORKDIR's records; this
script only adds the header (the exact commands) and lists cells the sweep has not recorded yet.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

DEFENSES = ("erm,mixup,mixup+mi,varerm,varerm+varmi,varmixup,varmixup+varmi,adv-varmixup,adv-varmixup+adv-varmi,"
            "at,trades,iat,iat+mi").split(",")
PASSES = ["clean,pgd10", "tpgd10,adaptive-pgd10,ece", "corruptions", "pgd50,spsa"]
EPS_CURVE = ["2/255", "4/255", "8/255", "16/255"]
OUT = Path("leaderboards")


def bench(*args: str) -> str:
    exe = shutil.which("bench") or str(Path(sys.executable).with_name("bench"))
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True).stdout


def missing_cells(records: list[dict]) -> list[str]:
    have = {(r["defense"], r["attack"]) for r in records}
    eps_have = {(r["defense"], round(r["eps"] * 255)) for r in records if r["attack"] == "pgd10"}
    out = []
    for attack in [a for p in PASSES for a in p.split(",")]:
        lacking = [d for d in DEFENSES if (d, attack) not in have]
        if lacking:
            out.append(f"- `{attack}`: {', '.join(lacking)}")
    for e in EPS_CURVE:
        lacking = [d for d in DEFENSES if (d, int(e.split("/")[0])) not in eps_have]
        if lacking:
            out.append(f"- `pgd10` at ε = {e}: {', '.join(lacking)}")
    return out


def main(workdir: str, wall: str) -> None:
    bench("leaderboard", "--workdir", workdir, "--format", "csv", "--layout", "long", "-o", str(OUT / "cifar10-cpu.csv"))
    wide = bench("leaderboard", "--workdir", workdir, "--format", "md", "--reference", "paper:cifar10")
    diag = bench("diagnose", "--workdir", workdir)
    bench("plot", "eps", "--attack", "pgd10", "--workdir", workdir, "--output", str(OUT / "cifar10-cpu-eps.png"))
    bench("leaderboard", "--workdir", workdir, "--format", "robustbench", "--output", str(OUT / "cifar10-cpu-robustbench"))
    records = [json.loads(line) for line in open(Path(workdir) / "results.jsonl") if line.strip()]
    missing = missing_cells(records)
    passes = " ".join(PASSES)
    header = f"""# CIFAR-10 on a 2-core CPU (`cifar-cpu` preset)

Real CIFAR-10 (`../shared/datasets/cifar10-jpeg.tar.gz`, a JPEG re-encoding), small CNN, stratified 5,000
training and 500 test images (SPSA: first 50 test images, 20 iterations x 64 samples; corruptions: first 200,
generated with CIFAR-10-C parameters), adaptive PGD with N_A = 8, one trial, seed 0. Produced by

```
D={",".join(DEFENSES)}
for A in {passes}; do
  bench sweep --preset cifar-cpu --datasets imagefolder:../shared/datasets/cifar10-jpeg.tar.gz \\
    --defenses $D --attacks $A --workdir {workdir} --no-progress
done
bench sweep --preset cifar-cpu --datasets imagefolder:../shared/datasets/cifar10-jpeg.tar.gz \\
  --defenses $D --attacks pgd10 --eps {",".join(EPS_CURVE)} --workdir {workdir} --no-progress
bench leaderboard --workdir {workdir} --format md --reference paper:cifar10
bench plot eps --attack pgd10 --workdir {workdir} --output leaderboards/cifar10-cpu-eps.png
bench leaderboard --workdir {workdir} --format robustbench --output leaderboards/cifar10-cpu-robustbench
```

Wall time on this project's 2-core machine: {wall}. The `paper:` columns are the paper's own numbers
(ResNet-34, full CIFAR-10, 100-350 epochs, PGD-10 with step 8/255, Tables 2 and 4) for orientation only: this
run is a small CNN on 10% of the data with PGD step 2/255, so the columns are not comparable number for number.

"""
    body = header + wide
    if missing:
        body += ("\n## Missing cells\n\nNot recorded yet; re-running the commands above resumes the sweep and "
                 "fills only these:\n\n" + "\n".join(missing) + "\n")
    body += "\n## Gradient-masking diagnostics (`bench diagnose`)\n\n```\n" + diag + "```\n"
    notes = OUT / "cifar10-cpu-notes.md"
    if notes.exists():
        body += "\n" + notes.read_text()
    (OUT / "cifar10-cpu.md").write_text(body)
    print(f"{len(records)} records, {len(missing)} missing line(s)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
