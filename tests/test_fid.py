"""FID / KID of Mixup and VarMixup samples with a small stand-in feature extractor (no Inception download)."""
from __future__ import annotations

import torch
from torch import nn

import varmixup_bench as bench
from varmixup_bench.views.fid import fid_kid, sample_sets
from tests_cli_helper import bench_cli


class StandIn(nn.Module):
    """A fixed random conv feature extractor: enough to tell image distributions apart."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.num_features = 64

    def forward(self, x):
        x = x.float()
        return self.net(x / 255 if x.max() > 1.5 else x)


def test_identical_sets_score_zero_and_shifted_sets_do_not(digits):
    f = StandIn()
    x = digits.train.x[:400]
    same = fid_kid(x[:200], x[:200], f)
    other = fid_kid(x[:200], (x[200:] * 0.3), f)
    assert abs(same["fid"]) < 1e-3 and other["fid"] > 100 * max(same["fid"], 1e-6)
    assert other["kid"] > same["kid"]


def test_mixup_and_varmixup_sample_sets(digits, tmp_path):
    d = bench.train("varmixup", digits, workdir=tmp_path, epochs=1, vae_epochs=2, show_progress=False)
    from varmixup_bench.attacks.kid import draw_pairs

    x = digits.train.x
    sets = sample_sets(d.recipe, x, 100, 0, 1.0)
    assert set(sets) == {"mixup", "varmixup"} and all(s.shape == (100, 1, 8, 8) for s in sets.values())
    # one draw of pairs and lambdas for both sets (the kid evaluation's): Mixup mixes the pixels, VarMixup decodes
    # the mix of the encoder means (paper eq. 12), here computed from the VAE directly
    draw = draw_pairs(len(x), 100, 0, 1.0)
    xi, xj, lam = x[draw["i"]], x[draw["j"]], torch.from_numpy(draw["lam"]).float()
    torch.testing.assert_close(sets["mixup"], lam.view(-1, 1, 1, 1) * xi + (1 - lam.view(-1, 1, 1, 1)) * xj)
    vae = d.recipe.vae
    with torch.no_grad():
        mu_i, mu_j = vae.encode_mean(xi), vae.encode_mean(xj)
        mix = lam.view(-1, *[1] * (mu_i.dim() - 1)) * mu_i + (1 - lam.view(-1, *[1] * (mu_i.dim() - 1))) * mu_j
        torch.testing.assert_close(sets["varmixup"], vae.decode(mix))
    assert not torch.allclose(sets["varmixup"], sets["mixup"], atol=0.05)  # two different sample sets
    scores = {k: fid_kid(x[:100], v, StandIn()) for k, v in sets.items()}
    assert all(s["fid"] > 0 for s in scores.values())  # neither set is the real images


def test_fid_without_weights_is_a_clear_error(tmp_path):
    code, _, err = bench_cli("fid", "--workdir", str(tmp_path))
    assert code == 2 and "needs --feature-weights" in err
