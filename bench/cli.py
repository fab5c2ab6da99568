"""The `bench` command line (typer + rich). Bad input exits with status 2 and one line, never a traceback."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from bench.errors import BenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train robustness defenses, attack them, and write leaderboards.")
out = Console()
if not out.is_terminal:
    out = Console(width=200)
err = Console(stderr=True)

LIST_KINDS = ("defenses", "attacks", "datasets", "models", "presets")


def _fmt_pct(mean: float, std: float, trials: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if trials > 1 else f"{mean:.2f}"


@app.command()
def run(
    defense: str = typer.Option(..., "--defense", "-d", help="RECIPE[+INFERENCE], e.g. mixup+mi"),
    attack: str = typer.Option("pgd10", "--attack", "-a", help="attack name(s), comma-separated"),
    dataset: Optional[str] = typer.Option(None, help="dataset name (default from the preset: digits)"),
    model: Optional[str] = typer.Option(None, help="classifier architecture (default from the preset)"),
    preset: Optional[str] = typer.Option(None, help="preset holding every default (bench list presets)"),
    epochs: Optional[int] = typer.Option(None, help="training epochs (default: the preset's for this recipe)"),
    trials: Optional[int] = typer.Option(None, help="evaluation trials with new seeds; mean ± std recorded"),
    eps: Optional[str] = typer.Option(None, help="L-inf radius(es) on the [0,1] scale: 8/255 or 0.031, comma list"),
    step: Optional[str] = typer.Option(None, help="PGD step size on the [0,1] scale (default 2/255)"),
    lambda_mi: Optional[float] = typer.Option(None, "--lambda-mi", help="MI mixing coefficient lambda_MI"),
    n_mi: Optional[int] = typer.Option(None, "--n-mi", help="MI samples N_MI"),
    eta: Optional[float] = typer.Option(None, help="mixup lambda ~ Beta(eta, eta)"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="training batch size"),
    eval_batch_size: Optional[int] = typer.Option(None, "--eval-batch-size", help="evaluation batch size"),
    train_subset: Optional[int] = typer.Option(None, "--train-subset", help="stratified, seeded training subset"),
    test_subset: Optional[int] = typer.Option(None, "--test-subset", help="stratified, seeded test subset"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="where dataset files are (or go with --download)"),
    download: bool = typer.Option(False, "--download", help="download the dataset if missing (needs network)"),
    device: str = typer.Option("cpu", help="cpu, cuda, cuda:N or mps"),
    seed: Optional[int] = typer.Option(None, help="seed for training and evaluation"),
    workdir: Optional[Path] = typer.Option(None, help="models, data cache and results (default $BENCH_WORKDIR)"),
    no_progress: bool = typer.Option(False, "--no-progress", help="hide progress bars"),
) -> None:
    """Train (or load from cache) a defense, attack it, print and record the results."""
    from attacks import ATTACKS
    from bench.data import check_dataset_name
    from bench.models import MODELS
    from bench.parsing import parse_eps_list, parse_name_list, parse_step
    from bench.runner import evaluate, resolve_settings, train
    from defenses import parse_defense_spec

    # validate everything before any work, so bad input leaves the store untouched
    parse_defense_spec(defense)
    attacks = parse_name_list(attack, "attack")
    for name in attacks:
        ATTACKS.get(name)
    eps_list = parse_eps_list(eps) if eps is not None else None
    step_v = parse_step(step) if step is not None else None
    for name, value in (("trials", trials), ("epochs", epochs), ("n-mi", n_mi), ("batch-size", batch_size),
                        ("eval-batch-size", eval_batch_size), ("train-subset", train_subset),
                        ("test-subset", test_subset)):
        if value is not None and value < 1:
            raise BenchError(f"--{name} must be >= 1, got {value}")
    if lambda_mi is not None and not 0 <= lambda_mi <= 1:
        raise BenchError(f"--lambda-mi must be in [0, 1], got {lambda_mi}")
    if eta is not None and eta <= 0:
        raise BenchError(f"--eta must be > 0, got {eta}")
    settings = resolve_settings(
        preset, dataset=dataset, model=model, trials=trials, seed=seed, eta=eta, n_mi=n_mi,
        batch_size=batch_size, eval_batch_size=eval_batch_size, train_subset=train_subset, test_subset=test_subset,
        step=step_v,
    )
    if lambda_mi is not None:
        settings = settings.with_overrides(lambda_mi={}, lambda_mi_default=lambda_mi)
    check_dataset_name(settings.dataset)
    MODELS.get(settings.model)

    d = train(defense, workdir=workdir, preset=settings, epochs=epochs, device=device, data_dir=data_dir,
              download=download, show_progress=not no_progress)
    how = "trained" if d.info["trained"] else "loaded from cache"
    err.print(f"[bold]{d.spec}[/] on {d.dataset.name}: {how} ({d.info['config_hash']})")
    records = []
    for name in attacks:
        uses_eps = ATTACKS.get(name).uses_eps
        for e in (eps_list or [settings.eps]) if uses_eps else [0.0]:
            records.append(evaluate(d, name, eps=e, workdir=workdir, show_progress=not no_progress))
    _print_records(records)


def _print_records(records: list[dict]) -> None:
    from bench.leaderboard import eps_label

    table = Table(title="results (accuracy %, defended predictor)")
    for col in ("dataset", "defense", "attack", "threat model", "ε", "step", "clean", "robust", "n", "trials", "s"):
        table.add_column(col, justify="right" if col in ("clean", "robust", "n", "trials", "s") else "left")
    for r in records:
        table.add_row(r["dataset"], r["defense"], r["attack"], r["threat_model"], eps_label(r["eps"]),
                      eps_label(r["step"]), _fmt_pct(r["clean_acc"], r["clean_acc_std"], r["trials"]),
                      _fmt_pct(r["robust_acc"], r["robust_acc_std"], r["trials"]), str(r["n_examples"]),
                      str(r["trials"]), f"{r['seconds']:.1f}")
    out.print(table)


@app.command("list")
def list_(kind: str = typer.Argument(..., help="defenses | attacks | datasets | models | presets")) -> None:
    """List the registered names of one kind."""
    from bench.registry import unknown_name_message

    if kind not in LIST_KINDS:
        raise BenchError(unknown_name_message("list kind", kind, list(LIST_KINDS)))
    table = Table()
    table.add_column("name")
    table.add_column("description")
    if kind == "defenses":
        from defenses import INFERENCE, RECIPES

        for n in RECIPES.names():
            table.add_row(f"recipe  {n}", RECIPES.help(n))
        for n in INFERENCE.names():
            table.add_row(f"+infer  {n}", INFERENCE.help(n))
        table.caption = "a defense is RECIPE[+INFERENCE], e.g. erm, mixup+mi"
    else:
        if kind == "attacks":
            from attacks import ATTACKS as reg
        elif kind == "datasets":
            from bench.data import DATASETS as reg
        elif kind == "models":
            from bench.models import MODELS as reg
        else:
            from bench.presets import PRESETS as reg
        for n in reg.names():
            table.add_row(n, reg.help(n))
    out.print(table)


@app.command()
def leaderboard(
    workdir: Optional[Path] = typer.Option(None, help="where results.jsonl lives (default $BENCH_WORKDIR)"),
    dataset: Optional[str] = typer.Option(None, help="only this dataset"),
    fmt: str = typer.Option("md", "--format", "-f", help="csv | md | json"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout"),
) -> None:
    """Write the leaderboard of every recorded result (latest record per row)."""
    from bench.atomic import atomic_write_text
    from bench.leaderboard import FORMATS, leaderboard_frame, render
    from bench.registry import unknown_name_message
    from bench.store import ResultStore
    from bench.workdir import resolve_workdir

    if fmt not in FORMATS:
        raise BenchError(unknown_name_message("format", fmt, list(FORMATS)))
    text = render(leaderboard_frame(ResultStore(resolve_workdir(workdir, create=False)).records(), dataset), fmt)
    if output:
        atomic_write_text(output, text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


@app.command()
def perf(
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
    only: Optional[str] = typer.Option(None, help="comma-separated benchmark names"),
    repeats: int = typer.Option(5, help="timed repeats per side (median taken)"),
) -> None:
    """Time the harness against plain PyTorch baselines; each measurement is a ratio."""
    from bench.parsing import parse_name_list
    from bench.perf import BENCHMARKS, run_benchmarks

    if fmt not in ("table", "json"):
        raise BenchError(f"unknown format {fmt!r}; valid formats: table, json")
    names = parse_name_list(only, "benchmark") if only else None
    for n in names or []:
        BENCHMARKS.get(n)
    results = run_benchmarks(names, repeats)
    if fmt == "json":
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    table = Table(title="bench perf (ratio = harness / plain baseline)")
    for col in ("benchmark", "harness s", "baseline s", "ratio", "target"):
        table.add_column(col)
    for n, r in results.items():
        table.add_row(n, f"{r['harness_s']:.4f}", f"{r['baseline_s']:.4f}", f"{r['ratio']:.3f}", r.get("target", ""))
    out.print(table)


def main() -> None:
    try:
        app()
    except BenchError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
