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
            n_draws: int, max_rows: int = 4096, looped: bool = False) -> torch.Tensor:
    """L-inf PGD with EOT gradients, random start; the same update and projection as torchattacks' EOTPGD,
    so with one draw (a deterministic model) it reproduces torchattacks' PGD given the same global seed."""
    x = x.detach()
    adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1).detach()
    for _ in range(steps):
        g = eot_gradient(model, adv, y, n_draws, max_rows=max_rows, looped=looped)
        adv = adv.detach() + step * g.sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1).detach()
    return adv
