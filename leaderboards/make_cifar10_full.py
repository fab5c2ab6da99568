"""Compose leaderboards/cifar10-cpu-full.{csv,md}, its plots, RobustBench JSONs and report pages from the
workdir of leaderboards/cifar10_full.sh (run from the repo root):

    python leaderboards/make_cifar10_full.py [WORKDIR]      (default /work/sweeps/cifar10-full)

Every number comes from `bench leaderboard` / `bench diagnose` / `bench plot` / the records and model metadata
in WORKDIR; this script adds the header (exact commands, commit, machine, measured wall times and the training
budget table) and, while the sweep is incomplete, a PARTIAL banner listing the cells not recorded yet.
"""
from __future__ import annotations

import json
import platform
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from statistics import NormalDist

OUT = Path(__file__).resolve().parent  # leaderboards/, wherever the script is run from
ROOT = OUT.parent  # the repo root: bench runs there, so DATA's relative path resolves
NAME = "cifar10-cpu-full"
DRIVER = OUT / "cifar10_full.sh"
NOTES = OUT / f"{NAME}-notes.md"
FIRST_RUN = OUT / f"{NAME}-first-run.json"  # the measured totals of the run whose workdir was lost (README)


DATA = "imagefolder:../shared/datasets/cifar10-jpeg.tar.gz"


def _rel(path: Path) -> str:
    """An output path as bench, run from the repo root, is given it (and prints it into the tables)."""
    return str(path.relative_to(ROOT))


def bench(*args: str) -> str:
    import os

    exe = shutil.which("bench") or str(Path(sys.executable).with_name("bench"))
    env = {**os.environ, "COLUMNS": "220"}  # rich tables unwrapped in the captured output
    return subprocess.run([exe, *args], capture_output=True, text=True, check=True, env=env, cwd=ROOT).stdout


def vae_section(workdir: str) -> str:
    """`bench vae show` (cached VAEs only, never trains) for the preset's VAE, the latent-32 comparison and the
    adversarial VAE: test pixel MSE and a figure of test images over reconstructions each."""
    out = []
    for tag, extra in (("latent64", []), ("latent32", ["--latent-dim", "32"]), ("adv-latent64", ["--adversarial"])):
        png = OUT / f"{NAME}-vae-{tag}.png"
        try:
            text = bench("vae", "show", "--preset", "cifar-cpu-full", "--dataset", DATA, "--workdir", workdir,
                         "--no-progress", "-o", _rel(png), *extra)
        except subprocess.CalledProcessError:
            continue  # not trained (yet)
        command = " ".join(["bench vae show --preset cifar-cpu-full", *extra])
        out.append(f"`{command}` (figure: `{png.name}`, test images over their reconstructions):\n\n"
                   f"```\n{text.strip()}\n```\n")
    return "\n".join(out)


def _cell(defense: str, attack: str, seed: int, norm: str, eps: float | None) -> tuple:
    from varmixup_bench.attacks.spec import attack_class

    uses_eps = attack_class(attack).uses_eps
    return (defense, attack, int(seed), norm.lower() if uses_eps else "none", round(eps, 6) if uses_eps else None)


def expected_cells() -> list[tuple]:
    """(defense, attack, seed, norm, eps) of every cell the driver's passes ask for, read from the driver."""
    from varmixup_bench.core.parsing import parse_eps_list
    from varmixup_bench.config.presets import get_preset

    preset = get_preset("cifar-cpu-full")
    text = DRIVER.read_text()
    env = {}
    for line in text.splitlines():
        if "=" in line and line.split("=", 1)[0] in ("D_ALL", "D_SEEDS", "R_ALL", "R_SEEDS"):
            key, value = line.split("=", 1)
            env[key] = value.split()[0]
    cells = []
    for line in text.splitlines():
        if not line.startswith("pass "):
            continue
        words = line.split()
        args = dict(zip(words[2::2], words[3::2]))
        norm = args.get("--norm", "linf")
        eps_list = parse_eps_list(args["--eps"], norm) if "--eps" in args else [preset.eps_for(norm)]
        for attack in args["--attacks"].split(","):
            for d in env[args["--defenses"].lstrip("$")].split(","):
                for s in args["--seeds"].split(","):
                    cells += [_cell(d, attack, int(s), norm, e) for e in eps_list]
    return list(dict.fromkeys(cells))


def missing_cells(records: list[dict]) -> list[str]:
    from varmixup_bench.views.leaderboard import eps_text

    have = {_cell(r["defense"], r["attack"], r["seed"], r.get("norm") or "Linf", r["eps"]) for r in records}
    lacking: dict[tuple, list[str]] = {}
    for d, a, s, norm, eps in expected_cells():
        if (d, a, s, norm, eps) not in have:
            where = "" if eps is None else " at " + eps_text(eps, "L2" if norm == "l2" else "Linf")
            lacking.setdefault((a, where), []).append(f"{d} (seed {s})")
    return [f"- `{a}`{where}: {', '.join(v)}" for (a, where), v in lacking.items()]


def driver_steps(text: str) -> list[str]:
    """The names of the driver's steps that are not `bench sweep` passes (`timed NAME ...` lines: the report
    pages, the latent-32 VAE), with `$D` expanded over the `for D in ...; do` loop around it."""
    steps, loop = [], None
    for line in text.splitlines():
        found = re.match(r"\s*for D in ([^;]+); do", line)
        if found:
            loop = found.group(1).split()
        elif line.strip() == "done":
            loop = None
        found = re.match(r'\s*timed\s+"?([^"\s]+)"?\s', line)
        if found:
            name = found.group(1)
            names = [name.replace("$D", d) for d in loop] if "$D" in name and loop else [name]
            steps += [n for n in names if "$" not in n]  # `pass`'s own `timed "$name"`: the passes are cells
    return steps


def missing_steps(workdir: Path) -> list[str]:
    """Driver steps beyond the sweep passes (report pages, the latent-32 VAE) with no finished row in passes.tsv."""
    finished = {name for name, _start, _end, _seconds, rc in pass_rows(workdir) if rc == "0"}
    return [f"- step `{name}` of `cifar10_full.sh`" for name in driver_steps(DRIVER.read_text()) if name not in finished]


def trained_models(workdir: Path) -> list[tuple]:
    """(model, seed, epochs, seconds) of every trained classifier and VAE in the workdir, read once for the budget
    table and the computation total."""
    rows = []
    for meta_path in sorted((workdir / "models").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        cfg = meta.get("config", {})
        if "seconds" not in meta:
            continue
        rows.append((cfg.get("recipe", "?"), cfg.get("seed", 0), cfg.get("epochs"), model_seconds(meta)))
    for meta_path in sorted((workdir / "vaes").glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        cfg = meta.get("config", {})
        name = ("adv-VAE" if cfg.get("adversarial") else "VAE") + f" (latent {cfg.get('latent_dim')})"
        rows.append((name, cfg.get("seed", 0), cfg.get("epochs"), meta.get("seconds", float("nan"))))
    return rows


def training_budget(rows: list[tuple], note: str = "") -> str:
    """One line per trained classifier and VAE: recipe, seed, epochs, measured seconds and seconds per epoch."""
    lines = ["| model | seed | epochs | seconds | s / epoch |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {m} | {s} | {e} | {t:.0f} | {t / e:.0f} |" for m, s, e, t in sorted(rows, key=lambda r: (r[1], r[0]))]
    total = sum(r[3] for r in rows if r[3] == r[3])
    return "\n".join(lines) + f"\n\nTraining in all: {total / 3600:.2f} h. {note}".rstrip() + "\n"


def model_seconds(meta: dict) -> float:
    """A classifier's training seconds: the sum of the per-epoch seconds in its history (kept across a resume from
    a checkpoint), else (models trained before epochs recorded them) the meta's seconds of the run that saved it."""
    hist = meta.get("history", [])
    if hist and all("seconds" in h for h in hist):
        return float(sum(h["seconds"] for h in hist))
    return float(meta["seconds"])


def first_run_section() -> tuple[str, float, float]:
    """The paragraph on the sweep's first run (its workdir lost with its machine; FIRST_RUN holds its measured
    totals as its last committed table printed them, and its models' training rows) and its (wall, computation)
    seconds; empty and zero where there was none."""
    if not FIRST_RUN.exists():
        return "", 0.0, 0.0
    run = json.loads(FIRST_RUN.read_text())
    rows = [(r["model"], r["seed"], r["epochs"], float(r["seconds"])) for r in run["training"]]
    stand = sorted({r[1] for r in rows} - {0})
    text = (f"\n### The first run (workdir lost)\n\nThis is the sweep's second run. The first one's workdir "
            f"(weights, `results.jsonl`, `passes.tsv`, `sweep.log`) was lost with its machine between sessions 8 "
            f"and 9; from {run['source']}: **{run['wall_h']:.2f} h of wall time** ({run['first_write'][:16]} to "
            f"{run['last_write'][:16]} UTC), of it {run['computation_h']:.2f} h computation ({run['training_h']:.2f} h "
            f"training, {run['evaluation_h']:.2f} h evaluation). {run['uncommitted'][0].upper()}{run['uncommitted'][1:]}. "
            f"{run['restored'][0].upper()}{run['restored'][1:]}: the cells of seeds {', '.join(map(str, stand))} "
            f"below are the first run's (their models are lost, their per-image records are not), every seed-0 "
            f"cell is this run's. Its models, as measured then:\n\n"
            + training_budget(rows, "The latent-32 VAE was the latent-size measurement. Its note then: seconds as "
                              "measured: during the first session development and tests shared the 2 cores, so "
                              "those models took up to twice their idle time. Models saved before epochs recorded "
                              "their own seconds count only the run that saved them (a model resumed after a "
                              "session's end misses its earlier epochs)."))
    return text, run["wall_h"] * 3600, run["computation_h"] * 3600


def this_runs(records: list[dict]) -> list[dict]:
    """The records this run made: those restored from the first run's CSV (`bench restore`; retired since or not)
    are the first run's time, counted in its totals, not this run's."""
    return [r for r in records if "restored_from" not in r]


def compute_time(models: list[tuple], records: list[dict]) -> tuple[float, float]:
    """(training, evaluation) seconds as measured by the harness: every model's and VAE's seconds, and every
    record's `seconds`. Unlike pass wall times, a pass cut by a session's end and resumed in the next one is
    counted once, without the gap."""
    train = sum(t for *_, t in models if t == t)  # a VAE without its seconds (NaN) counts 0
    return train, sum(float(r.get("seconds") or 0.0) for r in records)


def elapsed_time(workdir: Path, records: list[dict], max_gap: float = 3600.0) -> tuple[float, float, float, list]:
    """The sweep's wall time: (seconds, first, last, skipped) from its writes in the workdir (files, records'
    timestamps, the passes logged in sweep.log), summing the intervals between consecutive writes but skipping
    those longer than `max_gap` (the machine idle between sessions; no cell or epoch here runs that long).
    It includes what computation seconds leave out: loading, and the minutes the sweep was paused for tests."""
    events = []
    for p in workdir.rglob("*"):
        try:
            if p.is_file():
                events.append(p.stat().st_mtime)
        except FileNotFoundError:  # a running sweep's temporary file, renamed between listing and stat
            continue
    events += [datetime.fromisoformat(r["timestamp"]).timestamp() for r in records if r.get("timestamp")]
    log = workdir / "sweep.log"
    if log.exists():
        events += [datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()
                   for t in re.findall(r"^== (\S+) ", log.read_text(), re.M)]
    events.sort()
    if not events:
        return 0.0, 0.0, 0.0, []
    steps = [(a, b - a) for a, b in zip(events, events[1:])]
    skipped = [(a, gap) for a, gap in steps if gap > max_gap]
    return sum(gap for _, gap in steps if gap <= max_gap), events[0], events[-1], skipped


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def pass_rows(workdir: Path) -> list[tuple[str, ...]]:
    """passes.tsv's rows, (name, start, end, seconds, exit status), one per finished driver step; [] before any."""
    path = workdir / "passes.tsv"
    return [tuple(row.split("\t")) for row in path.read_text().splitlines()] if path.exists() else []


def cells_run(workdir: Path) -> dict[tuple[str, str], int]:
    """(pass name, start) -> the cells its `bench sweep` ran, from sweep.log ('== START pass NAME: …' followed by
    'sweep: K cell(s) run, …')."""
    log = workdir / "sweep.log"
    out, current = {}, None
    for line in (log.read_text().splitlines() if log.exists() else []):
        if m := re.match(r"== (\S+) pass (\S+): ", line):
            current = (m.group(2), m.group(1))
        elif (m := re.match(r"sweep: (\d+) cell\(s\) run", line)) and current is not None:
            out[current], current = int(m.group(1)), None
    return out


def pass_times(workdir: Path) -> tuple[str, float]:
    """The passes.tsv table and its total seconds. A pass that a resumed driver found complete (0 cells run, a few
    seconds of loading) is counted in the total but not listed."""
    rows = pass_rows(workdir)
    if not rows:
        return "(no pass finished yet)\n", 0.0
    cells = cells_run(workdir)
    lines = ["| pass | start (UTC) | end (UTC) | seconds | cells run | exit |", "| --- | --- | --- | --- | --- | --- |"]
    total, idle = 0.0, []
    for name, start, end, seconds, rc in rows:
        total += float(seconds)
        k = cells.get((name, start))
        if k == 0 and rc == "0":
            idle.append(float(seconds))
            continue
        lines.append(f"| {name} | {start} | {end} | {seconds} | {'—' if k is None else k} | {rc} |")
    note = "" if not idle else (f"\n{len(idle)} pass{'es' if len(idle) > 1 else ''} of resumed drivers that found all their cells stored "
                                f"({min(idle):.0f}–{max(idle):.0f} s each, {sum(idle):.0f} s in all) are counted "
                                "in the total but not listed.\n")
    return "\n".join(lines) + "\n" + note, total


RANDOMISED = ("mixup+mi", "varerm+varmi", "varmixup+varmi", "adv-varmixup+adv-varmi", "iat+mi")
# (a, b): each side is (defense, attack, metric); the table tests a - b, paired on the same 1,000 images (seed 0)
CLAIMS = (
    [((d, "adaptive-pgd10", "robust"), (d, "pgd10", "robust")) for d in RANDOMISED]  # adaptive below oblivious?
    + [((d, "adaptive-pgd10", "worst"), (d, "adaptive-pgd10", "robust")) for d in RANDOMISED]  # luck of the draw?
    + [((d, "adaptive-apgd", "robust"), (d, "adaptive-pgd10", "robust")) for d in RANDOMISED]  # APGD stronger?
    + [((d, "surrogate-pgd50", "robust"), (d, "adaptive-pgd10", "robust")) for d in RANDOMISED]  # BPDA-style?
    + [(("at", "spsa", "robust"), ("at", "pgd10", "robust")),  # black-box not below white-box?
       (("varmixup+varmi", "spsa", "robust"), ("varmixup+varmi", "adaptive-pgd10", "robust")),
       (("varmixup", "corruptions", "robust"), ("mixup", "corruptions", "robust")),  # the paper's Table 4 claim
       (("varmixup", "corruptions", "robust"), ("erm", "corruptions", "robust"))]
    + [(("varmixup+varmi", "adaptive-pgd10", "robust"), ("mixup+mi", "adaptive-pgd10", "robust")),
       (("varmixup+varmi", "adaptive-pgd10", "robust"), ("varerm+varmi", "adaptive-pgd10", "robust")),
       (("adv-varmixup+adv-varmi", "adaptive-pgd10", "robust"), ("varmixup+varmi", "adaptive-pgd10", "robust")),
       (("varmixup+varmi", "adaptive-pgd10", "robust"), ("at", "pgd10", "robust")),
       (("adv-varmixup+adv-varmi", "adaptive-pgd10", "robust"), ("at", "pgd10", "robust")),
       (("iat+mi", "adaptive-pgd10", "robust"), ("iat", "pgd10", "robust")),
       (("trades", "pgd10", "robust"), ("at", "pgd10", "robust")),
       (("varmixup+varmi", "clean", "clean"), ("varmixup", "clean", "clean")),
       (("mixup+mi", "clean", "clean"), ("mixup", "clean", "clean")),
       (("varmixup", "clean", "clean"), ("mixup", "clean", "clean")),
       (("at", "clean", "clean"), ("erm", "clean", "clean"))]
)


def _seed_cell(records: list[dict], defense: str, attack: str, seed: int = 0) -> dict | None:
    """The latest L-inf record of (defense, attack) for one training seed at the preset's ε (clean and corruptions,
    which have no ε-ball: any)."""
    from varmixup_bench.config.presets import get_preset

    eps = get_preset("cifar-cpu-full").eps_for(None, "cifar10")  # CIFAR-10's default radius, 8/255
    hits = [r for r in records if r["defense"] == defense and r["attack"] == attack
            and int(r.get("seed", 0)) == seed
            and (attack in ("clean", "corruptions") or ((r.get("norm") or "Linf") == "Linf" and abs(float(r["eps"]) - eps) < 1e-9))]
    return max(hits, key=lambda r: r.get("timestamp", "")) if hits else None


OTHER_SEEDS = (1, 2)


def comparisons(records: list[dict]) -> str:
    """The paired tests behind the notes' claims, on seed 0: a − b in points, its standard error, p (exact McNemar
    on 0/1 outcomes, else a z test on per-image fractions) and whether it is beyond noise by the harness's rule
    (|z| > 2); then the same difference on each other training seed where both cells exist (a claim that holds on
    seed 0 alone rests on one model)."""
    from varmixup_bench.results.stats import compare_records

    lines = ["| a | b | a − b (points) | SE | p | beyond noise | seeds 1, 2: a − b (* beyond noise) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]

    def paired(a: tuple, b: tuple, seed: int):  # the test of a - b on one training seed, None without both cells
        ra, rb = _seed_cell(records, a[0], a[1], seed), _seed_cell(records, b[0], b[1], seed)
        return None if ra is None or rb is None else compare_records(ra, rb, (a[2], b[2]))

    for a, b in CLAIMS:
        tests = {seed: paired(a, b, seed) for seed in (0, *OTHER_SEEDS)}
        c = tests.pop(0)
        if c is None:
            continue
        (da, aa, wa), (db, ab, wb) = a, b
        verdict = "yes" if abs(c.z) > 2 else "no"
        others = [f"{o.diff:+.1f}{'*' if abs(o.z) > 2 else ''}" for o in tests.values() if o is not None]
        lines.append(f"| {da} {aa} ({wa}) | {db} {ab} ({wb}) | {c.diff:+.1f} | {c.se:.1f} | {c.p:.2g} | {verdict} | "
                     f"{', '.join(others) or '—'} |")
    return "\n".join(lines) + "\n"


SEED_PAIRS_Z = NormalDist().inv_cdf(1 - 0.05 / (2 * 3))  # two-sided 5 %, Bonferroni over three seed pairs: 2.394


def seed_spread(records: list[dict]) -> str:
    """Every cell the driver runs on several training seeds, seed by seed with its 95 % interval, and whether
    the seeds differ beyond noise: the largest gap (highest seed − lowest) tested paired on the same images, at
    |z| > SEED_PAIRS_Z (Bonferroni over the three seed pairs). The ×S cells of the table are these seeds' means."""
    from varmixup_bench.results.stats import compare_records, format_interval

    pairs = list(dict.fromkeys((d, a) for d, a, seed, *_ in expected_cells() if seed != 0))
    lines = ["| defense | cell | seed 0 | seed 1 | seed 2 | highest − lowest (points) | SE | seeds differ |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for d, a in pairs:
        if a == "ece":
            continue  # a calibration error, not a proportion of images
        which = "clean" if a == "clean" else "robust"
        cells = {seed: _seed_cell(records, d, a, seed) for seed in (0, *OTHER_SEEDS)}
        have = {seed: r for seed, r in cells.items() if r is not None}
        if len(have) < 2:
            continue
        key = f"{which}_acc"
        shown = [format_interval(r[key], r[f"{key}_ci_low"], r[f"{key}_ci_high"]) if r else "—"
                 for r in cells.values()]
        hi = max(have.values(), key=lambda r: r[key])
        lo = min(have.values(), key=lambda r: r[key])
        c = compare_records(hi, lo, (which, which))
        lines.append(f"| {d} | {a} | {' | '.join(shown)} | {c.diff:+.1f} | {c.se:.1f} | "
                     f"{'yes' if abs(c.z) > SEED_PAIRS_Z else 'no'} |")
    return "\n".join(lines) + "\n"


def main(workdir: str = "/work/sweeps/cifar10-full") -> None:
    wd = Path(workdir).resolve()  # bench runs from the repo root: a relative workdir is taken from here first
    workdir = str(wd)
    from varmixup_bench.results.store import ResultStore

    store = ResultStore(wd)
    records = store.records()
    retired = store.retired()  # records found wrong after they ran (`bench retire`): their time was spent
    bench("leaderboard", "--workdir", workdir, "--format", "csv", "--layout", "long", "-o", _rel(OUT / f"{NAME}.csv"))
    wide = bench("leaderboard", "--workdir", workdir, "--format", "md", "--reference", "paper:cifar10")
    diag = bench("diagnose", "--workdir", workdir)
    bench("plot", "eps", "--attack", "pgd10", "--workdir", workdir, "--output", _rel(OUT / f"{NAME}-eps.png"))
    shutil.rmtree(OUT / f"{NAME}-robustbench", ignore_errors=True)  # a defense whose cells were retired leaves
    bench("leaderboard", "--workdir", workdir, "--format", "robustbench", "--output", _rel(OUT / f"{NAME}-robustbench"))
    reports = sorted((wd / "reports").glob("*/report.md")) if (wd / "reports").exists() else []
    for rep in reports:
        shutil.copytree(rep.parent, OUT / f"{NAME}-reports" / rep.parent.name, dirs_exist_ok=True)
    missing = missing_cells(records) + missing_steps(wd)
    passes, seconds = pass_times(wd)
    models = trained_models(wd)
    ours = this_runs(records + retired)
    train_s, eval_s = compute_time(models, ours)
    retired_ours = this_runs(retired)
    retired_s = sum(float(r.get("seconds") or 0.0) for r in retired_ours)
    retired_note = "" if not retired_ours else (
        f" It includes {retired_s / 3600:.2f} h on {len(retired_ours)} record(s) retired after they ran "
        "(`retired.jsonl`, each with its reason; `leaderboards/README.md`).")
    wall_s, first, last, skipped = elapsed_time(wd, ours)
    first_run, first_wall_s, first_compute_s = first_run_section()
    both = "" if not first_run else (
        f" With the first run (below): **{(wall_s + first_wall_s) / 3600:.2f} h of wall time**, "
        f"{(train_s + eval_s + first_compute_s) / 3600:.2f} h of computation.")
    idle = "" if not skipped else (" Skipped as idle: " + ", ".join(
        f"{gap / 3600:.1f} h after {_utc(t)}" for t, gap in skipped) + ".")
    done = "all passes done" in (wd / "sweep.log").read_text() if (wd / "sweep.log").exists() else False
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    banner = "" if done and not missing else (
        "> **PARTIAL — the sweep is still running.** This table holds the cells recorded so far; the list under "
        "\"Missing cells\" is what `leaderboards/cifar10_full.sh` has not run yet. Do not cite it as the finished "
        "leaderboard.\n\n")
    header = f"""# CIFAR-10 on a 2-core CPU (`cifar-cpu-full` preset)

{banner}Real CIFAR-10 (`../shared/datasets/cifar10-jpeg.tar.gz`, a JPEG re-encoding), small CNN trained on **all
50,000** training images; **1,000** stratified test images (SPSA: a stratified 200, 20 iterations × 64 samples;
corruptions: a stratified 500, CIFAR-10-C parameters), the same images for every training seed. Three training
seeds for erm, mixup+mi, varmixup+varmi, adv-varmixup+adv-varmi and at on clean, PGD-10 at 8/255, adaptive
PGD-10 and ECE (cells marked ×3), one seed for the rest. Adaptive attacks: EOT over N_A = 8 draws; adaptive APGD
20 iterations per loss (`apgd_steps`). Every adversarial example of a randomised defense is classified by R = 10
fresh draws in the PGD-10, adaptive PGD-10, PGD-50, adaptive APGD, surrogate and SPSA cells (`worst-case`
columns), by one draw in the ε-curve, tPGD-10 and L2 cells (their mean; 1/10 of the cost) and in the corruption
cells (one draw per corrupted image, 75 × 500 of them). MMD-VAE latent 64. Produced at commit `{commit}`
on {platform.machine()} Linux, 2 CPU cores, by

```
leaderboards/cifar10_full.sh {workdir}      # the passes below, each a resumable `bench sweep`
python leaderboards/make_cifar10_full.py {workdir}
```

Measured time of this run{' so far' if banner else ''}: **{wall_s / 3600:.2f} h of wall time** on this machine, from the sweep's first write in the
workdir ({_utc(first)}) to its last ({_utc(last)}), the sum of the intervals between its writes that are under an
hour.{idle} That includes loading data and models for each pass and the minutes the sweep was paused while tests
ran on the shared cores. Of it, **{(train_s + eval_s) / 3600:.2f} h is computation** ({train_s / 3600:.2f} h
training, {eval_s / 3600:.2f} h evaluation: the sum of every model's and record's own `seconds`).{retired_note}{both} The sweep ran
across sessions (a session's end stops it; the next resumes it), so the pass wall times below, from
`{workdir}/passes.tsv`, cover only the passes that ran in one piece or their resumed part: {seconds / 3600:.2f} h
in all.

{passes}
## Training budget (measured)

{training_budget(models, "A model resumed from its last epoch checkpoint counts every epoch (its history).")}{first_run}
## The MMD-VAE

{vae_section(workdir)}
The `paper:` columns are the paper's own numbers (ResNet-34, full CIFAR-10, 100–350 epochs, PGD-10 with step
8/255, Tables 2 and 4), for orientation only: this run is a small CNN trained for a few epochs with PGD step ε/4.

"""
    body = header + wide
    if missing:
        body += ("\n## Missing cells\n\nNot recorded or run yet; re-running `leaderboards/cifar10_full.sh` resumes the "
                 "sweep and fills only these:\n\n" + "\n".join(missing) + "\n")
    body += ("\n## Paired comparisons (seed 0, the same 1,000 images)\n\nThe tests behind the claims in the notes; "
             "`worst` is the share correct in all R = 10 draws, `robust` the mean over them. The last column repeats "
             "the test on training seeds 1 and 2 where both cells exist (— where they do not: those columns ran on "
             "seed 0 only). Rows whose seed-0 cells are not recorded yet are left out.\n\n" + comparisons(records))
    body += ("\n## Training seeds, one by one\n\nThe cells behind the ×S means, seed by seed on the same 1,000 "
             f"images. `seeds differ` tests the highest seed against the lowest, paired per image, at |z| > {SEED_PAIRS_Z:.3f} "
             "(Bonferroni over the three pairs); where it says yes, the model's training seed moves the number "
             "beyond the image sampling noise, and the ×S interval (widened by the seeds' spread) is the one to "
             "read.\n\n" + seed_spread(records))
    body += "\n## Gradient-masking diagnostics (`bench diagnose`)\n\n```\n" + diag + "```\n"
    if reports:
        body += "\n## Per-defense reports (`bench report`)\n\n" + "\n".join(
            f"- [`{r.parent.name}`]({NAME}-reports/{r.parent.name}/report.md)" for r in reports) + "\n"
    if NOTES.exists():
        body += "\n" + NOTES.read_text()
    (OUT / f"{NAME}.md").write_text(body)
    print(f"{len(records)} records, {len(missing)} missing line(s), {wall_s / 3600:.2f} h of wall time, "
          f"{(train_s + eval_s) / 3600:.2f} h of computation "
          f"({train_s / 3600:.2f} h training), {seconds / 3600:.2f} h of logged passes")


if __name__ == "__main__":
    main(*sys.argv[1:2])
