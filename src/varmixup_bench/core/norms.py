"""The threat model's vocabulary: its distance (RobustBench's names: the eps-ball an attack stays in, and its
parsing) and who the adversary is. Here, not in attacks/, because presets, option parsing and the evaluation loop
need them without the attack classes."""
from __future__ import annotations

from enum import Enum

import torch

from varmixup_bench.core.errors import BenchError


class Norm(str, Enum):
    """The distance of the threat model (RobustBench's names): the eps-ball an attack stays in."""

    LINF = "Linf"
    L2 = "L2"
    NONE = "none"  # no eps-ball: clean inputs, corruptions, calibration

    def distance(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-image size of the perturbations `delta` (B, ...) in this norm."""
        flat = delta.reshape(len(delta), -1)
        return flat.abs().amax(dim=1) if self is Norm.LINF else flat.norm(p=2, dim=1)

    def project(self, x: torch.Tensor, x_adv: torch.Tensor, eps: float) -> torch.Tensor:
        """x_adv moved into the eps-ball around x (L-inf: clipped; L2: scaled down) and into [0,1]."""
        delta = x_adv - x
        if self is Norm.LINF:
            delta = delta.clamp(-eps, eps)
        elif self is Norm.L2:
            norms = self.distance(delta).clamp_min(1e-12)
            delta = delta * (eps / norms).clamp(max=1.0).view(-1, *([1] * (x.dim() - 1)))
        return (x + delta).clamp(0, 1)


NORM_ALIASES = {"linf": Norm.LINF, "inf": Norm.LINF, "l-inf": Norm.LINF, "l2": Norm.L2}


def parse_norm(text: "str | Norm | None") -> Norm:
    """`linf` / `Linf` / `inf` or `l2` / `L2` -> Norm; anything else is a BenchError listing the valid names."""
    if isinstance(text, Norm):
        return text
    norm = NORM_ALIASES.get(str(text or "linf").strip().lower())
    if norm is None:
        raise BenchError(f"unknown norm {text!r}; valid norms: linf, l2")
    return norm


class ThreatModel(str, Enum):
    """Who the adversary differentiates or queries: see docs/attacks.md, 'Threat models'."""

    NONE = "none"  # no adversary (clean inputs, corruptions, calibration)
    WHITE_BOX = "white-box"  # deterministic defense: F_w is the whole defended predictor
    OBLIVIOUS = "oblivious"  # randomised inference rule: the adversary sees F_w only
    ADAPTIVE = "adaptive"  # gradients through the whole defended predictor, EOT over its randomness
    BLACK_BOX = "black-box"  # scores of the (deterministic) defended predictor only, no gradients
