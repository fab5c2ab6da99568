"""Adaptive attacks beyond EOT-PGD, from the libraries: APGD-CE + APGD-DLR with EOT through the defended
predictor (torchattacks), PGD-50 on a deterministic surrogate of the defended predictor (BPDA-style), and
transfer attacks crafted on another defense's F_w (`transfer:SPEC`)."""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import nn

from varmixup_bench.attacks.base import ATTACKS, Attack, Norm, ThreatModel
from varmixup_bench.attacks.pgd import PGD50
from varmixup_bench.attacks.spec import FAMILIES
from varmixup_bench.core.errors import BenchError


@ATTACKS.register("adaptive-apgd", help="APGD-CE then APGD-DLR with EOT through the defended predictor "
                  "(torchattacks); adaptive-apgd(steps=N,eot=N_A,restarts=R)")
class AdaptiveAPGD(Attack):
    """AutoAttack's rand-version pair: APGD with the cross-entropy loss, then with the DLR loss, each `steps`
    iterations (default apgd_steps, AutoAttack's 100) on the whole defended predictor; per image the evaluation
    keeps the candidate the defense classifies correctly least often. APGD adapts its own step size.

    On a randomised defense, EOT is in the model: every forward averages the class probabilities of `eot` draws
    (default n_adaptive), and APGD runs with eot_iter = 1. torchattacks' own eot_iter averages the gradients
    but keeps the loss of the last draw alone (as AutoAttack's apgd does), and APGD halves its step and keeps its
    best iterate on that loss: one draw of one MI mix, so both decisions followed noise and APGD-20 ended
    significantly weaker than EOT-PGD-10 on MI and VarMI. Each APGD run returns its highest-loss iterate
    (torchattacks' best_loss mode)."""

    name = "adaptive-apgd"
    kind = "adaptive-gradient"
    norms = (Norm.LINF, Norm.L2)
    uses_step = False
    adaptive = True
    draws_per_call = 1  # a deterministic defense: F_w itself; a randomised one: see attacked_model
    params = {"steps": (int, None), "eot": (int, None), "restarts": (int, 1)}
    losses = ("ce", "dlr")

    def __init__(self, eps: float, step: float | None = None, settings: Any = None, **params: Any) -> None:
        super().__init__(eps, step, settings, **params)
        if self.steps is None:
            self.steps = int(self.settings.apgd_steps)
        if self.eot is None:
            self.eot = int(self.settings.n_adaptive)

    def config(self) -> dict:
        return {**super().config(), "losses": list(self.losses), "rho": 0.75, "eot_in": "model"}

    def attacked_model(self, defense, generator: torch.Generator) -> nn.Module | None:
        """A randomised defense: the defended predictor averaging `eot` draws per forward (so the loss APGD steers
        by is an `eot`-draw estimate); a deterministic one: chosen by the threat model (F_w)."""
        if not defense.stochastic:
            return None
        from varmixup_bench.attacks.evaluation import DefendedModel

        return DefendedModel(defense, generator, n_samples=self.eot)

    def _apgd(self, model: nn.Module, loss: str):
        import torchattacks

        seed = int(torch.randint(0, 2**31 - 1, (1,)))  # from the trial's seeded stream: restarts differ
        return torchattacks.APGD(model, norm=self.norm.value, eps=self.eps, steps=self.steps, n_restarts=1, seed=seed,
                                 loss=loss, eot_iter=1, rho=0.75)

    def candidates(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   targets: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        for _ in range(self.restarts):
            for loss in self.losses:
                yield self.perturb(model, x, y, loss=loss)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None,
                loss: str = "ce") -> torch.Tensor:
        if self.eps == 0:
            return x.clone()
        attack = self._apgd(model, loss)
        if getattr(model, "stochastic", False):
            # APGD's default keeps, per image, the first iterate one noisy draw happened to misclassify; against
            # a randomised predictor that is luck, not a worst case. Its best_loss mode keeps the iterate of
            # highest EOT loss instead, for every image (the evaluation then classifies it with fresh draws).
            _, adv = attack.perturb(x, y, best_loss=True)
            return adv.detach().clamp(0, 1)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            return attack(x, y).clamp(0, 1)  # APGD reseeds the global generator: keep the trial's stream


class SurrogateModel(nn.Module):
    """The rule's deterministic surrogate of the defended predictor, as a module returning logits."""

    def __init__(self, defense) -> None:
        super().__init__()
        self.classifier = defense.classifier
        self._defense = defense

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._defense.rule.surrogate(self.classifier, x)


@ATTACKS.register("surrogate-pgd50", help="PGD-50 on a deterministic surrogate of the defended predictor "
                  "(BPDA-style: F_w(decode(mu(x))) for VarMI, F_w(lambda x + (1-lambda) mean pool) for MI)")
class SurrogatePGD50(PGD50):
    """White-box PGD-50 (torchattacks) on InferenceRule.surrogate, then classified by the real defended
    predictor. On a deterministic plain defense the surrogate is F_w itself, and this is `pgd50`."""

    name = "surrogate-pgd50"
    kind = "surrogate"

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.ADAPTIVE if stochastic_defense else ThreatModel.WHITE_BOX

    def attacked_model(self, defense, generator: torch.Generator) -> nn.Module:
        from varmixup_bench.defenses.base import InferenceRule

        if defense.rule.name == "plain":
            return defense.classifier
        if defense.stochastic and type(defense.rule).surrogate is InferenceRule.surrogate:
            from varmixup_bench.core.errors import AttackRefused

            # refused before any attack work (a rule measured as randomised counts too: its forward is no surrogate)
            raise AttackRefused(f"inference rule {defense.rule.name or type(defense.rule).__name__!r} is randomised and "
                                "defines no deterministic surrogate (InferenceRule.surrogate)")
        return SurrogateModel(defense)


def transfer_attack(source: str, args: dict) -> type[Attack]:
    """`transfer:SPEC`: PGD-50 crafted on the F_w of defense SPEC (trained or loaded with the same data and
    preset), then classified by the attacked defense: a black-box transfer attack."""
    from varmixup_bench.defenses import parse_defense_spec

    spec = str(parse_defense_spec(source))

    class Transfer(PGD50):
        name = f"transfer:{spec}"
        kind = "transfer"

        def __init__(self, eps: float, step: float | None = None, settings: Any = None, **params: Any) -> None:
            super().__init__(eps, step, settings, **params)
            self.source = spec
            self._source_defense = None

        def config(self) -> dict:
            return {**super().config(), "source": self.source}

        def threat_model(self, stochastic_defense: bool) -> ThreatModel:
            return ThreatModel.BLACK_BOX

        def other_defenses(self) -> list[str]:
            return [self.source]

        def source_defense(self, defense):
            """The source defense, from the evaluation context's provider (TrainContext.defense_provider)."""
            if self._source_defense is None:
                ctx = defense.info.get("context")
                provide = ctx.defense_provider if ctx is not None else None
                if provide is None:
                    raise BenchError(f"{self.name} needs defense {self.source} trained on the same data and preset: "
                                     "attack a defense from training.runner.train, whose context provides it")
                self._source_defense = provide(self.source)
            return self._source_defense

        def attacked_model(self, defense, generator: torch.Generator) -> nn.Module:
            return self.source_defense(defense).classifier

    Transfer.__qualname__ = Transfer.__name__ = "Transfer"
    return Transfer


FAMILIES.register("transfer", help="transfer:SPEC - PGD-50 on defense SPEC's F_w, classified by the attacked "
                  "defense (black-box)")(transfer_attack)
