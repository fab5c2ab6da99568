"""`bench vae`, `bench samples`, `bench fid`: the Var* defenses' MMD-VAE, its samples and their statistics."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import (
    DataDirOpt, DatasetOpt, DeviceOpt, DownloadOpt, LatentDimOpt, NoProgressOpt, OutputOpt, PresetOpt, SeedOpt,
    TestSubsetOpt, TrainSubsetOpt, VaeBandwidthOpt, VaeEpochsOpt, VaeFromOpt, VaeGammaOpt, WorkdirOpt, app,
    check_positive, context)
from varmixup_bench.core.errors import BenchError

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
    from varmixup_bench.defenses.latent import get_vae, psnr_db, reconstruction_error

    if action not in VAE_ACTIONS:
        raise BenchError(unknown_name_message("vae action", action, list(VAE_ACTIONS)))
    if action == "show":  # shows a VAE the workdir holds: a workdir that does not exist holds none (nor is made)
        from varmixup_bench.core.workdir import existing_workdir

        existing_workdir(workdir, lacks=", so it holds no VAE", advice="run `bench vae train` first")
    ctx = context(dataset, preset, device, seed, workdir, data_dir, download, train_subset, test_subset,
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
    for col in ("dataset", "latent dim", "epochs", "train recon", "train mmd", "test recon (pixel MSE)", "test PSNR (dB)",
                "figure"):
        table.add_column(col)
    last = hist[-1] if hist else {}
    table.add_row(ctx.dataset.name, str(vae.latent_dim), str(len(hist)), f"{last.get('recon', float('nan')):.5f}",
                  f"{last.get('mmd', float('nan')):.5f}", f"{err_test:.5f}", f"{psnr_db(err_test):.2f}", str(path))
    console.out.print(table)


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
    check_positive(pairs=pairs)
    ctx = context(dataset, preset, device, seed, workdir, data_dir, download, None, None, no_progress,
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
    console.out.print(f"wrote {path} ({pairs} pairs; odd rows input mixup, even rows {spec.recipe}; lambda 0 → 1 left to right)")



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
    from varmixup_bench.views.fid import InceptionFeatures, fid_kid, real_images, sample_sets
    from varmixup_bench.defenses import parse_defense_spec

    spec = parse_defense_spec(defense)
    check_positive(n=n)
    if feature_weights is None:
        raise BenchError("bench fid needs --feature-weights FILE: torchvision inception_v3 weights as safetensors "
                         "(they cannot be downloaded on an offline machine)")
    if not feature_weights.exists():
        raise BenchError(f"--feature-weights {feature_weights} does not exist")
    ctx = context(dataset, preset, device, seed, workdir, data_dir, False, train_subset, None, no_progress)
    recipe = spec.build_recipe(ctx.settings)
    recipe.prepare(ctx)
    x = ctx.dataset.train.x
    sets = sample_sets(recipe, x, n, ctx.settings.seed, ctx.settings.eta)
    real = real_images(x, n, ctx.settings.seed)
    features = InceptionFeatures(feature_weights).to(ctx.device)
    table = Table(title=f"sample statistics vs {len(real)} training images of {ctx.dataset.name}")
    for col in ("samples", "FID", "KID", "KID std"):
        table.add_column(col)
    for name, imgs in sets.items():
        r = fid_kid(real.to(ctx.device), imgs.to(ctx.device), features)
        table.add_row(name, f"{r['fid']:.3f}", f"{r['kid']:.5f}", f"{r['kid_std']:.5f}")
    console.out.print(table)

