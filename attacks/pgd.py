"""L-infinity PGD (Madry et al.) with random start, from torchattacks; `pgd10` and `pgd50`."""
from __future__ import annotations

import torch
from torch import nn

from attacks.base import ATTACKS, Attack, ThreatModel


class PGD(Attack):
    """Untargeted L-inf PGD, cross-entropy loss, uniform random start in the eps-ball."""

    steps = 10

    def config(self) -> dict:
        return {**super().config(), "steps": self.steps, "random_start": True}

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import torchattacks

        if self.eps == 0:
            return x.clone()
        attack = torchattacks.PGD(model, eps=self.eps, alpha=self.step, steps=self.steps, random_start=True)
        return attack(x, y)


@ATTACKS.register("pgd10", help="untargeted L-inf PGD, 10 steps, random start (torchattacks)")
class PGD10(PGD):
    name = "pgd10"
    steps = 10


@ATTACKS.register("pgd50", help="untargeted L-inf PGD, 50 steps, random start (torchattacks)")
class PGD50(PGD):
    name = "pgd50"
    steps = 50


@ATTACKS.register("clean", help="no attack: accuracy on the clean test images")
class Clean(Attack):
    name = "clean"
    uses_eps = False

    def __init__(self, eps: float = 0.0, step: float = 0.0) -> None:
        super().__init__(0.0, 0.0)

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.NONE

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x
