"""Adversarial-training recipes: `at` (Madry et al.), `trades` (Zhang et al.), `iat` (Lamb et al.).

Inner attacks come from torchattacks (PGD; TPGD for TRADES' KL maximisation). torchattacks puts the model in
eval mode while crafting (BatchNorm uses running statistics, as the reference implementations do) and
restores train mode before the training forward pass.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.defenses.base import RECIPES, Recipe
from varmixup_bench.defenses.mixup import BetaMixing, mix_pairs, mixed_cross_entropy


class _AdversarialRecipe(Recipe):
    """Reads the inner attack's budget from the preset: train_eps, train_step, train_steps."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.eps = float(settings.train_eps)
        self.step = float(settings.train_step)
        self.steps = int(settings.train_steps)
        if not (0 < self.eps <= 1 and 0 < self.step <= 1 and self.steps >= 1):
            raise ValueError(f"bad inner attack: eps {self.eps}, step {self.step}, steps {self.steps} ([0,1] scale)")

    def config(self) -> dict:
        return {**super().config(), "train_eps": self.eps, "train_step": self.step, "train_steps": self.steps}

    def pgd(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torchattacks

        return torchattacks.PGD(model, eps=self.eps, alpha=self.step, steps=self.steps, random_start=True)(x, y)


@RECIPES.register("at", help="PGD adversarial training (Madry et al.): cross-entropy on L-inf PGD examples")
class AT(_AdversarialRecipe):
    name = "at"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        logits = model(self.pgd(model, x, y))
        return F.cross_entropy(logits, y, label_smoothing=self.settings.label_smoothing), logits


def trades_loss(logits_clean: torch.Tensor, logits_adv: torch.Tensor, y: torch.Tensor, beta: float,
                smoothing: float = 0.0):
    """CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x')), the KL averaged over the batch (TRADES eq.)."""
    ce = F.cross_entropy(logits_clean, y, label_smoothing=smoothing)
    kl = F.kl_div(F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean")
    return ce + beta * kl, ce, kl


@RECIPES.register("trades", help="TRADES: CE(f(x), y) + beta * KL(f(x) || f(x')), x' maximises the KL (TPGD)")
class TRADES(_AdversarialRecipe):
    name = "trades"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.beta = float(settings.trades_beta)
        if self.beta < 0:
            raise ValueError(f"trades_beta must be >= 0, got {self.beta}")

    def config(self) -> dict:
        return {**super().config(), "beta": self.beta}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        import torchattacks

        x_adv = torchattacks.TPGD(model, eps=self.eps, alpha=self.step, steps=self.steps)(x, y)
        logits_clean = model(x)
        total, _, _ = trades_loss(logits_clean, model(x_adv), y, self.beta, self.settings.label_smoothing)
        return total, logits_clean


def iat_loss(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, y: torch.Tensor, rng: np.random.Generator,
             eta: float, smoothing: float = 0.0):
    """Mean of the mixup loss on clean pairs and the mixup loss on adversarial pairs (separate lambdas)."""
    mixed, perm, lam = mix_pairs(x, rng, eta)
    logits = model(mixed)
    clean = mixed_cross_entropy(logits, y, perm, lam, smoothing)
    mixed_adv, perm_adv, lam_adv = mix_pairs(x_adv, rng, eta)
    adv = mixed_cross_entropy(model(mixed_adv), y, perm_adv, lam_adv, smoothing)
    return 0.5 * (clean + adv), logits


@RECIPES.register("iat", help="Interpolated Adversarial Training: mean of mixup on clean and on PGD pairs")
class IAT(BetaMixing, _AdversarialRecipe):
    name = "iat"

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        return iat_loss(model, x, self.pgd(model, x, y), y, rng, self.eta, self.settings.label_smoothing)
