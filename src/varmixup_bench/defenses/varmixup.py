"""Recipes `varerm` (eq. 13) and `varmixup` (eq. 12), and their `adv-` variants that use the adversarial VAE.

VarERM trains F_w on decode(mu(x)); VarMixup on decode(lambda*mu(x_i) + (1-lambda)*mu(x_j)) with the label
lambda*y_i + (1-lambda)*y_j, lambda ~ Beta(eta, eta), one lambda per batch as in `mixup`. The VAE is frozen.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.defenses.base import RECIPES, Recipe, TrainContext
from varmixup_bench.defenses.latent import FittedVAE, get_vae, on_device, vae_config
from varmixup_bench.defenses.mixup import BetaMixing, mixed_cross_entropy


@torch.no_grad()
def varmixup_samples(vae: FittedVAE, x: torch.Tensor, perm: torch.Tensor, lam: float) -> torch.Tensor:
    """x' = E[p(x | lam * E[q(z|x_i)] + (1 - lam) * E[q(z|x_perm(i))])] for every i (paper eq. 12)."""
    mu = vae.encode_mean(x)
    return vae.decode(lam * mu + (1.0 - lam) * mu[perm])


class _VarRecipe(Recipe):
    """Shared by the Var* recipes: the (adversarial) VAE, fetched from the cache in prepare()."""

    adversarial_vae = False

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.vae: FittedVAE | None = None

    def config(self) -> dict:
        return {**super().config(), "vae": vae_config(self.settings, self.adversarial_vae)}

    def prepare(self, ctx: TrainContext) -> None:
        self.vae = get_vae(ctx, self.adversarial_vae)

    def _vae(self, x: torch.Tensor) -> FittedVAE:
        if self.vae is None:
            raise RuntimeError(f"{self.name}: prepare() was not called")
        return on_device(self.vae, x.device)


class VarERM(_VarRecipe):
    """Cross-entropy on VAE reconstructions decode(mu(x)) (paper eq. 13)."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        with torch.no_grad():
            x_rec = self._vae(x).reconstruct(x)
        logits = model(x_rec)
        return F.cross_entropy(logits, y, label_smoothing=self.settings.label_smoothing), logits

    def training_samples(self, x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._vae(x).reconstruct(x)


class VarMixup(BetaMixing, _VarRecipe):
    """Mixup of encoder means, decoded (paper eq. 12)."""

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        lam = float(rng.beta(self.eta, self.eta))
        perm = torch.as_tensor(rng.permutation(x.shape[0]), device=x.device)
        logits = model(varmixup_samples(self._vae(x), x, perm, lam))
        return mixed_cross_entropy(logits, y, perm, lam, self.settings.label_smoothing), logits

    @torch.no_grad()
    def training_samples(self, x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
        vae = self._vae(x)
        mu, mu_partner = vae.encode_mean(x), vae.encode_mean(partner)
        lam = lam.to(mu).view(-1, *[1] * (mu.dim() - 1))  # flat (B, d) or spatial (B, C, h, w) latent
        return vae.decode(lam * mu + (1.0 - lam) * mu_partner)


_HELP = {
    "varerm": "VarERM (eq. 13): cross-entropy on MMD-VAE reconstructions decode(mu(x))",
    "varmixup": "VarMixup (eq. 12): mixup of VAE latent means, decoded; lambda ~ Beta(eta, eta)",
}
for _base, _cls in (("varerm", VarERM), ("varmixup", VarMixup)):
    for _adv in (False, True):
        _name = f"adv-{_base}" if _adv else _base
        RECIPES.register(_name, help=_HELP[_base] + (" - adversarially trained VAE" if _adv else ""))(
            type(_cls.__name__ + ("Adv" if _adv else ""), (_cls,), {"name": _name, "adversarial_vae": _adv})
        )


class VarIAT(BetaMixing, _VarRecipe):
    """IAT with its interpolation in the VAE's latent space (paper, "VarMixup on IAT"): the mean of the
    VarMixup loss on clean pairs and the VarMixup loss on PGD-perturbed pairs (both mixed as latent means)."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        from varmixup_bench.defenses.adversarial import AT

        self.inner = AT(settings)  # the inner PGD and its budget (train_eps, train_step, train_steps)

    def config(self) -> dict:
        return {**super().config(), **self.inner.config()}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        vae = self._vae(x)
        x_adv = self.inner.pgd(model, x, y)
        parts, first_logits = [], None
        for inputs in (x, x_adv):
            lam = float(rng.beta(self.eta, self.eta))
            perm = torch.as_tensor(rng.permutation(x.shape[0]), device=x.device)
            logits = model(varmixup_samples(vae, inputs, perm, lam))
            parts.append(mixed_cross_entropy(logits, y, perm, lam, self.settings.label_smoothing))
            first_logits = logits if first_logits is None else first_logits
        return 0.5 * (parts[0] + parts[1]), first_logits


for _adv in (False, True):
    _name = "adv-variat" if _adv else "variat"
    RECIPES.register(_name, help="VarIAT: IAT with latent-space (VarMixup) interpolation"
                     + (" - adversarially trained VAE" if _adv else ""))(
        type("VarIATAdv" if _adv else "VarIAT_", (VarIAT,), {"name": _name, "adversarial_vae": _adv})
    )
