"""An example plug-in: a recipe, an inference rule and an attack, registered through entry points only."""
import torch
import torch.nn.functional as F

from attacks.base import Attack
from defenses.base import InferenceRule, Recipe


class LabelSmoothing(Recipe):
    """Cross-entropy with label smoothing 0.1."""

    name = "label-smoothing"

    def loss(self, model, x, y, rng):
        logits = model(x)
        return F.cross_entropy(logits, y, label_smoothing=0.1), logits


class Temperature(InferenceRule):
    """softmax(F_w(x) / 2): a deterministic inference rule."""

    name = "temperature"

    def forward(self, classifier, x, generator=None, n_samples=None):
        return torch.softmax(classifier(x) / 2.0, dim=1)


class UniformNoise(Attack):
    """Uniform noise in the eps-ball (a weak, gradient-free baseline)."""

    name = "uniform-noise"

    def perturb(self, model, x, y, targets=None):
        return (x + torch.empty_like(x).uniform_(-self.eps, self.eps)).clamp(0, 1)
