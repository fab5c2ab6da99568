"""The attack interface and registry; attacks work on [0,1] images and receive the model chosen by the threat model."""
from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import ClassVar

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import Registry


class ThreatModel(str, Enum):
    """Who the adversary differentiates: see README 'Threat models'."""

    NONE = "none"  # no adversary (clean inputs)
    WHITE_BOX = "white-box"  # deterministic defense: F_w is the whole defended predictor
    OBLIVIOUS = "oblivious"  # randomised inference rule: gradients of F_w only, defense unknown to the adversary
    ADAPTIVE = "adaptive"  # gradients through the whole defended predictor, EOT over its randomness


class Attack(ABC):
    """An evasion attack with an L-infinity budget `eps` and step size `step` on the [0,1] pixel scale."""

    name: ClassVar[str] = ""
    uses_eps: ClassVar[bool] = True

    def __init__(self, eps: float, step: float) -> None:
        if not 0 <= eps <= 1:
            raise BenchError(f"epsilon {eps} is outside [0, 1] (inputs are [0,1] images)")
        self.eps = float(eps)
        self.step = float(step)

    def config(self) -> dict:
        return {"eps": self.eps, "step": self.step}

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        """The threat model this attack realises against a defense of the given kind."""
        return ThreatModel.OBLIVIOUS if stochastic_defense else ThreatModel.WHITE_BOX

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Adversarial images in [0,1], within eps of x in L-infinity; `model` maps [0,1] images to logits."""


ATTACKS: Registry[type[Attack]] = Registry("attack", group="varmixup_bench.attacks")


def check_unit_range(x: torch.Tensor, what: str = "inputs") -> None:
    """Refuse inputs outside [0,1]: a normalised image attacked with a [0,1] epsilon gives wrong numbers."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise BenchError(
            f"{what} must be [0,1] images (got min {lo:.3g}, max {hi:.3g}); normalisation belongs inside the model"
        )
