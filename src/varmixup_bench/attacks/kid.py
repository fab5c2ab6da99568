"""Paper Fig. 5 as a metric: how far a recipe's training samples (Mixup, VarMixup, ...) lie from the training
images, as KID and FID in the feature space of a classifier trained on the same data (Inception weights cannot be
fetched offline), with per-sample U-statistic terms so that two recipes are compared paired, sample for sample."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from varmixup_bench.attacks.base import ATTACKS, Measurement
from varmixup_bench.core.errors import AttackRefused, BenchError
from varmixup_bench.defenses.base import eval_mode
from varmixup_bench.results.stats import encode_per_sample, u_statistic_se


def penultimate_features(classifier: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """The input of the classifier's last linear layer (its penultimate features) for every image of x."""
    last = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise BenchError(f"kid: the feature classifier ({type(classifier).__name__}) has no linear layer to read "
                         "penultimate features from")
    caught: list[torch.Tensor] = []
    hook = last[-1].register_forward_hook(lambda _m, inputs, _out: caught.append(inputs[0].flatten(1).double().cpu()))
    try:
        with torch.no_grad(), eval_mode(classifier):
            for i in range(0, len(x), batch_size):
                classifier(x[i : i + batch_size].to(device))
    finally:
        hook.remove()
    return torch.cat(caught)


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KID's kernel k(a, b) = (a . b / d + 1)^3 between the rows of a and b."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid_terms(real: torch.Tensor, fake: torch.Tensor) -> np.ndarray:
    """Per-sample terms u_j of the unbiased MMD^2 (KID) between real features r_j and sample features s_j, taken as
    n tuples z_j = (r_j, s_j): u_j = mean over j' != j of k(s_j, s_j') + k(r_j, r_j') - k(r_j, s_j') - k(r_j', s_j).
    Their mean is the U statistic (KID); their spread gives its variance, and two recipes' terms on the same
    real images and pairs differ by their samples only (the real-real part cancels)."""
    n = len(real)
    if n != len(fake) or n < 2:
        raise BenchError(f"kid: needs as many real images as samples, at least 2 (got {n} and {len(fake)})")
    k_ss, k_rr, k_rs = polynomial_kernel(fake, fake), polynomial_kernel(real, real), polynomial_kernel(real, fake)
    h = k_ss + k_rr - k_rs - k_rs.T  # h[j, j'] for the tuple pair (z_j, z_j'); symmetric
    h.fill_diagonal_(0.0)
    return (h.sum(1) / (n - 1)).numpy()


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID (torchmetrics) between two sets of feature vectors."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Given(nn.Module):  # the features are computed already: the extractor hands them through
        num_features = real.shape[1]

        def forward(self, f: torch.Tensor) -> torch.Tensor:
            return f

    fid = FrechetInceptionDistance(feature=Given(), normalize=True).double()
    fid.update(real, real=True)
    fid.update(fake, real=False)
    return float(fid.compute())


def draw_pairs(n_train: int, n: int, seed: int, eta: float) -> dict[str, np.ndarray]:
    """The draw every recipe's samples share (so that records pair sample for sample): images i, partners j,
    real images r (all from the training split) and lambda ~ Beta(eta, eta) as the Beta quantile of one shared
    uniform (another eta moves each lambda monotonically, the pairs stay), from the subset seed."""
    from scipy.stats import beta

    g = np.random.default_rng([seed, 5, 0x6B1D])
    out = {"i": g.integers(n_train, size=n), "j": g.integers(n_train, size=n), "r": g.integers(n_train, size=n)}
    return {**out, "lam": beta.ppf(g.random(n), eta, eta)}


def draw_key(settings, features_model: str | None, train_fingerprint: str) -> str:
    """What two KID records must share for their per-sample terms to pair: the draw (its seed and size), the
    feature model and the training data. Recorded with the terms; compare_values refuses records that differ."""
    from varmixup_bench.training.cache import config_hash

    return config_hash({"samples": int(settings.kid_samples), "seed": int(settings.subset_seed),
                        "features": features_model, "data": train_fingerprint})


@ATTACKS.register("kid", help="paper Fig. 5: KID and FID between training images and the recipe's training samples, "
                  "in the penultimate features of the preset's kid_features classifier (ERM); per-sample terms")
class KID(Measurement):
    """Value: KID (x 1000) between kid_samples training images and as many samples the attacked defense's recipe
    makes from pairs of training images (Recipe.training_samples); details: its 95 % interval, FID under the same
    features, the per-sample terms. The record's accuracy is the defense's clean accuracy."""

    name = "kid"
    kind = "metric"
    uses_recipe = True

    def other_defenses(self) -> list[str]:
        return [str(self.settings.kid_features)]

    def config(self) -> dict:
        s = self.settings
        return {"samples": int(s.kid_samples), "features": str(s.kid_features), "kernel": "(a.b/d + 1)^3",
                "eta": float(s.eta), "draw_seed": int(s.subset_seed), "scale": 1000}

    def evaluate(self, defense, split, *, trials: int, seed: int, batch_size: int, show_progress: bool = True):
        from varmixup_bench.attacks.metrics import clean_accuracy

        ctx = defense.info.get("context")
        if ctx is None or ctx.defense_provider is None:
            raise BenchError("kid needs the training data and the feature classifier: attack a defense from "
                             "training.runner.train, whose context provides them")
        from varmixup_bench.defenses.base import Recipe
        from varmixup_bench.training.data import split_fingerprint

        recipe, s, dev = defense.recipe, self.settings, defense.device
        if defense.info.get("zoo") or type(recipe).training_samples is Recipe.training_samples:
            raise AttackRefused(f"kid: {defense.spec} has no model-free training samples (Recipe.training_samples: "
                                "a model-zoo checkpoint's training is unknown, adversarial examples need the model); "
                                "Fig. 5 compares Mixup-style recipes")
        train = ctx.dataset.train
        draw = draw_pairs(len(train), int(s.kid_samples), int(s.subset_seed), float(s.eta))
        recipe.prepare(ctx)  # the Var* recipes' VAE, from the cache
        lam = torch.from_numpy(draw["lam"]).float()
        chunks = []
        for k in range(0, len(lam), batch_size):
            part = slice(k, k + batch_size)
            out = recipe.training_samples(train.x[draw["i"][part]].to(dev), train.x[draw["j"][part]].to(dev),
                                          lam[part].to(dev))
            chunks.append(out.detach().cpu())
        samples = torch.cat(chunks)
        features = ctx.defense_provider(str(s.kid_features))
        real_f = penultimate_features(features.classifier, train.x[draw["r"]], features.device, batch_size)
        fake_f = penultimate_features(features.classifier, samples, features.device, batch_size)
        terms = 1000.0 * kid_terms(real_f, fake_f)
        value, half = float(terms.mean()), 1.96 * u_statistic_se(terms)
        acc = clean_accuracy(defense, split.x, split.y, torch.Generator().manual_seed(seed), batch_size)
        feature_key = features.info.get("config_hash")
        details = {"kid_ci": [value - half, value + half], "fid": frechet_distance(real_f, fake_f),
                   "feature_dim": int(real_f.shape[1]), "features_model": feature_key,
                   "per_sample": encode_per_sample({"kid_term": terms},
                                                   draw_key(s, feature_key, split_fingerprint(train)))}
        return {"clean": [acc], "robust": [acc], "value": value, "metric": "kid_x1000", "details": details}
