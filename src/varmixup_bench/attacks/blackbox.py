"""Gradient-free SPSA (torchattacks, untargeted only) and AutoAttack (pyautoattack)."""
from __future__ import annotations

import torch
from torch import nn

from varmixup_bench.attacks.base import ATTACKS, Attack, Norm, ThreatModel


@ATTACKS.register("spsa", help="gradient-free SPSA (untargeted), CIFAR-scale settings (torchattacks)")
class SPSA(Attack):
    """Score-based SPSA on F_w. torchattacks' defaults are MNIST-scale and its targeted mode ignores the
    target, so it is always run untargeted with spsa_* settings from the preset (nb_iter iterations of
    nb_sample perturbation pairs, Adam step spsa_lr, finite-difference delta)."""

    name = "spsa"
    kind = "black-box"
    uses_step = False  # SPSA's own Adam step is spsa_lr

    def __init__(self, eps: float, step: float | None = None, settings=None, **kw) -> None:
        super().__init__(eps, step, settings, **kw)
        self.nb_iter = int(self.settings.spsa_iters)
        self.nb_sample = int(self.settings.spsa_samples)
        self.lr = float(self.settings.spsa_lr)
        self.delta = float(self.settings.spsa_delta)

    def config(self) -> dict:
        return {"eps": self.eps, "norm": self.norm.value, "nb_iter": self.nb_iter, "nb_sample": self.nb_sample, "lr": self.lr,
                "delta": self.delta, "subset": self.settings.spsa_subset, "subset_rule": "stratified",
                "subset_seed": int(self.settings.subset_seed)}

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.OBLIVIOUS if stochastic_defense else ThreatModel.BLACK_BOX

    def evaluate(self, defense, split, **kw):
        from varmixup_bench.training.data import stratified_subset

        n = self.settings.spsa_subset
        split = stratified_subset(split, n, int(self.settings.subset_seed), "spsa_subset")
        return super().evaluate(defense, split, **kw)

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        import torchattacks

        if self.eps == 0:
            return x.clone()
        attack = torchattacks.SPSA(model, eps=self.eps, delta=self.delta, lr=self.lr, nb_iter=self.nb_iter,
                                   nb_sample=self.nb_sample, max_batch_size=max(1, 8192 // len(x)))
        return attack(x, y).clamp(0, 1)  # torchattacks' SPSA keeps x+dx in [0,1] only up to float error


@ATTACKS.register("autoattack", help="AutoAttack: standard version (deterministic), rand version with EOT (randomised)")
class AutoAttack(Attack):
    """pyautoattack's AutoAttack. A deterministic defense gets the standard version on F_w (white-box); a
    randomised one gets the `rand` version (APGD-CE and APGD-DLR with EOT) on the whole defended predictor."""

    name = "autoattack"
    kind = "ensemble"
    norms = (Norm.LINF, Norm.L2)
    uses_step = False  # APGD adapts its own step size
    draws_per_call = None  # each forward is the full defended predictor; AutoAttack's own EOT averages calls

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        return ThreatModel.ADAPTIVE if stochastic_defense else ThreatModel.WHITE_BOX

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        import logging

        from pyautoattack import AutoAttack as PyAutoAttack

        if self.eps == 0:
            return x.clone()
        version = "rand" if getattr(model, "stochastic", False) else "standard"
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        aa = PyAutoAttack(model, eps=self.eps, norm=self.norm.value, version=version, device=x.device, seed=seed)
        aa.verbose = False
        logging.getLogger("auto-attack").setLevel(logging.WARNING)
        x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=len(x))
        return x_adv.to(x.device).clamp(0, 1)
