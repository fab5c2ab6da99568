"""Inference rule `plain`: the softmax of the base classifier, deterministic."""
from __future__ import annotations

import torch
from torch import nn

from varmixup_bench.defenses.base import INFERENCE, InferenceRule, softmax_probs


@INFERENCE.register("plain", help="softmax of the base classifier F_w (deterministic)")
class Plain(InferenceRule):
    """softmax(F_w(x))."""

    name = "plain"
    stochastic = False

    def forward(self, classifier: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None,
                n_samples: int | None = None) -> torch.Tensor:
        return softmax_probs(classifier(x))

    def surrogate(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return classifier(x)  # F_w's logits: a surrogate attack on plain prediction is white-box PGD
