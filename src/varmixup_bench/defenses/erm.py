"""Recipe `erm`: empirical risk minimisation, cross-entropy on clean training images (paper eq. 4)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.defenses.base import RECIPES, Recipe


@RECIPES.register("erm", help="empirical risk minimisation: cross-entropy on clean images")
class ERM(Recipe):
    name = "erm"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=self.settings.label_smoothing), logits

    def training_samples(self, x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        return x
