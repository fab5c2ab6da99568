"""The VarMixup family: MMD, the MMD-VAE, VarERM / VarMixup samples, VarMI, VAE caching and transfer."""
from __future__ import annotations

import pytest
import torch

import varmixup_bench as bench
from varmixup_bench.defenses.latent import FittedVAE, reconstruction_error, reconstruction_pgd
from varmixup_bench.defenses.spec import parse_defense_spec
from varmixup_bench.defenses.vae import MMDVAE, mmd
from varmixup_bench.defenses.varmixup import varmixup_samples

VAE_OPTS = {"vae_epochs": 8, "epochs": 8}


@pytest.fixture(scope="module")
def var_workdir(tmp_path_factory):
    # a private weight cache: test_vae_is_trained_once_for_all_var_defenses counts the VAE files it holds
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BENCH_CACHE_DIR", raising=False)
        yield tmp_path_factory.mktemp("var")


@pytest.fixture(scope="module")
def varmixup_varmi(var_workdir, digits):
    return bench.train("varmixup+varmi", digits, workdir=var_workdir, show_progress=False, **VAE_OPTS)


def test_mmd_is_zero_for_the_prior_and_large_for_a_shift():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(800, 8, generator=g), torch.randn(800, 8, generator=g)
    same = mmd(a, b, bandwidth=16.0).item()
    shifted = mmd(a + 1.0, b, bandwidth=16.0).item()
    assert abs(same) < 0.005
    assert shifted > 0.1 and shifted > 20 * abs(same)


def test_vae_learns_and_reconstructs_in_unit_range(varmixup_varmi, digits):
    vae = varmixup_varmi.rule.vae
    hist = vae.meta["history"]
    assert hist[-1]["recon"] < 0.5 * hist[0]["recon"]
    x = digits.test.x[:64]
    with torch.no_grad():
        r = vae.reconstruct(x)
    assert r.shape == x.shape and r.min() >= 0 and r.max() <= 1
    untrained = FittedVAE(MMDVAE((1, 8, 8), 32).eval(), (1, 8, 8))
    assert reconstruction_error(vae, x, torch.device("cpu")) < 0.5 * reconstruction_error(untrained, x, torch.device("cpu"))


def test_varmixup_endpoints_are_varerm_samples(varmixup_varmi, digits):
    vae = varmixup_varmi.rule.vae
    x = digits.test.x[:16]
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        rec = vae.decode(vae.encode_mean(x))
    torch.testing.assert_close(varmixup_samples(vae, x, perm, 1.0), rec)
    torch.testing.assert_close(varmixup_samples(vae, x, perm, 0.0), rec[perm])
    mid = varmixup_samples(vae, x, perm, 0.5)
    assert not torch.allclose(mid, 0.5 * x + 0.5 * x[perm], atol=1e-2)  # latent, not input-space, mixing


def test_varmi_partners_never_from_predicted_class_and_batched_equals_loop(varmixup_varmi, digits):
    rule, clf = varmixup_varmi.rule, varmixup_varmi.classifier
    x = digits.test.x[:8]
    with torch.no_grad():
        pred = clf(x).argmax(1)
        idx = rule.pool.indices(pred, rule.n_mi, torch.Generator().manual_seed(7))
        assert not (rule.pool.y[idx] == pred.unsqueeze(0)).any()
        batched = rule.forward(clf, x, torch.Generator().manual_seed(7))
        mu = rule.vae.encode_mean(x)
        for i in range(len(x)):
            z = 0.5 * mu[i] + 0.5 * rule.pool.x[idx[:, i]]
            single = torch.softmax(clf(rule.vae.decode(z)), 1).mean(0)
            torch.testing.assert_close(batched[i], single, rtol=1e-4, atol=1e-5)


def test_varmi_one_encode_and_its_mixes_decoded_and_classified_in_cpu_chunks(varmixup_varmi, digits):
    vae = varmixup_varmi.rule.vae.vae
    calls = {"enc": [], "dec": [], "clf": []}
    hooks = [vae.encoder.register_forward_hook(lambda m, i, o: calls["enc"].append(len(i[0]))),
             vae.decoder.register_forward_hook(lambda m, i, o: calls["dec"].append(len(i[0]))),
             varmixup_varmi.classifier.register_forward_hook(lambda m, i, o: calls["clf"].append(len(i[0])))]
    try:
        varmixup_varmi.predict(digits.test.x[:20], torch.Generator().manual_seed(0))
    finally:
        for h in hooks:
            h.remove()
    assert calls == {"enc": [20], "dec": [256, 256, 88], "clf": [20, 256, 256, 88]}  # 600 mixes, chunks of 256


def test_varmi_forward_is_differentiable_through_the_vae(varmixup_varmi, digits):
    x = digits.test.x[:4].clone().requires_grad_(True)
    p = varmixup_varmi.forward(x, torch.Generator().manual_seed(0))
    p[torch.arange(4), digits.test.y[:4]].log().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vae_is_trained_once_for_all_var_defenses(var_workdir, digits, varmixup_varmi, monkeypatch):
    import varmixup_bench.defenses.latent as latent

    calls = []
    real = latent.train_vae
    monkeypatch.setattr(latent, "train_vae", lambda *a, **k: calls.append(1) or real(*a, **k))
    d = bench.train("varerm+varmi", digits, workdir=var_workdir, show_progress=False, **VAE_OPTS)
    assert calls == [] and not d.rule.vae.trained
    assert d.rule.vae.key == varmixup_varmi.rule.vae.key
    assert len(list((var_workdir / "vaes").glob("*/weights.safetensors"))) == 1
    d_adv = bench.train("adv-varerm", digits, workdir=var_workdir, show_progress=False,
                        **{**VAE_OPTS, "vae_epochs": 2, "vae_adv_steps": 2})
    assert calls == [1] and d_adv.recipe.vae.key != d.rule.vae.key
    assert d_adv.info["config_hash"] != d.info["config_hash"]


def test_reconstruction_pgd_hurts_more_than_random_noise(varmixup_varmi, digits):
    vae, x = varmixup_varmi.rule.vae.vae, digits.test.x[:64]
    eps = 32 / 255
    adv = reconstruction_pgd(vae, x, eps, 8 / 255, 10)
    noise = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    assert (adv - x).abs().max() <= eps + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    with torch.no_grad():
        err_adv = torch.nn.functional.mse_loss(vae.reconstruct(adv), x)
        err_noise = torch.nn.functional.mse_loss(vae.reconstruct(noise), x)
    assert err_adv > 1.5 * err_noise, (err_adv, err_noise)


@pytest.mark.parametrize("spec", ["varmixup+varmi", "varerm+varmi", "mixup+varmi", "varmixup+mi",
                                  "adv-varmixup+adv-varmi", "adv-varerm", "erm+adv-varmi"])
def test_grammar_accepts_every_combination(spec):
    assert str(parse_defense_spec(spec)) == spec


def test_vae_from_another_dataset_fits_the_target_shape(varmixup_varmi):
    fitted = FittedVAE(varmixup_varmi.rule.vae.vae, (3, 16, 16))
    x = torch.rand(5, 3, 16, 16)
    with torch.no_grad():
        z = fitted.encode_mean(x)
        out = fitted.decode(z)
    assert z.shape == (5, 32) and out.shape == (5, 3, 16, 16) and 0 <= out.min() and out.max() <= 1


def test_vae_from_is_used_and_keyed(var_workdir, digits, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(2):
            d = tmp_path / "tree" / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(6):
                Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(d / f"{i}.png")
    target = bench.load_dataset(f"imagefolder:{tmp_path / 'tree'}")
    d = bench.train("varerm+varmi", target, workdir=var_workdir, show_progress=False,
                    vae_from="digits", **VAE_OPTS, n_mi=4)
    assert d.rule.vae.vae.shape == (1, 8, 8) and d.rule.vae.target_shape == (3, 12, 12)
    assert d.rule.vae.meta["dataset"] == "digits"
    assert d.predict(target.test.x).shape == (12,)
    # keyed: the VAE's source is in the model's key, so the same recipe with the target's own VAE is another model
    from varmixup_bench.training.runner import defense_key, make_context

    def key(**vae):
        ctx = make_context(target, workdir=var_workdir, show_progress=False, n_mi=4, **VAE_OPTS, **vae)
        return defense_key("varerm+varmi", ctx, VAE_OPTS["epochs"])
    assert key(vae_from="digits") == d.info["config_hash"] != key()
