"""Inference rule `mi`: Mixup Inference, MI-OL variant (Pang et al. 2020; VarMixup paper eq. 3)."""
from __future__ import annotations

import torch
from torch import nn

from varmixup_bench.defenses.base import INFERENCE, InferenceRule, TrainContext, chunk_rows, rows_in_chunks, softmax_probs
from varmixup_bench.defenses.pool import OtherLabelPool


@INFERENCE.register("mi", help="Mixup Inference (MI-OL): average softmax of F_w(lambda_mi*x + (1-lambda_mi)*x_s) over n_mi partners")
class MixupInference(InferenceRule):
    """F^MI(x) = mean_s softmax F_w(lambda_mi x + (1 - lambda_mi) x_s), x_s from training classes != predicted class."""

    name = "mi"
    stochastic = True

    def __init__(self, settings, recipe: str) -> None:
        super().__init__(settings, recipe)
        self.lambda_mi = float(settings.lambda_mi_for(recipe))
        self.n_mi = int(settings.n_mi)
        if not 0.0 <= self.lambda_mi <= 1.0:
            raise ValueError(f"lambda_mi must be in [0, 1], got {self.lambda_mi}")
        if self.n_mi < 1:
            raise ValueError(f"n_mi must be >= 1, got {self.n_mi}")
        self.pool: OtherLabelPool | None = None

    def config(self) -> dict:
        return {"lambda_mi": self.lambda_mi, "n_mi": self.n_mi}

    def setup(self, classifier: nn.Module, ctx: TrainContext) -> None:
        self.pool = OtherLabelPool(ctx.dataset.train.x, ctx.dataset.train.y)

    def partners(self, classifier: nn.Module, x: torch.Tensor, generator: torch.Generator | None,
                 n: int | None = None) -> torch.Tensor:
        """(n, B, C, H, W) pool images (n = n_mi by default), each from a class other than F_w's prediction."""
        if self.pool is None:
            raise RuntimeError("MixupInference.setup() was not called")
        with torch.no_grad():
            pred = classifier(x).argmax(dim=1)
        return self.pool.sample(pred, n or self.n_mi, generator)

    def forward(self, classifier: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None,
                n_samples: int | None = None) -> torch.Tensor:
        n = n_samples or self.n_mi
        xs = self.partners(classifier, x, generator, n)
        mixed = self.lambda_mi * x.unsqueeze(0) + (1.0 - self.lambda_mi) * xs  # (n, B, C, H, W)
        probs = softmax_probs(rows_in_chunks(classifier, mixed.flatten(0, 1), chunk_rows(self.settings, x.device)))
        return probs.view(n, x.shape[0], -1).mean(dim=0)

    def surrogate(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """F_w(lambda_mi x + (1 - lambda_mi) x̄), x̄ the mean pool image: MI with its random partner replaced by
        the partners' expectation."""
        if self.pool is None:
            raise RuntimeError("MixupInference.setup() was not called")
        mean = self.pool.mean_on(x.device)
        return classifier(self.lambda_mi * x + (1.0 - self.lambda_mi) * mean)
