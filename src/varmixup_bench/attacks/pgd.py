"""Gradient attacks from torchattacks in L-inf and L2: PGD-10/50, targeted PGD-10, FGSM (FGM in L2), adaptive
EOT-PGD, and `clean`."""
from __future__ import annotations

import torch
from torch import nn

from varmixup_bench.attacks.base import ATTACKS, Attack, Norm, ThreatModel


class PGD(Attack):
    """Untargeted PGD, cross-entropy loss, random start in the eps-ball (torchattacks PGD in L-inf, PGDL2 in
    L2); `restarts` random starts per image, the evaluation keeping the one the defended predictor gets right
    least often."""

    name = "pgd"
    kind = "gradient"
    steps = 10
    norms = (Norm.LINF, Norm.L2)
    params = {"steps": (int, 10), "restarts": (int, 1)}

    def config(self) -> dict:
        return {**super().config(), "random_start": True}

    def build(self, model: nn.Module):
        """The torchattacks attack on `model`; subclasses swap the algorithm, perturb() stays shared."""
        import torchattacks

        if self.norm is Norm.L2:
            return torchattacks.PGDL2(model, eps=self.eps, alpha=self.step, steps=self.steps, random_start=True)
        return torchattacks.PGD(model, eps=self.eps, alpha=self.step, steps=self.steps, random_start=True)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        if self.eps == 0:
            return x.clone()
        attack = self.build(model)
        if targets is not None:
            attack.set_mode_targeted_by_function(lambda images, labels: targets, quiet=True)
        return attack(x, y)


ATTACKS.register("pgd", help="untargeted PGD (L-inf or L2) with a budget: pgd(steps=N,restarts=R) (torchattacks)")(PGD)


@ATTACKS.register("pgd10", help="untargeted PGD (L-inf or L2), 10 steps, random start (torchattacks)")
class PGD10(PGD):
    name = "pgd10"
    steps = 10


@ATTACKS.register("pgd50", help="untargeted PGD (L-inf or L2), 50 steps, random start (torchattacks)")
class PGD50(PGD):
    name = "pgd50"
    steps = 50


@ATTACKS.register("tpgd10", help="targeted PGD-10 towards the most likely class other than the true one (paper Table 5)")
class TargetedPGD10(PGD):
    """Robust accuracy counts inputs still classified as their true label; the record adds the target hit rate.

    The target is F_w's most likely class other than the true label y, never y itself: taking the second-ranked
    class blindly would, for a misclassified image whose runner-up is y, push it *onto* its true label."""

    name = "tpgd10"
    steps = 10
    targeted = True

    def choose_targets(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = model(x).float()
        return logits.scatter(1, y.view(-1, 1), float("-inf")).argmax(dim=1)


@ATTACKS.register("fgsm", help="fast gradient sign method, one step of size eps; in L2 the fast gradient method "
                  "(FGM), one step of L2 length eps along the gradient (torchattacks)")
class FGSM(Attack):
    name = "fgsm"
    kind = "gradient"
    uses_step = False  # one step of size eps
    norms = (Norm.LINF, Norm.L2)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        import torchattacks

        if self.eps == 0:
            return x.clone()
        if self.norm is Norm.L2:  # FGM: x + eps * g / ||g||_2, i.e. one PGDL2 step of length eps from x
            return torchattacks.PGDL2(model, eps=self.eps, alpha=self.eps, steps=1, random_start=False)(x, y)
        return torchattacks.FGSM(model, eps=self.eps)(x, y)


class AdaptivePGD(PGD):
    """PGD through the whole defended predictor with EOT: each step's gradient is the sum over `eot` draws of the
    defense's randomness (default: the preset's n_adaptive, N_A), computed batched (attacks.eot: one forward and
    backward of B·N_A inputs, chunked to `eot_max_rows`). Against a deterministic defense one draw suffices and
    the attack is white-box PGD on log-softmax(F_w), with the same update as `pgd`."""

    name = "adaptive-pgd"
    kind = "adaptive-gradient"
    adaptive = True
    draws_per_call = 1  # one x_s per input row and call; EOT sums the gradients of N_A rows per image (eq. 16)
    params = {"eot": (int, None)}

    def __init__(self, eps: float, step: float | None = None, settings=None, **params) -> None:
        super().__init__(eps, step, settings, **params)
        if self.eot is None:
            self.eot = int(self.settings.n_adaptive)

    def n_adaptive(self, stochastic: bool) -> int:
        return self.eot if stochastic else 1

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        from varmixup_bench.attacks.eot import eot_pgd

        if self.eps == 0:
            return x.clone()
        return eot_pgd(model, x, y, eps=self.eps, step=self.step, steps=self.steps,
                       n_draws=self.n_adaptive(getattr(model, "stochastic", False)),
                       max_rows=int(self.settings.eot_max_rows), norm=self.norm)


ATTACKS.register("adaptive-pgd", help="adaptive EOT-PGD with a budget: adaptive-pgd(steps=N,eot=N_A,restarts=R)")(
    AdaptivePGD)


@ATTACKS.register("adaptive-pgd10", help="PGD-10 through the defended predictor, EOT over n_adaptive draws")
class AdaptivePGD10(AdaptivePGD):
    name = "adaptive-pgd10"
    steps = 10


@ATTACKS.register("adaptive-pgd50", help="PGD-50 through the defended predictor, EOT over n_adaptive draws")
class AdaptivePGD50(AdaptivePGD):
    name = "adaptive-pgd50"
    steps = 50


@ATTACKS.register("clean", help="no attack: accuracy on the clean test images")
class Clean(Attack):
    name = "clean"
    kind = "clean"
    uses_eps = False
    uses_step = False

    def __init__(self, eps: float = 0.0, step: float | None = None, settings=None) -> None:
        super().__init__(0.0, 0.0, settings)

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.NONE

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        return x
