"""Expectation over Transformation without a Python loop over draws (Athalye et al. 2018; paper eq. 16).

The gradient of mean_d CE(F_d(x), y) over n draws d of the defense's randomness is computed from one forward
and one backward of the batch repeated n times (B·n inputs, draw-major), chunked so that at most
`max_rows` inputs go through the model at once. Every row of a call gets its own draw, so this is the
same estimator as n separate calls (`looped=True`, kept for checks and the perf baseline), in fewer, larger
kernels: what a GPU wants, and on a CPU no slower."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.attacks.base import Norm


def eot_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_draws: int, *, max_rows: int = 4096,
                 looped: bool = False) -> torch.Tensor:
    """Sum over n_draws draws of d CE(model(x), y)/dx (its sign is the EOT-PGD step); `model` returns
    log-probabilities (or logits) with a fresh draw per row on every call."""
    x = x.detach()
    grad = torch.zeros_like(x)
    per_call = 1 if looped else max(1, min(n_draws, max_rows // max(len(x), 1)))
    done = 0
    while done < n_draws:
        d = min(per_call, n_draws - done)
        xr = x.repeat(d, *([1] * (x.dim() - 1))).requires_grad_(True)  # draw-major: rows [k*B, (k+1)*B) = draw k
        loss = F.cross_entropy(model(xr), y.repeat(d), reduction="sum") / len(x)
        (g,) = torch.autograd.grad(loss, xr)
        grad += g.view(d, *x.shape).sum(dim=0)
        done += d
    return grad


def eot_pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float, steps: int,
            n_draws: int, max_rows: int = 4096, looped: bool = False, norm: Norm = Norm.LINF) -> torch.Tensor:
    """PGD with EOT gradients, random start; in L-inf the update and projection of torchattacks' EOTPGD, in L2
    those of its PGDL2 (normalised-gradient step, radial random start, scaling back onto the ball), so with one
    draw (a deterministic model) it reproduces torchattacks' PGD / PGDL2 given the same global seed."""
    x = x.detach()
    per_image = (len(x), *([1] * (x.dim() - 1)))
    if norm is Norm.L2:
        delta = torch.empty_like(x).normal_()
        r = torch.zeros(len(x), dtype=x.dtype, device=x.device).uniform_(0, 1)
        adv = (x + delta * (r / Norm.L2.distance(delta) * eps).view(per_image)).clamp(0, 1).detach()
    else:
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1).detach()
    for _ in range(steps):
        g = eot_gradient(model, adv, y, n_draws, max_rows=max_rows, looped=looped)
        if norm is Norm.L2:
            g = g / (Norm.L2.distance(g) + 1e-10).view(per_image)
        else:
            g = g.sign()
        adv = norm.project(x, adv.detach() + step * g, eps).detach()
    return adv
