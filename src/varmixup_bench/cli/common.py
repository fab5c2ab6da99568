"""What the `bench` commands share: the typer app, option types, preset/context glue and the results table."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.config.presets import field_help, field_meta
from varmixup_bench.core.errors import BenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train robustness defenses, attack them, and write leaderboards.")


def fmt_acc(r: dict, which: str) -> str:
    from varmixup_bench.results.stats import format_interval

    return format_interval(r[f"{which}_acc"], r[f"{which}_acc_ci_low"], r[f"{which}_acc_ci_high"])


def stored_records(workdir, dataset: str | None = None) -> tuple[Path, list[dict]]:
    """(the workdir, its current records) for a command that reads them; a workdir that does not exist, or a
    --dataset none of them has, is an error naming what is there, not an empty table."""
    from varmixup_bench.core.workdir import existing_workdir
    from varmixup_bench.results.store import ResultStore

    wd = existing_workdir(workdir)
    records = ResultStore(wd).records()
    stored = sorted({str(r.get("dataset")) for r in records})
    if dataset is not None and records and dataset not in stored:
        from varmixup_bench.core.registry import close_names

        close = close_names(dataset, stored)
        raise BenchError(f"no records of dataset {dataset!r} in {wd}." + (f" Did you mean {close[0]!r}?" if close
                                                                          else "") + f" Stored: {', '.join(stored)}")
    return wd, records


def set_threads(threads: Optional[int]) -> None:
    if threads is not None:
        if threads < 1:
            raise BenchError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def base_preset(preset: Optional[str], preset_file: Optional[Path]):
    """--preset NAME or --preset-file PATH (not both)."""
    if preset_file is not None:
        if preset is not None:
            raise BenchError("give --preset or --preset-file, not both (a preset file names its base with base = ...)")
        from varmixup_bench.config.preset_io import load_preset_file

        return load_preset_file(preset_file)
    return preset

def preset_option(field: str, *names: str) -> typer.models.OptionInfo:
    """The option of a `bench` command that aliases the Preset field `field`: its name and help (with the valid
    range) come from the field's metadata (config.presets), and its value is checked by check_preset with the rest
    of the preset, the same as --set FIELD=VALUE and --preset-file."""
    return typer.Option(*(names or (field_meta(field)["option"],)), help=f"{field_help(field)} (default: the preset's)")


DatasetOpt = Annotated[Optional[str], preset_option("dataset")]
PresetOpt = Annotated[Optional[str], typer.Option(help="preset holding every default (bench list presets)")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="torch intra-op threads for this process "
                                                   "(default: torch's; give each of several jobs its share of the cores)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override any preset field: --set FIELD=VALUE "
                                                     "(repeatable; bench list presets shows the fields)")]
PresetFileOpt = Annotated[Optional[Path], typer.Option("--preset-file", help="your own preset as TOML: any preset "
                                                       "field, optional base = \"PRESET\" (any of bench list presets)")]
SeedOpt = Annotated[Optional[int], preset_option("seed")]
WorkdirOpt = Annotated[Optional[Path], typer.Option(help="models, data cache and results (default $BENCH_WORKDIR)")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="where dataset files are (or go with --download)")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="download the dataset if missing (needs network)")]
TrainSubsetOpt = Annotated[Optional[int], preset_option("train_subset")]
TestSubsetOpt = Annotated[Optional[int], preset_option("test_subset")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="hide progress bars")]
VaeFromOpt = Annotated[Optional[str], preset_option("vae_from")]
VaeEpochsOpt = Annotated[Optional[int], preset_option("vae_epochs")]
LatentDimOpt = Annotated[Optional[int], preset_option("vae_latent_dim")]
VaeGammaOpt = Annotated[Optional[float], preset_option("vae_gamma")]
VaeBandwidthOpt = Annotated[Optional[float], preset_option("vae_bandwidth")]
ModelDirOpt = Annotated[Optional[Path], preset_option("zoo_model_dir")]
ZooThreatOpt = Annotated[Optional[str], preset_option("zoo_threat_model")]
ZooDatasetOpt = Annotated[Optional[str], preset_option("zoo_dataset")]
NormOpt = Annotated[Optional[str], typer.Option("--norm", help=f"{field_help('norm')} of the eps attacks (default: "
                                               "the preset's); L2 radii are plain numbers, e.g. 0.5")]
EpsOpt = Annotated[Optional[str], typer.Option(help=f"radius(es) in the --norm, a comma list such as 8/255,16/255: "
                                               f"{field_help('eps')}; with --norm l2: {field_help('eps_l2')}")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG path (default under the workdir)")]


def norm_choice(norm: Optional[str], base, set_values: dict) -> tuple[Optional[str], str]:
    """(--norm as a preset override or None, the norm in effect with the preset)."""
    from varmixup_bench.core.norms import parse_norm
    from varmixup_bench.training.runner import resolve_settings

    chosen = parse_norm(norm).value if norm is not None else None
    return chosen, chosen or parse_norm(set_values.get("norm") or resolve_settings(base).norm).value


def check_positive(**values: Optional[float]) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def context(dataset, preset, device, seed, workdir, data_dir, download, train_subset, test_subset, no_progress,
            **overrides):
    """Validate shared options and build the training context (settings, dataset, device, workdir)."""
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.training.runner import make_context, resolve_settings

    settings = resolve_settings(preset, dataset=dataset, seed=seed, train_subset=train_subset,
                                test_subset=test_subset, **overrides)
    check_dataset_name(settings.dataset)
    if settings.vae_from:
        check_dataset_name(settings.vae_from)
    return make_context(None, workdir=workdir, preset=settings, device=device, data_dir=data_dir,
                        download=download, show_progress=not no_progress)


def zoo_overrides(model_dir: Optional[Path], threat_model: Optional[str], dataset: Optional[str]) -> dict:
    """Preset overrides of the robustbench:NAME options (None values leave the preset's)."""
    return dict(zoo_model_dir=str(model_dir.expanduser().resolve()) if model_dir else None,
                zoo_threat_model=threat_model, zoo_dataset=dataset)


def print_records(records: list[dict]) -> None:
    from varmixup_bench.views.leaderboard import eps_label, eps_text

    table = Table(title="results (accuracy % of the defended predictor [95 % interval])")
    for col in ("dataset", "defense", "attack", "threat model", "ε", "step", "clean", "robust", "n", "trials", "s"):
        table.add_column(col, justify="right" if col in ("clean", "robust", "n", "trials", "s") else "left")
    for r in records:
        table.add_row(r["dataset"], r["defense"], r["attack"], r["threat_model"], eps_text(r["eps"], r.get("norm")),
                      "-" if r["step"] is None else eps_label(r["step"]), fmt_acc(r, "clean"), fmt_acc(r, "robust"),
                      str(r["n_examples"]), str(r["trials"]), f"{r['seconds']:.1f}")
    console.out.print(table)
    from varmixup_bench.results.stats import TRIAL_INTERVAL_NOTE

    console.out.print(f"[dim]{TRIAL_INTERVAL_NOTE}[/]")


def int_list(text: str, option: str) -> list[int]:
    from varmixup_bench.core.parsing import parse_name_list

    try:
        values = [int(v) for v in parse_name_list(text, option)]
    except ValueError:
        raise BenchError(f"invalid --{option} {text!r}: expected comma-separated integers") from None
    if any(v < 1 for v in values):
        raise BenchError(f"--{option} values must be >= 1, got {text}")
    return values


EpochsOpt = Annotated[Optional[int], typer.Option(help="training epochs (default: the preset's for this recipe)")]
