"""The Var* defenses' shared MMD-VAE: trained once per (dataset, VAE settings) and cached on its own key.

Regular VAE: trained on clean images. Adversarial VAE (`adv-` prefix, the paper's "Implementation Details"):
each batch is first perturbed by L-inf PGD that *maximises* the reconstruction error within vae_adv_eps
(random start, vae_adv_steps steps of vae_adv_step, VAE in eval mode while crafting), and the VAE learns to
reconstruct the clean image from the perturbed one: the paper's hypothesis that adversarial training makes
the latent code more informative, made concrete.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.core.clock import running_time, stopped_time
from varmixup_bench.training.cache import WeightCache, config_hash
from varmixup_bench.training.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from varmixup_bench.training.data import Dataset, Split, canonical_dataset_name, split_fingerprint
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.progress import progress
from varmixup_bench.defenses.base import TrainContext, eval_mode
from varmixup_bench.defenses.vae import build_vae
from varmixup_bench.training.models import to_channels_last

VAE_CODE_VERSION = 1
MONITOR_IMAGES = 1000  # held-out images whose reconstruction PSNR each VAE epoch records (not used in training)


def bandwidth_of(settings: Any) -> float | None:
    """Kernel bandwidth: explicit, else 2 * the latent's length, the mean squared distance of two N(0, I) samples
    (flat: 2 * vae_latent_dim; conv: None, taken from the flattened latent, whose length depends on the image)."""
    if settings.vae_bandwidth:
        return float(settings.vae_bandwidth)
    return 2.0 * settings.vae_latent_dim if settings.vae_arch == "flat" else None


def vae_epochs(settings: Any, adversarial: bool) -> int:
    """Training epochs of the VAE: the adversarial one may have its own (`vae_adv_epochs`; each of its epochs
    runs vae_adv_steps PGD steps per batch, so it costs several plain epochs)."""
    adv = settings.vae_adv_epochs
    return int(adv) if adversarial and adv is not None else int(settings.vae_epochs)


def vae_seed(settings: Any) -> int:
    """The seed the MMD-VAE trains with: `vae_seed` where set (one VAE for several training seeds), else the
    training seed."""
    return int(settings.seed if settings.vae_seed is None else settings.vae_seed)


def vae_config(settings: Any, adversarial: bool) -> dict:
    """Every VAE setting that determines its weights (the source dataset is added by vae_key)."""
    cfg = {
        "latent_dim": settings.vae_latent_dim, "width": settings.vae_width, "gamma": settings.vae_gamma,
        "bandwidth": bandwidth_of(settings), "epochs": vae_epochs(settings, adversarial), "batch_size": settings.vae_batch_size,
        "lr": settings.vae_lr, "adversarial": adversarial,
        "from": canonical_dataset_name(settings.vae_from) if settings.vae_from else None,
        "seed": vae_seed(settings),
        "code": VAE_CODE_VERSION,
    }
    if settings.vae_arch != "flat":  # the flat VAE's keys stay as they were before architectures existed
        cfg.update(arch=settings.vae_arch, latent_channels=settings.vae_latent_channels,
                   latent_stride=settings.vae_latent_stride)
        cfg.pop("latent_dim")
    if adversarial:
        cfg.update(adv_eps=settings.vae_adv_eps, adv_step=settings.vae_adv_step, adv_steps=settings.vae_adv_steps)
    return cfg


def reconstruction_pgd(vae: nn.Module, x: torch.Tensor, eps: float, step: float, steps: int) -> torch.Tensor:
    """L-inf PGD that maximises ||reconstruct(x + delta) - x||^2 (no classifier, so not a torchattacks attack)."""
    with eval_mode(vae):
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            err = F.mse_loss(vae.reconstruct(adv), x)
            (grad,) = torch.autograd.grad(err, adv)
            adv = torch.min(torch.max(adv.detach() + step * grad.sign(), x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def psnr_db(mse: float) -> float:
    """Peak signal-to-noise ratio of a pixel-mean squared error on the [0,1] scale."""
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def _rng_states(gen: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    states = {"shuffle": gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def train_vae(vae: nn.Module, train: Split, settings: Any, adversarial: bool, device: torch.device, seed: int,
              show_progress: bool = True, monitor: torch.Tensor | None = None, checkpoint_dir: Path | None = None,
              on_epoch_end: Callable[[int], None] | None = None) -> list[dict]:
    """Adam on recon + gamma * MMD; returns per-epoch mean {epoch, loss, recon, mmd, seconds} and, given held-out
    `monitor` images, their reconstruction MSE and PSNR after each epoch (the fidelity curve). With
    `checkpoint_dir`, every epoch is checkpointed with the generators' states, so an interrupted training resumes
    to the weights an uninterrupted one reaches."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    vae.to(device).train()
    opt = torch.optim.Adam(vae.parameters(), lr=settings.vae_lr)
    start_epoch, history = 0, []
    if checkpoint_dir is not None:
        states: dict[str, torch.Tensor] = {}
        resumed = load_checkpoint(checkpoint_dir, vae, opt, states)
        if resumed is not None:
            start_epoch, history = resumed
            gen.set_state(states["shuffle"])
            torch.set_rng_state(states["torch"])
            if "cuda" in states and device.type == "cuda":
                torch.cuda.set_rng_state(states["cuda"], device)
    x_all = train.x.to(device)
    n, bs = len(x_all), settings.vae_batch_size
    steps = math.ceil(n / bs)
    bw = bandwidth_of(settings)
    with progress(show_progress) as bar:
        n_epochs = vae_epochs(settings, adversarial)
        task = bar.add_task(f"train {'adv-' if adversarial else ''}VAE", total=n_epochs * steps,
                            completed=start_epoch * steps,
                            info=f"resumed after epoch {start_epoch}" if start_epoch else "")
        for epoch in range(start_epoch + 1, n_epochs + 1):
            epoch_start, cpu_start, stop_start = running_time(), time.process_time(), stopped_time()
            perm = torch.randperm(n, generator=gen).to(device)
            sums = {"loss": 0.0, "recon": 0.0, "mmd": 0.0}
            for i in range(steps):
                x = x_all[perm[i * bs : (i + 1) * bs]]
                x_in = (reconstruction_pgd(vae, x, settings.vae_adv_eps, settings.vae_adv_step, settings.vae_adv_steps)
                        if adversarial else x)
                vae.train()
                out = vae.loss(x_in, x, settings.vae_gamma, bw)
                if not torch.isfinite(out["loss"]):
                    raise BenchError(f"training the VAE: loss is {out['loss'].item()} in epoch {epoch}; lower vae_lr")
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
                for k in sums:
                    sums[k] += out[k].item() * len(x)
                bar.advance(task)
            row = {"epoch": epoch, **{k: v / n for k, v in sums.items()}, "seconds": running_time() - epoch_start,
                   "cpu_seconds": time.process_time() - cpu_start,  # as train_classifier: running and CPU seconds
                   "stopped_seconds": stopped_time() - stop_start}
            if monitor is not None:
                vae.eval()
                row["test_mse"] = reconstruction_error(vae, monitor, device)
                row["test_psnr_db"] = psnr_db(row["test_mse"])
            history.append(row)
            psnr = f" test {row['test_psnr_db']:.1f} dB" if monitor is not None else ""
            bar.update(task, info=f"epoch {epoch} recon {row['recon']:.4f} mmd {row['mmd']:.4f}{psnr}")
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, vae, opt, epoch, history, _rng_states(gen, device))
            if on_epoch_end is not None:
                on_epoch_end(epoch)
    vae.eval()
    if checkpoint_dir is not None:
        remove_checkpoint(checkpoint_dir)
    return history


class FittedVAE(nn.Module):
    """A VAE used on data of another shape (paper Table 3): inputs resized to the VAE's, outputs back."""

    def __init__(self, vae: nn.Module, target_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.vae = vae
        self.target_shape = tuple(target_shape)

    @staticmethod
    def _fit(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        c, h, w = shape
        if x.shape[1] != c:
            x = x.mean(1, keepdim=True).expand(-1, c, -1, -1) if c in (1, 3) else x
            if x.shape[1] != c:
                raise BenchError(f"cannot fit {x.shape[1]}-channel images to a {c}-channel VAE")
        if tuple(x.shape[-2:]) != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)
        return x

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encode_mean(self._fit(x, self.vae.shape))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._fit(self.vae.decode(z), self.target_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mean(x))


def source_dataset(ctx: TrainContext) -> Dataset:
    name = ctx.settings.vae_from
    if not name or canonical_dataset_name(name) == ctx.dataset.name:
        return ctx.dataset
    from varmixup_bench.training.data import load_dataset

    return load_dataset(name, cache_dir=ctx.workdir / "data", seed=ctx.settings.subset_seed)


def vae_key(ctx: TrainContext, adversarial: bool, source: Dataset) -> str:
    # keyed on the source data's content, not on its name or path as typed
    return config_hash({"data": split_fingerprint(source.train), "shape": list(source.image_shape),
                        **vae_config(ctx.settings, adversarial)})


def get_vae(ctx: TrainContext, adversarial: bool, train_if_missing: bool = True) -> FittedVAE:
    """The (adversarial) VAE for ctx's dataset: from ctx's memo, the workdir cache, or trained now and cached."""
    memo_key = ("vae", adversarial)
    if memo_key in ctx.extras:
        return ctx.extras[memo_key]
    s = ctx.settings
    source = source_dataset(ctx)
    key = vae_key(ctx, adversarial, source)
    # a fully convolutional VAE is built for the target's size (its weights fit any size): no resizing
    shape = source.image_shape if s.vae_arch == "flat" else (source.image_shape[0], *ctx.dataset.image_shape[1:])
    vae = build_vae(s.vae_arch, shape, s)
    if s.channels_last:  # memory order only (in no key): 1.4-2x faster conv VAE inference on a CPU, 1.1x training
        to_channels_last(vae, vae.encoder)
    cache = WeightCache(ctx.workdir, "vaes")
    with cache.lock(key):
        if cache.exists(key):
            meta = cache.load(key, vae)
            trained = False
        elif not train_if_missing:
            raise BenchError(f"no {'adversarial ' if adversarial else ''}VAE for {source.name} with these settings "
                             f"in {cache.root}; run `bench vae train` first")
        else:
            start = running_time()
            held_out = source.test.x[:MONITOR_IMAGES] if len(source.test) else None
            history = train_vae(vae, source.train, s, adversarial, ctx.device, vae_seed(s), ctx.show_progress, held_out,
                                checkpoint_dir=cache.folder(key))
            meta = {"config": vae_config(s, adversarial), "dataset": source.name, "history": history,
                    # the epochs' own seconds: a training resumed in a later process still counts the earlier ones
                    "seconds": sum(h["seconds"] for h in history) if all("seconds" in h for h in history)
                    else running_time() - start}
            cache.save(key, vae, meta)
            trained = True
    vae.to(ctx.device).eval().requires_grad_(False)
    fitted = FittedVAE(vae, ctx.dataset.image_shape).eval()
    fitted.key, fitted.trained, fitted.meta = key, trained, meta  # type: ignore[attr-defined]
    ctx.extras[memo_key] = fitted
    return fitted


@torch.no_grad()
def encode_split(vae: FittedVAE, x: torch.Tensor, device: torch.device, batch_size: int = 512) -> torch.Tensor:
    """Encoder means of every image, computed in batches on `device`, returned on the CPU."""
    return torch.cat([vae.encode_mean(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])


def on_device(vae: FittedVAE, device: torch.device) -> FittedVAE:
    """Move the VAE to `device` if it is elsewhere (defenses are not bound to the device they were built on)."""
    p = next(vae.parameters())
    if p.device != device:
        vae.to(device)
    return vae


def reconstruction_error(vae: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 512) -> float:
    """Pixel-mean squared error of reconstructions from encoder means (a FittedVAE, or a bare VAE while training)."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size].to(device)
            total += F.mse_loss(vae.reconstruct(xb), xb, reduction="sum").item()
    return total / x.numel()

