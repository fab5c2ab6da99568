"""An example plug-in: a recipe, a randomised inference rule and an attack, registered through entry points only."""
import numpy as np
import torch
import torch.nn.functional as F

from varmixup_bench import Attack, InferenceRule, Recipe


class NoisyTraining(Recipe):
    """Cross-entropy on inputs with Gaussian noise of std `sigma` (shown in `bench list defenses`)."""

    name = "noisy-training"

    def __init__(self, settings, sigma: float = 0.1):
        super().__init__(settings)
        self.sigma = sigma

    def config(self) -> dict:
        return {"sigma": self.sigma}  # part of the cache key: change sigma, and the model retrains

    def loss(self, model, x, y, rng: np.random.Generator):
        # rng is a numpy Generator seeded per epoch: draw with numpy, then move to torch
        noise = torch.from_numpy(rng.normal(0.0, self.sigma, size=tuple(x.shape)).astype(np.float32)).to(x.device)
        logits = model((x + noise).clamp(0, 1))
        return F.cross_entropy(logits, y), logits


class RandomSmoothing(InferenceRule):
    """Average softmax of F_w over n Gaussian-noised copies of x (randomised)."""

    name = "random-smoothing"
    stochastic = True  # randomised: attacks on F_w are `oblivious`, adaptive ones use EOT

    def __init__(self, settings, recipe, sigma: float = 0.1, n: int = 8):
        super().__init__(settings, recipe)  # keywords: --defense 'erm+random-smoothing(sigma=0.2,n=16)'
        self.sigma, self.n = sigma, n

    def config(self) -> dict:
        return {"sigma": self.sigma, "n": self.n}  # in the evaluation key; recorded as inference_config

    def forward(self, classifier, x, generator=None, n_samples=None):
        n = n_samples or self.n  # adaptive attacks pass n_samples=1 and average gradients over calls
        # generator: a CPU torch.Generator (None outside an evaluation): draw on the CPU, then move to x's device
        noise = torch.randn((n, *x.shape), generator=generator).to(x.device) * self.sigma
        probs = torch.softmax(classifier((x.unsqueeze(0) + noise).clamp(0, 1).flatten(0, 1)), dim=1)
        return probs.view(n, x.shape[0], -1).mean(dim=0)


class UniformNoise(Attack):
    """Uniform noise in the eps-ball (a weak, gradient-free baseline)."""

    name = "uniform-noise"
    uses_step = False  # records no step

    def perturb(self, model, x, y, targets=None):
        return (x + torch.empty_like(x).uniform_(-self.eps, self.eps)).clamp(0, 1)
