"""Recipe `manifold-mixup` (Verma et al. 2019): mixup of hidden representations at a randomly chosen layer."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from varmixup_bench.defenses.base import RECIPES
from varmixup_bench.defenses.mixup import BetaMixing, mixed_cross_entropy


def mixable_layers(model: nn.Module, max_hidden: int = 2) -> list[nn.Module | None]:
    """None (the input) plus the first `max_hidden` stage boundaries: ResNet stages or a Sequential's pools."""
    net = getattr(model, "net", model)
    stages = [m for m in net.children() if isinstance(m, (nn.Sequential, nn.MaxPool2d))]
    return [None, *stages[:max_hidden]]


@RECIPES.register("manifold-mixup", help="Manifold Mixup: mixup of hidden states at a random layer (input included)")
class ManifoldMixup(BetaMixing):
    name = "manifold-mixup"

    def config(self) -> dict:
        return {**super().config(), "layers": "input+2 stages"}

    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator):
        layers = mixable_layers(model)
        layer = layers[int(rng.integers(len(layers)))]
        lam = float(rng.beta(self.eta, self.eta))
        perm = torch.as_tensor(rng.permutation(x.shape[0]), device=x.device)

        def mix(h: torch.Tensor) -> torch.Tensor:
            return lam * h + (1.0 - lam) * h[perm]

        if layer is None:
            logits = model(mix(x))
        else:
            handle = layer.register_forward_hook(lambda m, i, o: mix(o))
            try:
                logits = model(x)
            finally:
                handle.remove()
        return mixed_cross_entropy(logits, y, perm, lam, self.settings.label_smoothing), logits
