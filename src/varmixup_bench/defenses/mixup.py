"""Recipe `mixup` (Zhang et al. 2018): train on lambda*x_i + (1-lambda)*x_j with mixed labels, lambda ~ Beta(eta, eta)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.defenses.base import RECIPES, Recipe


def mix_pairs(x: torch.Tensor, rng: np.random.Generator, eta: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """One lambda ~ Beta(eta, eta) per batch and a random partner permutation; returns (x', perm, lambda)."""
    lam = float(rng.beta(eta, eta))
    perm = torch.as_tensor(rng.permutation(x.shape[0]), device=x.device)
    return lam * x + (1.0 - lam) * x[perm], perm, lam


def beta_eta(settings) -> float:
    """The preset's eta for lambda ~ Beta(eta, eta), validated."""
    eta = float(settings.eta)
    if eta <= 0:
        raise ValueError(f"eta must be > 0, got {eta}")
    return eta


def mixed_cross_entropy(logits: torch.Tensor, y: torch.Tensor, perm: torch.Tensor, lam: float,
                        smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy against the mixed label lambda*y_i + (1-lambda)*y_j (each term label-smoothed by
    `smoothing`, the preset's label_smoothing)."""
    return (lam * F.cross_entropy(logits, y, label_smoothing=smoothing)
            + (1.0 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=smoothing))


class BetaMixing(Recipe):
    """Base of the recipes that draw lambda ~ Beta(eta, eta): validates eta and adds it to the config."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.eta = beta_eta(settings)

    def config(self) -> dict:
        return {**super().config(), "eta": self.eta}


@RECIPES.register("mixup", help="Mixup training, lambda ~ Beta(eta, eta)")
class Mixup(BetaMixing):
    name = "mixup"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        mixed, perm, lam = mix_pairs(x, rng, self.eta)
        logits = model(mixed)
        return mixed_cross_entropy(logits, y, perm, lam, self.settings.label_smoothing), logits

    def training_samples(self, x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        lam = lam.view(-1, *[1] * (x.dim() - 1)).to(x)
        return lam * x + (1.0 - lam) * partner
