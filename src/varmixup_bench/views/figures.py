"""PNG grids: VAE inputs vs reconstructions, and Fig. 7-style Mixup vs VarMixup samples."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from varmixup_bench.core.atomic import atomic_write

LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def save_rows(rows: list[torch.Tensor], path: Path, min_size: int = 32) -> Path:
    """Write equal-length rows of images (each (n, C, H, W) in [0,1]) as one PNG; small images upscaled."""
    from torchvision.utils import save_image

    imgs = torch.cat([r.detach().cpu().clamp(0, 1) for r in rows])
    if imgs.shape[1] == 1:
        imgs = imgs.expand(-1, 3, -1, -1)
    if imgs.shape[-1] < min_size:
        imgs = F.interpolate(imgs, scale_factor=min_size // imgs.shape[-1] or 1, mode="nearest")
    path = Path(path)
    atomic_write(path, lambda tmp: save_image(imgs, tmp, nrow=len(rows[0]), padding=2, pad_value=1.0, format="png"))
    return path


@torch.no_grad()
def vae_rows(vae, x: torch.Tensor) -> list[torch.Tensor]:
    """Row 1: inputs; row 2: decode(encode_mean(inputs))."""
    return [x, vae.reconstruct(x)]


@torch.no_grad()
def sample_rows(vae, x_a: torch.Tensor, x_b: torch.Tensor, lambdas=LAMBDAS) -> list[torch.Tensor]:
    """Per pair (a, b): a row of input-space mixups lam*a + (1-lam)*b and a row of VarMixup samples."""
    rows = []
    mu_a, mu_b = vae.encode_mean(x_a), vae.encode_mean(x_b)
    for i in range(len(x_a)):
        lam = torch.tensor(lambdas, dtype=x_a.dtype, device=x_a.device).view(-1, 1, 1, 1)
        rows.append(lam * x_a[i] + (1 - lam) * x_b[i])
        z = lam.view(-1, 1) * mu_a[i] + (1 - lam.view(-1, 1)) * mu_b[i]
        rows.append(vae.decode(z))
    return rows


def pick_pairs(y: torch.Tensor, n_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of n_pairs (a, b) whose labels differ, seeded."""
    g = torch.Generator().manual_seed(seed)
    a_idx = torch.randperm(len(y), generator=g)[:n_pairs]
    b_idx = []
    for i in a_idx.tolist():
        others = (y != y[i]).nonzero().flatten()
        b_idx.append(int(others[torch.randint(len(others), (1,), generator=g)]))
    return a_idx, torch.tensor(b_idx)
