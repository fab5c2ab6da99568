"""Inference rule `varmi` (paper eq. 14) and `adv-varmi`: Mixup Inference in the VAE's latent space.

F^VarMI(x) = mean_s softmax F_w(decode(lambda_mi * mu(x) + (1 - lambda_mi) * mu(x_s))), x_s from the MI-OL pool
(training examples of classes other than F_w's prediction for x). Pool latents are encoded once at setup; per
batch there is one encoder pass and one decode + classifier forward of all n_mi mixes (in cache-sized chunks on
a CPU, defenses.base.rows_in_chunks).
The forward is differentiable through encoder, decoder and classifier, for adaptive attacks.
"""
from __future__ import annotations

import torch
from torch import nn

from varmixup_bench.defenses.base import INFERENCE, TrainContext, chunk_rows, rows_in_chunks, softmax_probs
from varmixup_bench.defenses.latent import FittedVAE, encode_split, get_vae, on_device, vae_config
from varmixup_bench.defenses.mi import MixupInference
from varmixup_bench.defenses.pool import OtherLabelPool


class VarMI(MixupInference):
    adversarial_vae = False

    def __init__(self, settings, recipe: str) -> None:
        super().__init__(settings, recipe)
        self.vae: FittedVAE | None = None

    def config(self) -> dict:
        return {**super().config(), "vae": vae_config(self.settings, self.adversarial_vae)}

    def setup(self, classifier: nn.Module, ctx: TrainContext) -> None:
        self.vae = get_vae(ctx, self.adversarial_vae)
        train = ctx.dataset.train
        self.pool = OtherLabelPool(encode_split(self.vae, train.x, ctx.device), train.y)

    def forward(self, classifier: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None,
                n_samples: int | None = None) -> torch.Tensor:
        if self.vae is None or self.pool is None:
            raise RuntimeError("VarMI.setup() was not called")
        vae = on_device(self.vae, x.device)
        with torch.no_grad():
            pred = classifier(x).argmax(dim=1)
        n = n_samples or self.n_mi
        zs = self.pool.sample(pred, n, generator)  # (n, B, d) pool latents
        z = self.lambda_mi * vae.encode_mean(x).unsqueeze(0) + (1.0 - self.lambda_mi) * zs
        rows = chunk_rows(self.settings, x.device)
        probs = softmax_probs(rows_in_chunks(lambda zz: classifier(vae.decode(zz)), z.flatten(0, 1), rows))
        return probs.view(n, x.shape[0], -1).mean(dim=0)

    def surrogate(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """F_w(decode(mu(x))): the VAE path without the latent mixing."""
        if self.vae is None:
            raise RuntimeError("VarMI.setup() was not called")
        vae = on_device(self.vae, x.device)
        return classifier(vae.decode(vae.encode_mean(x)))


for _adv in (False, True):
    _name = "adv-varmi" if _adv else "varmi"
    INFERENCE.register(_name, help="VarMI (eq. 14): MI-OL on VAE latent means, decoded"
                       + (" - adversarially trained VAE" if _adv else ""))(
        type("VarMIAdv" if _adv else "VarMI_", (VarMI,), {"name": _name, "adversarial_vae": _adv})
    )
