"""The `bench` command line (typer + rich). Bad input exits with status 2 and one line, never a traceback."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from varmixup_bench.core.errors import BenchError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train robustness defenses, attack them, and write leaderboards.")
out = Console()
if not out.is_terminal:
    out = Console(width=200)
err = Console(stderr=True)

LIST_KINDS = ("defenses", "attacks", "datasets", "models", "presets")


def _fmt_acc(r: dict, which: str) -> str:
    from varmixup_bench.results.stats import format_interval

    return format_interval(r[f"{which}_acc"], r[f"{which}_acc_ci_low"], r[f"{which}_acc_ci_high"])


def _set_threads(threads: Optional[int]) -> None:
    if threads is not None:
        if threads < 1:
            raise BenchError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)


def _base_preset(preset: Optional[str], preset_file: Optional[Path]):
    """--preset NAME or --preset-file PATH (not both)."""
    if preset_file is not None:
        if preset is not None:
            raise BenchError("give --preset or --preset-file, not both (a preset file names its base with base = ...)")
        from varmixup_bench.config.preset_io import load_preset_file

        return load_preset_file(preset_file)
    return preset


# option types shared by the commands (one definition each)
DatasetOpt = Annotated[Optional[str], typer.Option(help="dataset name (default from the preset: digits)")]
PresetOpt = Annotated[Optional[str], typer.Option(help="preset holding every default (bench list presets)")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="torch intra-op threads for this process "
                                                   "(default: torch's; give each of several jobs its share of the cores)")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="override any preset field: --set FIELD=VALUE "
                                                     "(repeatable; bench list presets shows the fields)")]
PresetFileOpt = Annotated[Optional[Path], typer.Option("--preset-file", help="your own preset as TOML: any preset "
                                                       "field, optional base = \"quick\"|\"cifar-cpu\"|\"paper\"")]
SeedOpt = Annotated[Optional[int], typer.Option(help="seed for training and evaluation")]
WorkdirOpt = Annotated[Optional[Path], typer.Option(help="models, data cache and results (default $BENCH_WORKDIR)")]
DataDirOpt = Annotated[Optional[Path], typer.Option("--data-dir", help="where dataset files are (or go with --download)")]
DownloadOpt = Annotated[bool, typer.Option("--download", help="download the dataset if missing (needs network)")]
TrainSubsetOpt = Annotated[Optional[int], typer.Option("--train-subset", help="stratified, seeded training subset")]
TestSubsetOpt = Annotated[Optional[int], typer.Option("--test-subset", help="stratified, seeded test subset")]
NoProgressOpt = Annotated[bool, typer.Option("--no-progress", help="hide progress bars")]
VaeFromOpt = Annotated[Optional[str], typer.Option("--vae-from", help="use a VAE trained on this dataset (Table 3)")]
VaeEpochsOpt = Annotated[Optional[int], typer.Option("--vae-epochs", help="MMD-VAE training epochs")]
LatentDimOpt = Annotated[Optional[int], typer.Option("--latent-dim", help="MMD-VAE latent dimension")]
VaeGammaOpt = Annotated[Optional[float], typer.Option("--vae-gamma", help="weight gamma of the MMD term")]
VaeBandwidthOpt = Annotated[Optional[float], typer.Option("--vae-bandwidth", help="Gaussian kernel bandwidth (default 2*latent dim)")]
ModelDirOpt = Annotated[Optional[Path], typer.Option(
    "--model-dir", help="robustbench:NAME checkpoints, laid out DATASET/THREAT/NAME.pt (default <workdir>/robustbench-models)")]
ZooThreatOpt = Annotated[Optional[str], typer.Option("--zoo-threat-model", help="robustbench:NAME zoo section: Linf | L2 | corruptions")]
ZooDatasetOpt = Annotated[Optional[str], typer.Option("--zoo-dataset", help="robustbench:NAME zoo dataset (default: inferred)")]
NormOpt = Annotated[Optional[str], typer.Option("--norm", help="threat model of the eps attacks: linf | l2 "
                                               "(default: the preset's, linf); L2 radii are plain numbers, e.g. 0.5")]
EpsOpt = Annotated[Optional[str], typer.Option(help="radius(es) in the --norm on the [0,1] scale: 8/255 or 0.031 "
                                               "(L-inf), 0.5 (L2); comma list (default: the preset's eps / eps_l2)")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG path (default under the workdir)")]


def _norm_choice(norm: Optional[str], base, set_values: dict) -> tuple[Optional[str], str]:
    """(--norm as a preset override or None, the norm in effect with the preset)."""
    from varmixup_bench.attacks.base import parse_norm
    from varmixup_bench.training.runner import resolve_settings

    chosen = parse_norm(norm).value if norm is not None else None
    return chosen, chosen or parse_norm(set_values.get("norm") or resolve_settings(base).norm).value


def _check_positive(**values: Optional[float]) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be >= 1, got {value}")


def _context(dataset, preset, device, seed, workdir, data_dir, download, train_subset, test_subset, no_progress,
             **overrides):
    """Validate shared options and build the training context (settings, dataset, device, workdir)."""
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.training.runner import make_context, resolve_settings

    _check_positive(train_subset=train_subset, test_subset=test_subset)
    settings = resolve_settings(preset, dataset=dataset, seed=seed, train_subset=train_subset,
                                test_subset=test_subset, **overrides)
    check_dataset_name(settings.dataset)
    if settings.vae_from:
        check_dataset_name(settings.vae_from)
    return make_context(None, workdir=workdir, preset=settings, device=device, data_dir=data_dir,
                        download=download, show_progress=not no_progress)


@app.command()
def run(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE], e.g. varmixup+varmi, or "
                                         "robustbench:NAME[+INFERENCE]")],
    attack: Annotated[str, typer.Option("--attack", "-a", help="attack name(s), comma-separated")] = "pgd10",
    dataset: DatasetOpt = None,
    model: Annotated[Optional[str], typer.Option(help="classifier architecture (default from the preset)")] = None,
    preset: PresetOpt = None,
    epochs: Annotated[Optional[int], typer.Option(help="training epochs (default: the preset's for this recipe)")] = None,
    trials: Annotated[Optional[int], typer.Option(help="evaluation trials with new seeds; mean ± std recorded")] = None,
    eps: EpsOpt = None,
    norm: NormOpt = None,
    step: Annotated[Optional[str], typer.Option(help="PGD step size on the [0,1] scale (default eps/4: 2/255 at "
                                                "8/255)")] = None,
    lambda_mi: Annotated[Optional[float], typer.Option("--lambda-mi", help="MI mixing coefficient lambda_MI")] = None,
    n_mi: Annotated[Optional[int], typer.Option("--n-mi", help="MI samples N_MI")] = None,
    eta: Annotated[Optional[float], typer.Option(help="mixup lambda ~ Beta(eta, eta)")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="training batch size")] = None,
    eval_batch_size: Annotated[Optional[int], typer.Option("--eval-batch-size", help="evaluation batch size")] = None,
    trades_beta: Annotated[Optional[float], typer.Option("--trades-beta", help="TRADES beta")] = None,
    train_eps: Annotated[Optional[str], typer.Option("--train-eps", help="adversarial training radius ([0,1] scale)")] = None,
    train_step: Annotated[Optional[str], typer.Option("--train-step", help="adversarial training PGD step")] = None,
    train_steps: Annotated[Optional[int], typer.Option("--train-steps", help="adversarial training PGD steps")] = None,
    amp: Annotated[Optional[bool], typer.Option("--amp/--no-amp", help="bf16 autocast while training (CPU and CUDA)")] = None,
    vae_from: VaeFromOpt = None,
    vae_epochs: VaeEpochsOpt = None,
    latent_dim: LatentDimOpt = None,
    vae_gamma: VaeGammaOpt = None,
    vae_bandwidth: VaeBandwidthOpt = None,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    model_dir: ModelDirOpt = None,
    zoo_threat_model: ZooThreatOpt = None,
    zoo_dataset: ZooDatasetOpt = None,
    data_dir: DataDirOpt = None,
    download: Annotated[bool, typer.Option("--download", help="download a missing dataset or zoo model (needs network)")] = False,
    n_adaptive: Annotated[Optional[int], typer.Option("--n-adaptive", help="N_A: EOT draws per adaptive-PGD step")] = None,
    set_: SetOpt = None,
    preset_file: PresetFileOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    seed: SeedOpt = None,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="evaluate again although the store holds this exact "
                                        "evaluation (default: reuse the stored record)")] = False,
) -> None:
    """Train (or load from cache) a defense, attack it, print and record the results.

    An evaluation the store already holds (same evaluation key) is reused, not run again, unless --rerun. An attack
    the defense refuses (surrogate-pgd50 on a randomised rule without a surrogate) is reported in one line and
    skipped; the status is 0 when at least one attack ran."""
    from varmixup_bench.attacks.spec import attack_class, validate_attack
    from varmixup_bench.core.errors import AttackRefused
    from varmixup_bench.training.models import MODELS
    from varmixup_bench.core.parsing import parse_eps, parse_eps_list, parse_name_list, parse_step
    from varmixup_bench.training.runner import evaluate, train
    from varmixup_bench.defenses import parse_defense_spec

    # validate everything before any work, so bad input leaves the store untouched
    parse_defense_spec(defense)
    attacks = [str(validate_attack(a)) for a in parse_name_list(attack, "attack")]
    from varmixup_bench.config.preset_io import parse_set_options

    base = _base_preset(preset, preset_file)
    set_values = parse_set_options(set_)
    norm_v, norm_now = _norm_choice(norm, base, set_values)
    eps_list = parse_eps_list(eps, norm_now) if eps is not None else None
    step_v = parse_step(step) if step is not None else None
    _check_positive(trials=trials, epochs=epochs, n_mi=n_mi, batch_size=batch_size, eval_batch_size=eval_batch_size,
                    vae_epochs=vae_epochs, latent_dim=latent_dim, train_steps=train_steps, n_adaptive=n_adaptive)
    _set_threads(threads)
    train_eps_v = parse_eps(train_eps) if train_eps is not None else None
    train_step_v = parse_step(train_step) if train_step is not None else None
    if trades_beta is not None and trades_beta < 0:
        raise BenchError(f"--trades-beta must be >= 0, got {trades_beta}")
    if lambda_mi is not None and not 0 <= lambda_mi <= 1:
        raise BenchError(f"--lambda-mi must be in [0, 1], got {lambda_mi}")
    for name, value in (("eta", eta), ("vae-gamma", vae_gamma), ("vae-bandwidth", vae_bandwidth)):
        if value is not None and value <= 0:
            raise BenchError(f"--{name} must be > 0, got {value}")
    if model is not None:
        MODELS.get(model)
    overrides = dict(model=model, trials=trials, eta=eta, n_mi=n_mi, batch_size=batch_size,
                     eval_batch_size=eval_batch_size, step=step_v, vae_from=vae_from, vae_epochs=vae_epochs,
                     vae_latent_dim=latent_dim, vae_gamma=vae_gamma, vae_bandwidth=vae_bandwidth,
                     trades_beta=trades_beta, train_eps=train_eps_v, train_step=train_step_v, train_steps=train_steps,
                     amp=amp, n_adaptive=n_adaptive, norm=norm_v,
                     **_zoo_overrides(model_dir, zoo_threat_model, zoo_dataset))
    if lambda_mi is not None:
        overrides.update(lambda_mi={}, lambda_mi_default=lambda_mi)
    overrides.update(set_values)  # --set FIELD=VALUE
    shared = {k: v for k, v in dict(dataset=dataset, seed=seed, train_subset=train_subset,
                                    test_subset=test_subset).items() if v is not None}
    _check_before_work([defense], attacks, eps_list, base, {**overrides, **shared})
    ctx = _context(dataset, base, device, seed, workdir, data_dir, download, train_subset, test_subset,
                   no_progress, **overrides)
    d = train(defense, ctx.dataset, workdir=ctx.workdir, preset=ctx.settings, epochs=epochs, device=ctx.device,
              show_progress=not no_progress, download=download)
    how = "trained" if d.info["trained"] else "zoo checkpoint loaded" if "zoo" in d.info else "loaded from cache"
    import torch

    err.print(f"[bold]{d.spec}[/] on {d.dataset.name}: {how} ({d.info['config_hash']}); device {ctx.device}, "
              f"{torch.get_num_threads()} thread(s)")
    records, refused = [], []
    for name in attacks:
        uses_eps = attack_class(name).uses_eps
        for e in (eps_list or [None]) if uses_eps else [0.0]:  # None: the preset's radius, else the dataset's
            try:
                records.append(evaluate(d, name, eps=e, workdir=ctx.workdir, show_progress=not no_progress,
                                        reuse=not rerun))
            except AttackRefused as exc:
                refused.append(name)
                err.print(f"skipped {name}: {exc}", markup=False, highlight=False, soft_wrap=True)
                break  # refused at every radius
    if not records:
        raise BenchError(f"no attack ran: {d.spec} refused {', '.join(refused)}")
    _print_records(records)


def _check_before_work(defenses: list[str], attacks: list[str], eps_list: Optional[list[float]], base,
                       overrides: dict, datasets: Optional[list[str]] = None):
    """Everything that can be checked before data loading and training: every preset value (Preset.check), each
    defense's recipe and rule with its keywords, and each attack built at every radius, step and norm it will run
    with (which runs its own value checks, e.g. pgd(steps=-3)). Returns the resolved settings."""
    from varmixup_bench.attacks.spec import attack_class, build_attack
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.training.runner import resolve_settings
    from varmixup_bench.defenses import parse_defense_spec

    settings = resolve_settings(base, **overrides)
    names = datasets or [settings.dataset]
    for name in names:
        check_dataset_name(name)
    if settings.vae_from:
        check_dataset_name(settings.vae_from)
    for spec in defenses:
        dspec = parse_defense_spec(spec)
        if not dspec.zoo_model:
            dspec.build_recipe(settings)
        dspec.build_rule(settings)
    for name in attacks:
        uses_eps = attack_class(name).uses_eps
        for ds in names:
            for e in (eps_list or [settings.eps_for(None, ds)]) if uses_eps else [0.0]:
                build_attack(name, e, settings.step, settings, settings.norm)
    return settings


def _zoo_overrides(model_dir: Optional[Path], threat_model: Optional[str], dataset: Optional[str]) -> dict:
    """Preset overrides of the robustbench:NAME options (None values leave the preset's)."""
    return dict(zoo_model_dir=str(model_dir.expanduser().resolve()) if model_dir else None,
                zoo_threat_model=threat_model, zoo_dataset=dataset)


def _print_records(records: list[dict]) -> None:
    from varmixup_bench.views.leaderboard import eps_label, eps_text

    table = Table(title="results (accuracy % of the defended predictor [95 % interval])")
    for col in ("dataset", "defense", "attack", "threat model", "ε", "step", "clean", "robust", "n", "trials", "s"):
        table.add_column(col, justify="right" if col in ("clean", "robust", "n", "trials", "s") else "left")
    for r in records:
        table.add_row(r["dataset"], r["defense"], r["attack"], r["threat_model"], eps_text(r["eps"], r.get("norm")),
                      "-" if r["step"] is None else eps_label(r["step"]), _fmt_acc(r, "clean"), _fmt_acc(r, "robust"),
                      str(r["n_examples"]), str(r["trials"]), f"{r['seconds']:.1f}")
    out.print(table)
    from varmixup_bench.results.stats import TRIAL_INTERVAL_NOTE

    out.print(f"[dim]{TRIAL_INTERVAL_NOTE}[/]")


def _preset_value(field: str, value) -> str:
    """Radii and steps as k/255, dicts as `key value` lists."""
    from varmixup_bench.views.leaderboard import eps_label

    if value is None and field in ("eps", "eps_l2"):
        return "dataset default"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, float) and field.endswith(("eps", "step")):
        return eps_label(value)
    return str(value)


@app.command("list")
def list_(kind: str = typer.Argument(..., help="defenses | attacks | datasets | models | presets"),
          all_: Annotated[bool, typer.Option("--all", help="attacks: also every class of the torchattacks and ART "
                                             "catalogs, with kind and norms")] = False) -> None:
    """List the registered names of one kind."""
    from varmixup_bench.core.registry import unknown_name_message

    if kind not in LIST_KINDS:
        raise BenchError(unknown_name_message("list kind", kind, list(LIST_KINDS)))
    if all_ and kind != "attacks":
        raise BenchError("--all applies to `bench list attacks` only")
    table = Table()
    table.add_column("name")
    table.add_column("description")
    if kind == "defenses":
        from varmixup_bench.defenses import INFERENCE, RECIPES
        from varmixup_bench.defenses.spec import keywords

        def _kw(cls, positional: int) -> str:  # the keywords a spec may set: NAME(key=value)
            kw = keywords(cls, positional)
            return f" (keywords: {', '.join(f'{k}={v!r}' for k, v in sorted(kw.items()))})" if kw else ""

        for n in RECIPES.names():
            table.add_row(f"recipe  {n}", RECIPES.help(n) + _kw(RECIPES.get(n), 1))
        for n in INFERENCE.names():
            table.add_row(f"+infer  {n}", INFERENCE.help(n) + _kw(INFERENCE.get(n), 2))
        table.caption = ("a defense is RECIPE[+INFERENCE], e.g. erm, mixup+mi, or robustbench:NAME[+INFERENCE] "
                         "for a RobustBench model-zoo classifier (--model-dir)")
    elif kind == "presets":
        from dataclasses import fields

        from varmixup_bench.config.presets import PRESETS

        presets = [PRESETS.get(n) for n in PRESETS.names()]
        table = Table(title="presets (override any field with --set FIELD=VALUE, or write your own with --preset-file)")
        table.add_column("field")
        for p in presets:
            table.add_column(p.name)
        for f in fields(presets[0]):
            table.add_row(f.name, *[_preset_value(f.name, getattr(p, f.name)) for p in presets])
    elif kind == "attacks":
        from varmixup_bench.attacks import ATTACKS
        from varmixup_bench.attacks.spec import FAMILIES

        table.add_column("keywords")
        for n in ATTACKS.names():
            cls = ATTACKS.get(n)
            defaults = sorted((k, getattr(cls, k, v[1])) for k, v in cls.parameters().items())
            table.add_row(n, ATTACKS.help(n), ", ".join(f"{k}={'preset' if d is None else d}" for k, d in defaults))
        for n in FAMILIES.names():
            table.add_row(f"{n}:…", FAMILIES.help(n), "")
        if all_:
            from varmixup_bench.attacks.catalog import catalog_table

            out.print(table)
            table = catalog_table()
    else:
        if kind == "datasets":
            from varmixup_bench.training.data import DATASETS as reg
        else:
            from varmixup_bench.training.models import MODELS as reg
        for n in reg.names():
            table.add_row(n, reg.help(n))
    out.print(table)


@app.command()
def leaderboard(
    workdir: WorkdirOpt = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv | md | json | html | robustbench (one JSON per "
                                     "defense under --output DIR)")] = "md",
    layout: Annotated[Optional[str], typer.Option(help="headline (per dataset: clean, strongest attack, ensemble; "
                                                  "md/html) | long (one row per record) | wide (defenses x attacks); "
                                                  "default headline for md/html, long for csv/json, wide with --reference")] = None,
    reference: Annotated[Optional[str], typer.Option(help="add a transcribed reference beside ours: paper or paper:DATASET")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="write to FILE instead of stdout")] = None,
    plots: Annotated[Optional[list[Path]], typer.Option("--plot", help="html: a PNG to embed (repeatable; default: "
                                                        "the workdir's figures/*.png)")] = None,
) -> None:
    """Write the leaderboard of every recorded result (latest record per row)."""
    from varmixup_bench.core.atomic import atomic_write_text
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import FORMATS, leaderboard_frame, render, render_wide, wide_frame
    from varmixup_bench.core.registry import unknown_name_message
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    if fmt == "robustbench":
        from varmixup_bench.views.rb_export import write_robustbench

        if output is None:
            raise BenchError("--format robustbench writes one JSON per defense: give the folder with --output DIR")
        if layout or reference:
            raise BenchError("--format robustbench takes neither --layout nor --reference")
        paths = write_robustbench(ResultStore(resolve_workdir(workdir, create=False)).records(), output, dataset)
        err.print(f"wrote {len(paths)} RobustBench model_info JSON file(s) under {output}")
        return
    if fmt not in FORMATS:
        raise BenchError(unknown_name_message("format", fmt, [*FORMATS, "robustbench"]))
    layout = layout or ("wide" if reference else "headline" if fmt in ("md", "html") else "long")
    if layout not in ("headline", "long", "wide"):
        raise BenchError(unknown_name_message("layout", layout, ["headline", "long", "wide"]))
    if layout == "long" and (fmt == "html" or reference):
        raise BenchError("--format html and --reference need --layout wide or headline (html) / wide (reference)")
    if layout == "headline" and (fmt not in ("md", "html") or reference):
        raise BenchError("--layout headline is for --format md or html, without --reference (use --layout wide)")
    wd = resolve_workdir(workdir, create=False)
    frame = leaderboard_frame(ResultStore(wd).records(), dataset)
    for p in plots or []:
        if not p.is_file():
            raise BenchError(f"--plot {p}: no such file")
    figures = list(plots) if plots else sorted((wd / "figures").glob("*.png")) if fmt == "html" else []
    if layout == "headline":
        text = render_headline(frame, fmt, figures)
    elif layout == "wide":
        ref_name, _, ref_dataset = (reference or "").partition(":")
        text = render_wide(wide_frame(frame, ref_name or None, ref_dataset or None), fmt, figures)
    else:
        text = render(frame, fmt)
    if output:
        atomic_write_text(output, text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text)


VAE_ACTIONS = ("train", "show")


@app.command("vae")
def vae_command(
    action: Annotated[str, typer.Argument(help="train (train or load) | show (cached only, never trains)")],
    dataset: DatasetOpt = None,
    adversarial: Annotated[bool, typer.Option("--adversarial", help="the adv- VAE (PGD on reconstruction error)")] = False,
    preset: PresetOpt = None,
    vae_from: VaeFromOpt = None,
    vae_epochs: VaeEpochsOpt = None,
    latent_dim: LatentDimOpt = None,
    vae_gamma: VaeGammaOpt = None,
    vae_bandwidth: VaeBandwidthOpt = None,
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """The Var* defenses' MMD-VAE: print its reconstruction error and write inputs vs reconstructions as PNG."""
    import torch

    from varmixup_bench.views.figures import save_rows, vae_rows
    from varmixup_bench.core.registry import unknown_name_message
    from varmixup_bench.defenses.latent import get_vae, reconstruction_error

    if action not in VAE_ACTIONS:
        raise BenchError(unknown_name_message("vae action", action, list(VAE_ACTIONS)))
    _check_positive(vae_epochs=vae_epochs, latent_dim=latent_dim)
    ctx = _context(dataset, preset, device, seed, workdir, data_dir, download, train_subset, test_subset,
                   no_progress, vae_from=vae_from, vae_epochs=vae_epochs, vae_latent_dim=latent_dim,
                   vae_gamma=vae_gamma, vae_bandwidth=vae_bandwidth)
    vae = get_vae(ctx, adversarial, train_if_missing=action == "train")
    test = ctx.dataset.test
    err_test = reconstruction_error(vae, test.x, ctx.device)
    path = output or ctx.workdir / "figures" / f"vae-{vae.key}.png"
    spread = torch.linspace(0, len(test.x) - 1, min(16, len(test.x))).long()  # across the (class-sorted) split
    save_rows(vae_rows(vae, test.x[spread].to(ctx.device)), path)
    hist = vae.meta.get("history", [])
    kind = "adversarial " if adversarial else ""
    table = Table(title=f"{kind}MMD-VAE {vae.key} ({'trained' if vae.trained else 'cached'})")
    for col in ("dataset", "latent dim", "epochs", "train recon", "train mmd", "test recon (pixel MSE)", "figure"):
        table.add_column(col)
    last = hist[-1] if hist else {}
    table.add_row(ctx.dataset.name, str(vae.latent_dim), str(len(hist)), f"{last.get('recon', float('nan')):.5f}",
                  f"{last.get('mmd', float('nan')):.5f}", f"{err_test:.5f}", str(path))
    out.print(table)


@app.command()
def samples(
    defense: Annotated[str, typer.Option("--defense", "-d", help="a Var* recipe, e.g. varmixup or adv-varmixup")] = "varmixup",
    pairs: Annotated[int, typer.Option(help="number of image pairs")] = 4,
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    vae_from: VaeFromOpt = None,
    output: OutputOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    download: DownloadOpt = False,
    no_progress: NoProgressOpt = False,
) -> None:
    """Fig. 7: per pair, a row of input-space mixups and a row of VarMixup samples, lambda in 0, .25, .5, .75, 1."""
    from varmixup_bench.views.figures import pick_pairs, sample_rows, save_rows
    from varmixup_bench.defenses import parse_defense_spec

    spec = parse_defense_spec(defense)
    _check_positive(pairs=pairs)
    ctx = _context(dataset, preset, device, seed, workdir, data_dir, download, None, None, no_progress,
                   vae_from=vae_from)
    recipe = spec.build_recipe(ctx.settings)
    recipe.prepare(ctx)
    vae = getattr(recipe, "vae", None)
    if vae is None:
        raise BenchError(f"recipe {spec.recipe!r} has no VAE; samples needs a Var* recipe such as varmixup")
    a, b = pick_pairs(ctx.dataset.test.y, pairs, ctx.settings.seed)
    x = ctx.dataset.test.x
    path = output or ctx.workdir / "figures" / f"samples-{spec.recipe}-{vae.key}.png"
    save_rows(sample_rows(vae, x[a].to(ctx.device), x[b].to(ctx.device)), path)
    out.print(f"wrote {path} ({pairs} pairs; odd rows input mixup, even rows {spec.recipe}; lambda 0 → 1 left to right)")


@app.command()
def sweep(
    defenses: Annotated[str, typer.Option("--defenses", help="comma-separated defense specs")],
    attacks: Annotated[str, typer.Option("--attacks", help="comma-separated attacks")] = "pgd10",
    datasets: Annotated[Optional[str], typer.Option("--datasets", help="comma-separated datasets (default: the preset's)")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="comma-separated seeds")] = "0",
    eps: EpsOpt = None,
    norm: NormOpt = None,
    preset: PresetOpt = None,
    executor: Annotated[str, typer.Option(help="local (in process) | ray")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    num_cpus: Annotated[Optional[int], typer.Option("--num-cpus", help="CPUs of a local Ray cluster")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", help="GPUs per Ray task")] = 0.0,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    epochs: Annotated[Optional[int], typer.Option(help="training epochs for every recipe (default: the preset's)")] = None,
    lambda_mi: Annotated[Optional[str], typer.Option("--lambda-mi", help="sweep lambda_MI over these values (Fig. 6b)")] = None,
    eta: Annotated[Optional[str], typer.Option(help="sweep the mixup eta over these values (Fig. 6a)")] = None,
    model_dir: ModelDirOpt = None,
    zoo_threat_model: ZooThreatOpt = None,
    zoo_dataset: ZooDatasetOpt = None,
    data_dir: DataDirOpt = None,
    set_: SetOpt = None,
    preset_file: PresetFileOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    cpus_per_task: Annotated[int, typer.Option("--cpus-per-task", help="Ray: CPUs (and torch threads) per task")] = 1,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Train each defense once per (dataset, seed), run its attacks; cells already in the store are skipped."""
    from varmixup_bench.attacks.spec import validate_attack
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.core.parsing import parse_eps_list, parse_name_list, parse_number
    from varmixup_bench.runs.sweep import EXECUTORS, SweepSpec, run_sweep, variants
    from varmixup_bench.core.workdir import resolve_workdir
    from varmixup_bench.defenses import parse_defense_spec

    defense_list = [str(parse_defense_spec(d)) for d in parse_name_list(defenses, "defense")]
    attack_list = [str(validate_attack(a)) for a in parse_name_list(attacks, "attack")]
    EXECUTORS.get(executor)
    from varmixup_bench.config.preset_io import parse_set_options
    from varmixup_bench.training.runner import resolve_settings

    _set_threads(threads)
    _check_positive(cpus_per_task=cpus_per_task)
    base = _base_preset(preset, preset_file)
    set_values = parse_set_options(set_)
    norm_v, norm_now = _norm_choice(norm, base, set_values)
    if norm_v is not None:
        set_values["norm"] = norm_v
    settings = resolve_settings(base, **set_values)
    dataset_list = parse_name_list(datasets, "dataset") if datasets else [settings.dataset]
    for d in dataset_list:
        check_dataset_name(d)
    try:
        seed_list = [int(x) for x in parse_name_list(seeds, "seed")]
    except ValueError:
        raise BenchError(f"invalid --seeds {seeds!r}: expected comma-separated integers") from None
    _check_positive(train_subset=train_subset, test_subset=test_subset, epochs=epochs, num_cpus=num_cpus)
    overrides = {k: v for k, v in dict(train_subset=train_subset, test_subset=test_subset, **set_values,
                                       **_zoo_overrides(model_dir, zoo_threat_model, zoo_dataset)).items() if v is not None}
    lambdas = [parse_number(v, "lambda_mi") for v in parse_name_list(lambda_mi, "lambda_mi")] if lambda_mi else None
    etas = [parse_number(v, "eta") for v in parse_name_list(eta, "eta")] if eta else None
    if lambdas and not all(0 <= v <= 1 for v in lambdas):
        raise BenchError(f"--lambda-mi values must be in [0, 1], got {lambda_mi}")
    if etas and not all(v > 0 for v in etas):
        raise BenchError(f"--eta values must be > 0, got {eta}")
    eps_list = parse_eps_list(eps, norm_now) if eps else None
    _check_before_work(defense_list, attack_list, eps_list, base, overrides, dataset_list)
    spec = SweepSpec(defense_list, attack_list, dataset_list, seed_list, eps_list, base,
                     resolve_workdir(workdir), device, overrides, str(data_dir) if data_dir else None, not no_progress,
                     epochs, variants(lambdas, etas))
    records, skipped, seconds = run_sweep(spec, executor, {"address": address, "num_cpus": num_cpus,
                                                           "gpus_per_task": gpus_per_task,
                                                           "cpus_per_task": cpus_per_task})
    err.print(f"sweep: {len(records)} cell(s) run, {skipped} already in the store, {seconds:.1f} s ({executor})")
    if records:
        _print_records(records)


def _int_list(text: str, option: str) -> list[int]:
    from varmixup_bench.core.parsing import parse_name_list

    try:
        values = [int(v) for v in parse_name_list(text, option)]
    except ValueError:
        raise BenchError(f"invalid --{option} {text!r}: expected comma-separated integers") from None
    if any(v < 1 for v in values):
        raise BenchError(f"--{option} values must be >= 1, got {text}")
    return values


def _trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
             train_subset, test_subset, no_progress):
    """Validate the shared options, then train (or load) the defense: what converge and report start from."""
    from varmixup_bench.config.preset_io import parse_set_options
    from varmixup_bench.training.runner import train
    from varmixup_bench.defenses import parse_defense_spec

    parse_defense_spec(defense)
    _check_positive(epochs=epochs)
    _set_threads(threads)
    ctx = _context(dataset, _base_preset(preset, preset_file), device, seed, workdir, data_dir, False, train_subset,
                   test_subset, no_progress, **parse_set_options(set_))
    d = train(defense, ctx.dataset, workdir=ctx.workdir, preset=ctx.settings, epochs=epochs, device=ctx.device,
              show_progress=not no_progress)
    import torch

    err.print(f"[bold]{d.spec}[/] on {d.dataset.name}: {'trained' if d.info['trained'] else 'loaded'} "
              f"({d.info['config_hash']}); device {ctx.device}, {torch.get_num_threads()} thread(s)")
    return d, ctx


EpochsOpt = Annotated[Optional[int], typer.Option(help="training epochs (default: the preset's for this recipe)")]


@app.command()
def converge(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE]")],
    attack: Annotated[str, typer.Option(help="the attack whose budget grows: adaptive-pgd | pgd | adaptive-apgd")] = "adaptive-pgd",
    steps: Annotated[str, typer.Option(help="attack steps, comma list")] = "10,20,50,100",
    eot: Annotated[str, typer.Option(help="EOT draws per step (randomised defenses), comma list")] = "1,8,32",
    restarts: Annotated[str, typer.Option(help="random restarts, comma list")] = "1",
    eps: Annotated[Optional[str], typer.Option(help="L-inf radius on the [0,1] scale (default: the preset's)")] = None,
    plot_output: Annotated[Optional[Path], typer.Option("--plot", help="convergence PNG (default under the workdir)")] = None,
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    preset_file: PresetFileOpt = None,
    set_: SetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Attack the same images with a growing budget (steps x EOT draws x restarts): one record per budget,
    a convergence plot, and a warning when the largest budget is still significantly below the one before."""
    from varmixup_bench.runs.converge import budget_specs, plot_convergence, run_convergence, unconverged
    from varmixup_bench.core.parsing import parse_eps
    from varmixup_bench.results.store import ResultStore

    grid = dict(steps=_int_list(steps, "steps"), eot=_int_list(eot, "eot"), restarts=_int_list(restarts, "restarts"))
    budget_specs(attack, **grid, stochastic=True)  # validates the attack and the grid before any training
    eps_v = parse_eps(eps) if eps is not None else None
    d, ctx = _trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
                      train_subset, test_subset, no_progress)
    records = run_convergence(d, attack, **grid, eps=eps_v, workdir=ctx.workdir, show_progress=not no_progress)
    _print_records(records)
    path = plot_output or ctx.workdir / "figures" / f"converge-{d.spec.replace('+', '_')}-{d.info['config_hash']}.png"
    plot_convergence(ResultStore(ctx.workdir).records(), path, d.spec, d.dataset.name, attack)
    out.print(f"wrote {path}")
    for prev, last, axis in unconverged(records):
        out.print(f"[yellow]not converged:[/] {last['attack']} {last['robust_acc']:.1f}% is significantly below "
                  f"{prev['attack']} {prev['robust_acc']:.1f}% (more {axis} still helps the attack)")


@app.command()
def report(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE]")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="folder for report.md, report.html and "
                                                   "the PNGs (default <workdir>/reports/DEFENSE-KEY)")] = None,
    steps: Annotated[str, typer.Option(help="convergence: attack steps, comma list")] = "10,20,50",
    eot: Annotated[str, typer.Option(help="convergence: EOT draws, comma list")] = "1,8",
    restarts: Annotated[str, typer.Option(help="convergence: random restarts, comma list")] = "1",
    transfer_from: Annotated[str, typer.Option("--transfer-from", help="defense whose F_w crafts the transfer "
                                               "attack")] = "erm",
    ece_threshold: Annotated[float, typer.Option("--ece-threshold", help="calibration flag above this ECE (%)")] = 10.0,
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    preset_file: PresetFileOpt = None,
    set_: SetOpt = None,
    epochs: EpochsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    train_subset: TrainSubsetOpt = None,
    test_subset: TestSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """One page per defense with the checklist of Carlini et al. 2019: eps curve, convergence, adaptive vs
    oblivious, black-box and transfer vs white-box, worst case over draws, corruptions, calibration; each with
    numbers, 95 % intervals and a verdict. Runs only what the store does not hold yet."""
    from varmixup_bench.runs.converge import budget_specs
    from varmixup_bench.views.report import ReportOptions, check_output_folder, write_report
    from varmixup_bench.defenses import parse_defense_spec

    check_output_folder(output)  # a folder, not report.md: refused before any training
    grid = dict(steps=_int_list(steps, "steps"), eot=_int_list(eot, "eot"), restarts=_int_list(restarts, "restarts"))
    budget_specs("adaptive-pgd", **grid, stochastic=True)
    parse_defense_spec(transfer_from)
    if ece_threshold <= 0:
        raise BenchError(f"--ece-threshold must be > 0, got {ece_threshold}")
    d, ctx = _trained(defense, dataset, preset, preset_file, set_, epochs, seed, device, threads, workdir, data_dir,
                      train_subset, test_subset, no_progress)
    options = ReportOptions(steps=tuple(grid["steps"]), eot=tuple(grid["eot"]), restarts=tuple(grid["restarts"]),
                            transfer_from=transfer_from, ece_threshold=ece_threshold)
    md, page, items = write_report(d, ctx.workdir, output, options, show_progress=not no_progress)
    table = Table(title=f"robustness report: {d.spec}")
    for col in ("check", "verdict", "found"):
        table.add_column(col)
    colour = {"pass": "green", "flag": "red", "n/a": "dim"}
    for it in items:
        table.add_row(it.key, f"[{colour[it.verdict]}]{it.mark}[/]", it.reason)
    out.print(table)
    out.print(f"wrote {md} and {page}")


@app.command("plot")
def plot_command(
    kind: Annotated[str, typer.Argument(help="eps | lambda-mi | eta | linearity | converge")],
    attack: Annotated[Optional[str], typer.Option(help="the attack plotted (default pgd10; converge: every "
                                                  "budgeted attack)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="only this dataset")] = None,
    defense: Annotated[Optional[str], typer.Option("--defense", "-d", help="converge: only this defense")] = None,
    norm: Annotated[str, typer.Option("--norm", help="the threat model plotted: linf | l2")] = "linf",
    output: OutputOpt = None,
    workdir: WorkdirOpt = None,
) -> None:
    """Write a PNG plot of recorded results (one line per defense; converge: one per EOT count)."""
    from varmixup_bench.attacks.base import parse_norm
    from varmixup_bench.views.plots import PLOTS, plot
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    PLOTS.get(kind)
    norm_v = parse_norm(norm).value
    wd = resolve_workdir(workdir, create=False)
    suffix = "-l2" if norm_v == "L2" else ""
    path = output or wd / "figures" / f"plot-{kind}-{attack or 'pgd10'}{suffix}.png"
    plot(ResultStore(wd).records(), kind, path, attack, dataset, defense, norm_v)
    out.print(f"wrote {path}")


@app.command()
def fid(
    defense: Annotated[str, typer.Option("--defense", "-d", help="a Var* recipe (its VAE gives the VarMixup samples)")] = "varmixup",
    feature_weights: Annotated[Optional[Path], typer.Option("--feature-weights", help="torchvision inception_v3 weights (.safetensors)")] = None,
    n: Annotated[int, typer.Option(help="samples per set")] = 1000,
    dataset: DatasetOpt = None,
    preset: PresetOpt = None,
    device: DeviceOpt = "auto",
    seed: SeedOpt = None,
    workdir: WorkdirOpt = None,
    data_dir: DataDirOpt = None,
    train_subset: TrainSubsetOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """FID and KID between training images and Mixup / VarMixup samples (paper Fig. 5)."""
    from varmixup_bench.views.fid import InceptionFeatures, fid_kid, sample_sets
    from varmixup_bench.defenses import parse_defense_spec

    spec = parse_defense_spec(defense)
    _check_positive(n=n)
    if feature_weights is None:
        raise BenchError("bench fid needs --feature-weights FILE: torchvision inception_v3 weights as safetensors "
                         "(they cannot be downloaded on an offline machine)")
    if not feature_weights.exists():
        raise BenchError(f"--feature-weights {feature_weights} does not exist")
    ctx = _context(dataset, preset, device, seed, workdir, data_dir, False, train_subset, None, no_progress)
    recipe = spec.build_recipe(ctx.settings)
    recipe.prepare(ctx)
    x = ctx.dataset.train.x
    sets = sample_sets(recipe, x, n, ctx.settings.seed, ctx.settings.eta)
    real = x[torch_randperm(len(x), n, ctx.settings.seed)]
    features = InceptionFeatures(feature_weights).to(ctx.device)
    table = Table(title=f"sample statistics vs {len(real)} training images of {ctx.dataset.name}")
    for col in ("samples", "FID", "KID", "KID std"):
        table.add_column(col)
    for name, imgs in sets.items():
        r = fid_kid(real.to(ctx.device), imgs.to(ctx.device), features)
        table.add_row(name, f"{r['fid']:.3f}", f"{r['kid']:.5f}", f"{r['kid_std']:.5f}")
    out.print(table)


def torch_randperm(size: int, n: int, seed: int):
    import torch

    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:n]


@app.command()
def diagnose(
    workdir: WorkdirOpt = None,
    dataset: DatasetOpt = None,
) -> None:
    """Check every defense in the store for the classic signs of gradient masking."""
    from varmixup_bench.views.diagnostics import CHECKS, diagnose as run_checks
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    frame = leaderboard_frame(ResultStore(resolve_workdir(workdir, create=False)).records(), dataset)
    findings = run_checks(frame)
    if not findings:
        out.print(f"no warning signs in {frame.groupby(['dataset', 'defense']).ngroups} defense(s); "
                  f"checks: {', '.join(CHECKS.names())}")
        return
    table = Table(title="gradient-masking warning signs (each trained model checked on its own evaluations)")
    for col in ("dataset", "defense", "seed", "check", "finding"):
        table.add_column(col)
    for f in findings:
        table.add_row(f.dataset, f.defense, f.seed, f.check, f.message)
    out.print(table)


@app.command()
def retire(
    reason: Annotated[str, typer.Option(help="why (kept with each retired record in the store)")],
    before: Annotated[str, typer.Option(help="only records stored before this UTC time, e.g. 2026-11-23T10:40")],
    attack: Annotated[Optional[str], typer.Option(
        "--attack", "-a", help="the attack whose records to retire (exact name); every attack if omitted, which "
                               "needs --seed")] = None,
    defense: Annotated[Optional[str], typer.Option("--defense", "-d", help="only this defense")] = None,
    seed: Annotated[Optional[int], typer.Option(help="only this training seed (e.g. one whose weights were lost)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be retired, change nothing")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Move records found wrong after they were stored (an attack fixed since, or a model whose weights were lost)
    out of the current results (the store keeps them, with the reason: `bench export --retired`): tables, reports
    and reuse stop seeing them, and the next sweep runs those cells again."""
    from varmixup_bench.results.retire import retire_records
    from varmixup_bench.core.workdir import resolve_workdir

    gone = retire_records(resolve_workdir(workdir, create=False), attack, before, reason, defense, dry_run, seed)
    verb = "would retire" if dry_run else "retired"
    out.print(f"{verb} {len(gone)} record(s)" + "".join(
        f"\n  {r['defense']} {r['attack']} seed {r.get('seed')} eps {r.get('eps')} ({r.get('timestamp')})"
        for r in gone))


@app.command()
def restore(
    csv: Annotated[Path, typer.Argument(help="a long-layout leaderboard CSV (`bench leaderboard --format csv "
                                             "--layout long`), e.g. a committed leaderboards/*.csv")],
    workdir: WorkdirOpt = None,
) -> None:
    """Rebuild a lost workdir's records from a leaderboard CSV: tables, diagnostics and reports work again, and
    a resumed sweep skips the restored cells and checks each model it retrains against its restored clean cell."""
    from varmixup_bench.results.restore import restore as restore_records
    from varmixup_bench.core.workdir import resolve_workdir

    added, there = restore_records(csv, resolve_workdir(workdir))
    out.print(f"restored {added} record(s) from {csv} ({there} already in the store); the CSV holds no weights: "
              f"a resumed sweep retrains the models it needs")


@app.command("export")
def export_command(
    output: Annotated[Path, typer.Argument(help="the JSONL file to write (one record per line)")],
    retired: Annotated[bool, typer.Option("--retired", help="also the retired records, each with its "
                                                             "retired_reason")] = False,
    workdir: WorkdirOpt = None,
) -> None:
    """Write the store's records as JSON lines: a backup, a file to share, or the way back from a damaged
    results.sqlite (`bench import`)."""
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    n = ResultStore(resolve_workdir(workdir, create=False)).export_jsonl(output, retired=retired)
    out.print(f"exported {n} record(s) to {output}")


@app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="a JSONL file of records (`bench export`, or an old results.jsonl)")],
    workdir: WorkdirOpt = None,
) -> None:
    """Add the records of a JSONL file to the store, in one transaction: a record already stored is kept once,
    and a line that does not parse is moved to <workdir>/results.quarantine.jsonl and reported."""
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.core.workdir import resolve_workdir

    if not source.is_file():
        raise BenchError(f"{source}: no such file")
    store = ResultStore(resolve_workdir(workdir))
    read, added, bad = store.import_jsonl(source)
    out.print(f"imported {read} record(s) from {source} into {store.path} ({added} new, {read - added} already "
              f"stored)")
    if bad:
        err.print(f"[yellow]warning:[/] {len(bad)} line(s) of {source} do not parse (line "
                  f"{', '.join(map(str, bad[:10]))}{'…' if len(bad) > 10 else ''}); they were moved to "
                  f"{store.quarantine_path}", highlight=False, soft_wrap=True)


@app.command()
def perf(
    fmt: str = typer.Option("table", "--format", "-f", help="table | json"),
    only: Optional[str] = typer.Option(None, help="comma-separated benchmark names"),
    repeats: int = typer.Option(5, help="timed repeats per side (median taken)"),
) -> None:
    """Time the harness against plain PyTorch baselines; each measurement is a ratio."""
    from varmixup_bench.core.parsing import parse_name_list
    from varmixup_bench.dev.perf import BENCHMARKS, run_benchmarks

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


# ---- bench campaign run|status|compose PLAN.toml (varmixup_bench.campaigns) ----

campaign_app = typer.Typer(no_args_is_help=True, help="Benchmark campaigns as data: a TOML plan of passes, "
                           "steps and claims, run resumably, its status, and its composed page.")
app.add_typer(campaign_app, name="campaign")
PlanArg = Annotated[Path, typer.Argument(help="the campaign plan (TOML: [campaign], [[pass]], [[step]], [[claim]])")]


@campaign_app.command("run")
def campaign_run(
    plan: PlanArg,
    executor: Annotated[str, typer.Option(help="local (in process) | ray")] = "local",
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: start a local one)")] = None,
    num_cpus: Annotated[Optional[int], typer.Option("--num-cpus", help="CPUs of a local Ray cluster")] = None,
    gpus_per_task: Annotated[float, typer.Option("--gpus-per-task", help="GPUs per Ray task")] = 0.0,
    cpus_per_task: Annotated[int, typer.Option("--cpus-per-task", help="Ray: CPUs (and torch threads) per task")] = 1,
    device: DeviceOpt = "auto",
    threads: ThreadsOpt = None,
    workdir: WorkdirOpt = None,
    no_progress: NoProgressOpt = False,
) -> None:
    """Run the plan's passes in order (cells already in the store are skipped), then its extra steps."""
    import shlex

    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.workdir import resolve_workdir
    from varmixup_bench.runs.sweep import EXECUTORS

    loaded = load_plan(plan)  # every value checked before any work (and before the workdir is created)
    EXECUTORS.get(executor)
    _check_positive(cpus_per_task=cpus_per_task, num_cpus=num_cpus)
    _set_threads(threads)
    wd = resolve_workdir(workdir)
    command = shlex.join(["bench", "campaign", "run", str(plan), "--workdir", str(wd)]
                         + (["--executor", executor] if executor != "local" else [])
                         + (["--threads", str(threads)] if threads is not None else []))
    summary = run_campaign(loaded, wd, executor=executor, device=device, show_progress=not no_progress,
                           options={"address": address, "num_cpus": num_cpus, "gpus_per_task": gpus_per_task,
                                    "cpus_per_task": cpus_per_task},
                           command=command, log=lambda message: err.print(message, highlight=False, markup=False))
    err.print(f"campaign {loaded.name}: {summary.cells_run} cell(s) run, {summary.cells_skipped} already in the "
              f"store; {len(summary.steps_run)} step(s) run, {len(summary.steps_skipped)} done before", highlight=False)


@campaign_app.command("status")
def campaign_status(plan: PlanArg, device: DeviceOpt = "auto", workdir: WorkdirOpt = None) -> None:
    """Each pass's missing cells and measured time, and which extra steps are done."""
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.status import cell_text, pass_status, step_status
    from varmixup_bench.core.workdir import resolve_workdir

    loaded = load_plan(plan)
    wd = resolve_workdir(workdir)
    table = Table(title=f"campaign {loaded.name} in {wd}")
    for col in ("pass / step", "cells", "missing", "runs", "seconds"):
        table.add_column(col)
    passes, steps = pass_status(loaded, wd, device), step_status(loaded, wd)
    for st in passes:
        table.add_row(f"pass {st.name}", str(len(st.cells)), str(len(st.missing)), str(st.runs), f"{st.seconds:.1f}")
    for st in steps:
        table.add_row(f"step {st.name} ({st.kind})", "-", "done" if st.done else "to run", str(st.runs),
                      f"{st.seconds:.1f}")
    out.print(table)
    missing = [f"  pass {st.name}: {cell_text(c, st.norm)}" for st in passes for c in st.missing]
    out.print("\n".join(["missing cells:", *missing]) if missing else "missing cells: none", highlight=False)


@campaign_app.command("compose")
def campaign_compose(
    plan: PlanArg,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="the page (markdown; the long CSV goes "
                                                   "beside it as .csv; default <workdir>/campaign-NAME.md)")] = None,
    device: DeviceOpt = "auto",
    workdir: WorkdirOpt = None,
) -> None:
    """Write the campaign's page (header, headline, full matrix, claims, flags; PARTIAL until complete)."""
    import shlex

    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.workdir import resolve_workdir

    loaded = load_plan(plan)
    if output is not None and output.suffix.lower() != ".md":
        raise BenchError(f"--output {output}: the page is markdown, give a .md path (the CSV goes beside it)")
    wd = resolve_workdir(workdir, create=False)
    if not wd.is_dir():
        raise BenchError(f"workdir {wd} does not exist: run `bench campaign run {plan}` first")
    page = output or wd / f"campaign-{loaded.name}.md"
    command = shlex.join(["bench", "campaign", "compose", str(plan), "--workdir", str(wd), "--output", str(page)])
    done = compose(loaded, wd, page, command, device)
    state = "complete" if done.complete else (f"PARTIAL: {len(done.missing_cells)} cell(s), "
                                              f"{len(done.missing_steps)} step(s) missing")
    out.print(f"wrote {done.page} and {done.csv} ({state})", highlight=False)


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
