"""The attack interface and registry; attacks work on [0,1] images and receive the model chosen by the threat model."""
from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import torch
from torch import nn

from bench.errors import BenchError
from bench.registry import Registry

if TYPE_CHECKING:
    from bench.data import Split
    from defenses.base import Defense


class ThreatModel(str, Enum):
    """Who the adversary differentiates or queries: see README 'Threat models'."""

    NONE = "none"  # no adversary (clean inputs, corruptions, calibration)
    WHITE_BOX = "white-box"  # deterministic defense: F_w is the whole defended predictor
    OBLIVIOUS = "oblivious"  # randomised inference rule: the adversary sees F_w only
    ADAPTIVE = "adaptive"  # gradients through the whole defended predictor, EOT over its randomness
    BLACK_BOX = "black-box"  # scores of the (deterministic) defended predictor only, no gradients


def default_step(eps: float) -> float:
    """The step size used when none is given: eps/4 (2/255 at eps 8/255), so that ten steps can use the budget."""
    return eps / 4


class Attack(ABC):
    """An evaluation with an L-infinity budget `eps` and step size `step` on the [0,1] pixel scale.

    `step=None` means default_step(eps); attacks that take no step (FGSM, SPSA, …) set `uses_step = False`
    and record no step."""

    name: ClassVar[str] = ""
    uses_eps: ClassVar[bool] = True
    uses_step: ClassVar[bool] = True
    targeted: ClassVar[bool] = False
    adaptive: ClassVar[bool] = False
    draws_per_call: ClassVar[int | None] = None  # adaptive: random draws per forward (None: the rule's own N)

    # keywords an attack spec may set, NAME(key=value): {key: (type, default)}; read as attributes
    params: ClassVar[dict[str, tuple[type, Any]]] = {}

    def __init__(self, eps: float, step: float | None = None, settings: Any = None, **params: Any) -> None:
        if not 0 <= eps <= 1:
            raise BenchError(f"epsilon {eps} is outside [0, 1] (inputs are [0,1] images)")
        if step is not None and step <= 0 and eps > 0:
            raise BenchError(f"step {step} must be > 0")
        self.eps = float(eps)
        self.step = (float(step) if step is not None else default_step(self.eps)) if self.uses_step else None
        self.settings = settings
        self.spec = self.name
        declared = self.parameters()
        for key, value in params.items():
            if key not in declared:
                raise BenchError(f"attack {self.name} takes no keyword {key!r}; its keywords: "
                                 f"{', '.join(sorted(declared)) or 'none'}")
        for key, (kind, default) in declared.items():
            value = params.get(key, getattr(type(self), key, default))
            if value is not None and kind is int and int(value) < 1:
                raise BenchError(f"attack {self.name}: {key} must be >= 1, got {value}")
            setattr(self, key, None if value is None else kind(value))

    @classmethod
    def parameters(cls) -> dict[str, tuple[type, Any]]:
        """Every keyword of the class and its bases."""
        out: dict[str, tuple[type, Any]] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("params", {}))
        return out

    def config(self) -> dict:
        base = {"eps": self.eps, "step": self.step} if self.uses_step else {"eps": self.eps}
        return {**base, **{k: getattr(self, k) for k in sorted(self.parameters())}}

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        """The threat model this attack realises against a defense of the given kind."""
        if self.adaptive:
            return ThreatModel.ADAPTIVE
        return ThreatModel.OBLIVIOUS if stochastic_defense else ThreatModel.WHITE_BOX

    def choose_targets(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
        """Target labels of a targeted attack (None for untargeted attacks)."""
        return None

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                targets: torch.Tensor | None = None) -> torch.Tensor:
        """Adversarial images in [0,1], within eps of x in L-infinity; `model` maps [0,1] images to logits."""

    def candidates(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   targets: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The adversarial batches to choose from per image (one per restart by default): the evaluation keeps,
        per image, the candidate the defended predictor classifies correctly least often."""
        for _ in range(getattr(self, "restarts", 1)):
            yield self.perturb(model, x, y, targets)

    def evaluate(self, defense: "Defense", split: "Split", *, trials: int, seed: int, batch_size: int,
                 show_progress: bool = True) -> dict[str, Any]:
        """Per-trial metrics: {'clean': [...], 'robust': [...], optional 'hit', 'details', 'value'}."""
        from attacks.evaluation import attack_accuracy

        return attack_accuracy(defense, self, split.x, split.y, trials=trials, seed=seed, batch_size=batch_size,
                               show_progress=show_progress, index=split.index,
                               draws=int(getattr(self.settings, "worst_case_draws", 1)))

    def attacked_model(self, defense: "Defense", generator: torch.Generator) -> nn.Module | None:
        """The model this attack differentiates or queries, if it chooses its own (a surrogate, another
        defense's F_w); None: chosen by the threat model (attacks.evaluation.attacked_model)."""
        return None


ATTACKS: Registry[type[Attack]] = Registry("attack", group="varmixup_bench.attacks")


def check_unit_range(x: torch.Tensor, what: str = "inputs") -> None:
    """Refuse inputs outside [0,1]: a normalised image attacked with a [0,1] epsilon gives wrong numbers."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise BenchError(
            f"{what} must be [0,1] images (got min {lo:.3g}, max {hi:.3g}); normalisation belongs inside the model"
        )
