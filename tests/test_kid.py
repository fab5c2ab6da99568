"""Paper Fig. 5 as attack `kid`: KID agrees with torchmetrics, its per-sample terms give a paired test that is
null on one distribution and sees a shifted one, and the samples are the recipes' own (eqs. 12-13)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import varmixup_bench as bench
from varmixup_bench.attacks.kid import draw_pairs, kid_terms, polynomial_kernel
from varmixup_bench.core.errors import AttackRefused
from varmixup_bench.results.stats import compare_values, encode_per_sample


def _features(n: int, d: int, shift: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_terms_reproduce_torchmetrics_kid():
    """The mean of the per-sample terms is torchmetrics' KID (one subset of all n), up to the cross term's diagonal
    (r_j with s_j), which torchmetrics' V-statistic cross term includes and the U statistic leaves out."""
    from torch import nn
    from torchmetrics.image.kid import KernelInceptionDistance

    class Given(nn.Module):
        def forward(self, f):
            return f

    n, d = 300, 16
    real, fake = _features(n, d, 0.0, 0), _features(n, d, 0.3, 1)
    kid = KernelInceptionDistance(feature=Given(), subsets=1, subset_size=n).double()
    kid.update(real, real=True)
    kid.update(fake, real=False)
    theirs = float(kid.compute()[0])
    k_rs = polynomial_kernel(real, fake)
    ours = kid_terms(real, fake).mean()
    diagonal_fix = 2 * float(k_rs.sum() - k_rs.diagonal().sum()) / (n * (n - 1)) - 2 * float(k_rs.sum()) / n**2
    assert ours + diagonal_fix == pytest.approx(theirs, rel=1e-9, abs=1e-12)
    assert ours > 0.05  # a shift of 0.3 per coordinate is far from noise at n = 300


def _kid_record(real, fake, draw="d"):
    return {"details": {"per_sample": encode_per_sample({"kid_term": kid_terms(real, fake)}, draw)}}


def test_paired_kid_test_is_null_on_one_distribution_and_sees_a_shift():
    real = _features(400, 8, 0.0, 0)
    same = compare_values(_kid_record(real, _features(400, 8, 0.0, 1)), _kid_record(real, _features(400, 8, 0.0, 1)))
    assert same.diff == 0 and same.p == 1.0 and same.n == 400
    # two sample sets from one distribution away from the real one: the z statistic is standard normal (its
    # U-statistic variance 4 Var(term) / n: without the factor 2 its spread would be about 2, and about 14 % of
    # these 200 tests would reject at 5 %)
    z = np.array([(lambda c: c.diff / c.se)(compare_values(_kid_record(real, _features(400, 8, 0.5, 10 + s)),
                                                         _kid_record(real, _features(400, 8, 0.5, 1000 + s))))
                  for s in range(200)])
    assert 0.8 < z.std() < 1.25 and 0.01 <= np.mean(np.abs(z) > 1.96) <= 0.10
    far = compare_values(_kid_record(real, _features(400, 8, 0.4, 2)), _kid_record(real, _features(400, 8, 0.0, 3)))
    assert far.diff > 0 and far.p < 1e-4
    # terms of another draw (other real images, sizes or feature model) do not pair: no test rather than a wrong one
    assert compare_values(_kid_record(real, _features(400, 8, 0.4, 2), "d"),
                          _kid_record(real, _features(400, 8, 0.0, 3), "other")) is None


def test_draw_is_shared_by_every_recipe_and_lambda_follows_eta():
    a, b = draw_pairs(1000, 500, 0, 1.0), draw_pairs(1000, 500, 0, 1.0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["i"], draw_pairs(1000, 500, 1, 1.0)["i"])
    wide, narrow = draw_pairs(1000, 4000, 0, 0.2), draw_pairs(1000, 4000, 0, 5.0)
    assert wide["lam"].std() > narrow["lam"].std()
    # another eta keeps the pairs and real images, and moves each lambda monotonically (one shared uniform)
    assert all(np.array_equal(wide[k], narrow[k]) for k in ("i", "j", "r"))
    order = np.argsort(wide["lam"])
    assert np.all(np.diff(narrow["lam"][order]) >= -1e-12)
    from scipy.stats import beta

    assert abs(narrow["lam"].mean() - 0.5) < 0.01
    assert abs(np.mean(wide["lam"] < 0.1) - beta.cdf(0.1, 0.2, 0.2)) < 0.03  # Beta(0.2, 0.2): a third below 0.1


def test_recipe_samples_are_the_training_inputs_of_eqs_12_and_13(tmp_path, digits):
    d = bench.train("varmixup", digits, workdir=tmp_path, epochs=1, show_progress=False, vae_arch="conv",
                    vae_epochs=1, vae_latent_channels=4, vae_width=8)
    recipe = d.recipe
    recipe.prepare(d.info["context"])
    x, partner = digits.train.x[:6], digits.train.x[6:12]
    ones, zeros = torch.ones(6), torch.zeros(6)
    vae = recipe.vae
    with torch.no_grad():
        assert torch.allclose(recipe.training_samples(x, partner, ones), vae.reconstruct(x), atol=1e-6)
        assert torch.allclose(recipe.training_samples(x, partner, zeros), vae.reconstruct(partner), atol=1e-6)
        half = vae.decode(0.5 * vae.encode_mean(x) + 0.5 * vae.encode_mean(partner))
        assert torch.allclose(recipe.training_samples(x, partner, 0.5 * ones), half, atol=1e-6)
    mixup = bench.train("mixup", digits, workdir=tmp_path, epochs=1, show_progress=False).recipe
    lam = torch.linspace(0, 1, 6)
    assert torch.allclose(mixup.training_samples(x, partner, lam), lam.view(-1, 1, 1, 1) * x
                          + (1 - lam.view(-1, 1, 1, 1)) * partner)


def test_kid_attack_on_digits_mixup_far_erm_near_and_adversarial_training_refused(workdir, digits, erm):
    # kid_samples is an evaluation setting: the same trained models, loaded with it
    erm = bench.train("erm", digits, workdir=workdir, epochs=15, show_progress=False, kid_samples=300)
    mixup = bench.train("mixup", digits, workdir=workdir, epochs=15, show_progress=False, kid_samples=300)
    assert not erm.info["trained"]
    opts = dict(workdir=workdir, show_progress=False, record=False)
    on_erm, on_mixup = bench.evaluate(erm, "kid", **opts), bench.evaluate(mixup, "kid", **opts)
    assert on_mixup["attack_config"]["samples"] == 300 and on_mixup["attack_config"]["features"] == "erm"
    lo, hi = on_erm["details"]["kid_ci"]
    assert lo <= 0 <= hi  # ERM's samples are training images: no distance beyond noise
    assert on_mixup["details"]["kid_ci"][0] > 0 and on_mixup["details"]["fid"] > on_erm["details"]["fid"]
    cmp = compare_values(on_mixup, on_erm)
    assert cmp.diff == pytest.approx(on_mixup["value"] - on_erm["value"], rel=1e-4) and cmp.p < 0.01
    at = bench.train("at", digits, workdir=workdir, epochs=1, train_steps=1, show_progress=False, kid_samples=300)
    with pytest.raises(AttackRefused, match="no model-free training samples"):
        bench.evaluate(at, "kid", **opts)
