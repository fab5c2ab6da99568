"""The attack interface and registry; attacks work on [0,1] images and receive the model chosen by the threat model."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

import torch
from torch import nn

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.norms import NORM_ALIASES, Norm, ThreatModel, parse_norm  # noqa: F401  (re-exported)
from varmixup_bench.core.registry import Registry

if TYPE_CHECKING:
    from varmixup_bench.training.data import Split
    from varmixup_bench.defenses.base import Defense


def default_step(eps: float) -> float:
    """The step size used when none is given: eps/4 (2/255 at eps 8/255), so that ten steps can use the budget."""
    return eps / 4


def default_settings() -> Any:
    """The default preset: where an attack built without settings reads every default (n_adaptive, …)."""
    from varmixup_bench.config.presets import get_preset

    return get_preset(None)


# What an attack does, for choosing attacks by role rather than by name (diagnostics, report): differentiates F_w
# (gradient), differentiates the defended predictor with EOT (adaptive-gradient), differentiates a deterministic
# surrogate of it (surrogate), queries it without gradients (black-box), crafts on another defense (transfer),
# runs several of these (ensemble), corrupts the images (corruption), measures without attacking (metric, clean)
ATTACK_KINDS = ("gradient", "adaptive-gradient", "surrogate", "black-box", "transfer", "ensemble", "corruption",
                "metric", "clean")


class Attack(ABC):
    """An evaluation with a budget `eps` in the norm `norm` (L-inf or L2) and step size `step` on the [0,1]
    pixel scale.

    `step=None` means default_step(eps); attacks that take no step (FGSM, SPSA, …) set `uses_step = False`
    and record no step. `norms` are the norms an attack implements; any other is refused at construction."""

    name: ClassVar[str] = ""
    uses_eps: ClassVar[bool] = True
    uses_step: ClassVar[bool] = True
    targeted: ClassVar[bool] = False
    adaptive: ClassVar[bool] = False
    kind: ClassVar[str] = ""  # one of ATTACK_KINDS; every registered attack sets one
    draws_per_call: ClassVar[int | None] = None  # adaptive: random draws per forward (None: the rule's own N)
    uses_recipe: ClassVar[bool] = False  # measures the defense's training recipe (its cost depends on it, not the rule's)

    def other_defenses(self) -> list[str]:
        """Specs of the other defenses the attack loads through the context's provider (a transfer attack's source,
        KID's feature classifier): trained first if missing, so a forecast must count them."""
        return []
    norms: ClassVar[tuple[Norm, ...]] = (Norm.LINF,)

    # keywords an attack spec may set, NAME(key=value): {key: (type, default)}; read as attributes
    params: ClassVar[dict[str, tuple[type, Any]]] = {}

    def __init__(self, eps: float, step: float | None = None, settings: Any = None, *,
                 norm: "str | Norm | None" = None, **params: Any) -> None:
        norm = parse_norm(norm) if self.uses_eps else Norm.NONE
        if self.uses_eps and norm not in self.norms:
            raise BenchError(f"attack {self.name} has no {norm.value} version; its norms: "
                             f"{', '.join(n.value for n in self.norms)}")
        if norm is Norm.L2 and eps < 0:
            raise BenchError(f"L2 epsilon {eps} must be >= 0")
        if norm is not Norm.L2 and not 0 <= eps <= 1:
            raise BenchError(f"epsilon {eps} is outside [0, 1] (inputs are [0,1] images)")
        if step is not None and step <= 0 and eps > 0:
            raise BenchError(f"step {step} must be > 0")
        if step is not None and norm is not Norm.L2 and step > 1:  # as the preset's step range: an L-inf step
            raise BenchError(f"step {step} is outside (0, 1] (an L-inf step on [0,1] images; e.g. 2/255)")
        self.norm = norm
        self.eps = float(eps)
        self.step = (float(step) if step is not None else default_step(self.eps)) if self.uses_step else None
        # the preset gives every default an attack reads (no settings: the default preset)
        self.settings = settings if settings is not None else default_settings()
        self.spec = self.name
        reject_unknown_keywords(self.name, type(self).parameters(), params)
        self.set_params(params)

    def set_params(self, params: dict[str, Any]) -> None:
        """The spec's keywords as attributes (defaults from the class), integers checked to be >= 1."""
        for key, (kind, default) in self.parameters().items():
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
        if self.uses_eps:
            base["norm"] = self.norm.value
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
        from varmixup_bench.attacks.evaluation import attack_accuracy

        return attack_accuracy(defense, self, split.x, split.y, trials=trials, seed=seed, batch_size=batch_size,
                               show_progress=show_progress, index=split.index,
                               draws=int(self.settings.worst_case_draws))

    def attacked_model(self, defense: "Defense", generator: torch.Generator) -> nn.Module | None:
        """The model this attack differentiates or queries, if it chooses its own (a surrogate, another
        defense's F_w); None: chosen by the threat model (attacks.evaluation.attacked_model)."""
        return None


class Measurement(Attack):
    """An evaluation without an adversary (corruptions, ECE, VAE PSNR, KID): no radius, no step, threat model
    `none`; subclasses define evaluate() and config()."""

    uses_eps = False
    uses_step = False

    def __init__(self, eps: float = 0.0, step: float | None = None, settings: Any = None) -> None:
        super().__init__(0.0, None, settings)

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.NONE

    def perturb(self, model, x, y, targets=None):
        return x


def reject_unknown_keywords(name: str, declared: dict, given: dict) -> None:
    """A keyword the attack does not take is a BenchError that lists the ones it does."""
    for key in given:
        if key not in declared:
            raise BenchError(f"attack {name} takes no keyword {key!r}; its keywords: "
                             f"{', '.join(sorted(declared)) or 'none'}")


ATTACKS: Registry[type[Attack]] = Registry("attack", group="varmixup_bench.attacks", builtins=tuple(
    f"varmixup_bench.attacks.{m}" for m in ("adaptive", "blackbox", "catalog", "kid", "metrics", "pgd")))


def attacks_of_kind(*kinds: str, steps: int | None = None, targeted: bool = False) -> tuple[str, ...]:
    """The registered attacks of these kinds (ATTACK_KINDS), untargeted unless `targeted`; with `steps`, only the
    named budgets of that many steps (pgd10, adaptive-pgd10; not the budgeted family pgd(steps=N))."""
    out = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        if cls.kind not in kinds or cls.targeted != targeted:
            continue
        if steps is not None and not ("steps" in vars(cls) and "params" not in vars(cls) and cls.steps == steps):
            continue
        out.append(name)
    return tuple(out)


def check_unit_range(x: torch.Tensor, what: str = "inputs") -> None:
    """Refuse inputs outside [0,1]: a normalised image attacked with a [0,1] epsilon gives wrong numbers."""
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise BenchError(
            f"{what} must be [0,1] images (got min {lo:.3g}, max {hi:.3g}); normalisation belongs inside the model"
        )
