"""`bench run`: train (or load) one defense, attack it, print and record the results."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from varmixup_bench.cli import console
from varmixup_bench.cli.common import (
    DataDirOpt, DatasetOpt, DeviceOpt, EpochsOpt, EpsOpt, LatentDimOpt, ModelDirOpt, NoProgressOpt, NormOpt,
    PresetFileOpt, PresetOpt, SeedOpt, SetOpt, TestSubsetOpt, ThreadsOpt, TrainSubsetOpt, VaeBandwidthOpt,
    VaeEpochsOpt, VaeFromOpt, VaeGammaOpt, WorkdirOpt, ZooDatasetOpt, ZooThreatOpt, app, base_preset, check_positive,
    context, norm_choice, preset_option, print_records, set_threads, zoo_overrides)
from varmixup_bench.core.errors import BenchError
from varmixup_bench.runs.checks import check_before_work


@app.command()
def run(
    defense: Annotated[str, typer.Option("--defense", "-d", help="RECIPE[+INFERENCE], e.g. varmixup+varmi, or "
                                         "robustbench:NAME[+INFERENCE]")],
    attack: Annotated[str, typer.Option("--attack", "-a", help="attack name(s), comma-separated")] = "pgd10",
    dataset: DatasetOpt = None,
    model: Annotated[Optional[str], preset_option("model")] = None,
    preset: PresetOpt = None,
    epochs: EpochsOpt = None,
    trials: Annotated[Optional[int], preset_option("trials")] = None,
    eps: EpsOpt = None,
    norm: NormOpt = None,
    step: Annotated[Optional[str], preset_option("step")] = None,
    lambda_mi: Annotated[Optional[float], preset_option("lambda_mi_default")] = None,
    n_mi: Annotated[Optional[int], preset_option("n_mi")] = None,
    eta: Annotated[Optional[float], preset_option("eta")] = None,
    batch_size: Annotated[Optional[int], preset_option("batch_size")] = None,
    eval_batch_size: Annotated[Optional[int], preset_option("eval_batch_size")] = None,
    trades_beta: Annotated[Optional[float], preset_option("trades_beta")] = None,
    train_eps: Annotated[Optional[str], preset_option("train_eps")] = None,
    train_step: Annotated[Optional[str], preset_option("train_step")] = None,
    train_steps: Annotated[Optional[int], preset_option("train_steps")] = None,
    amp: Annotated[Optional[bool], preset_option("amp", "--amp/--no-amp")] = None,
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
    n_adaptive: Annotated[Optional[int], preset_option("n_adaptive")] = None,
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

    base = base_preset(preset, preset_file)
    set_values = parse_set_options(set_)
    norm_v, norm_now = norm_choice(norm, base, set_values)
    eps_list = parse_eps_list(eps, norm_now) if eps is not None else None
    step_v = parse_step(step) if step is not None else None
    check_positive(epochs=epochs)  # not a preset field (an override of the recipe's epochs); the rest: check_preset
    set_threads(threads)
    train_eps_v = parse_eps(train_eps) if train_eps is not None else None
    train_step_v = parse_step(train_step) if train_step is not None else None
    if model is not None:
        MODELS.get(model)
    overrides = dict(model=model, trials=trials, eta=eta, n_mi=n_mi, batch_size=batch_size,
                     eval_batch_size=eval_batch_size, step=step_v, vae_from=vae_from, vae_epochs=vae_epochs,
                     vae_latent_dim=latent_dim, vae_gamma=vae_gamma, vae_bandwidth=vae_bandwidth,
                     trades_beta=trades_beta, train_eps=train_eps_v, train_step=train_step_v, train_steps=train_steps,
                     amp=amp, n_adaptive=n_adaptive, norm=norm_v,
                     **zoo_overrides(model_dir, zoo_threat_model, zoo_dataset))
    if lambda_mi is not None:
        overrides.update(lambda_mi={}, lambda_mi_default=lambda_mi)
    overrides.update(set_values)  # --set FIELD=VALUE
    shared = {k: v for k, v in dict(dataset=dataset, seed=seed, train_subset=train_subset,
                                    test_subset=test_subset).items() if v is not None}
    # every preset value (the options above, --set, --preset-file) is range-checked once, by check_preset
    check_before_work([defense], attacks, eps_list, base, {**overrides, **shared})
    ctx = context(dataset, base, device, seed, workdir, data_dir, download, train_subset, test_subset,
                  no_progress, **overrides)
    d = train(defense, ctx.dataset, workdir=ctx.workdir, preset=ctx.settings, epochs=epochs, device=ctx.device,
              show_progress=not no_progress, download=download)
    how = "trained" if d.info["trained"] else "zoo checkpoint loaded" if "zoo" in d.info else "loaded from cache"
    import torch

    console.err.print(f"[bold]{d.spec}[/] on {d.dataset.name}: {how} ({d.info['config_hash']}); device {ctx.device}, "
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
                console.err.print(f"skipped {name}: {exc}", markup=False, highlight=False, soft_wrap=True)
                break  # refused at every radius
    if not records:
        raise BenchError(f"no attack ran: {d.spec} refused {', '.join(refused)}")
    print_records(records)

