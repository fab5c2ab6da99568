"""The VAE architecture registry: the fully convolutional MMD-VAE's shapes, its MMD on the flattened spatial
latent, its use across image sizes without resizing, and cache keys of the flat VAE unchanged."""
from __future__ import annotations

import pytest
import torch
from tests_interrupt_helper import StopTraining, stop_after

from varmixup_bench.core.errors import BenchError
from varmixup_bench.config.presets import get_preset
from varmixup_bench.defenses.latent import vae_config
from varmixup_bench.defenses.vae import VAES, ConvVAE, MMDVAE, build_vae, mmd, vae_loss


def test_registry_has_both_architectures_and_the_preset_checks_the_name():
    assert {"flat", "conv"} <= set(VAES.names())
    assert isinstance(build_vae("flat", (1, 8, 8), get_preset(None)), MMDVAE)
    assert isinstance(build_vae("conv", (1, 8, 8), get_preset(None).with_overrides(vae_arch="conv")), ConvVAE)
    with pytest.raises(BenchError, match="vae_arch.*flat"):
        get_preset(None).with_overrides(vae_arch="conv3d").check()


@pytest.mark.parametrize("shape,stride,latent", [((3, 32, 32), 4, (16, 8, 8)), ((1, 8, 8), 4, (16, 2, 2)),
                                                  ((3, 30, 28), 4, (16, 8, 7)), ((3, 32, 32), 2, (16, 16, 16)),
                                                  ((3, 31, 32), 2, (16, 16, 16))])
def test_spatial_latent_is_the_side_over_the_stride_and_decodes_to_the_image_shape(shape, stride, latent):
    vae = ConvVAE(shape, 16, 8, stride).eval()
    x = torch.rand(3, *shape)
    mu, logvar = vae.encode(x)
    assert tuple(mu.shape) == (3, *latent) == (3, *vae.latent_shape) and mu.shape == logvar.shape
    assert vae.latent_dim == latent[0] * latent[1] * latent[2]
    out = vae.reconstruct(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_mmd_runs_on_the_flattened_latent_with_bandwidth_twice_its_length():
    torch.manual_seed(0)
    vae = ConvVAE((1, 8, 8), 4, 8)
    x = torch.rand(16, 1, 8, 8)
    torch.manual_seed(1)
    auto = vae_loss(vae, x, x, 1.0, None)
    torch.manual_seed(1)
    explicit = vae_loss(vae, x, x, 1.0, 2.0 * vae.latent_dim)
    assert torch.allclose(auto["mmd"], explicit["mmd"]) and torch.allclose(auto["loss"], auto["recon"] + auto["mmd"])
    z = torch.randn(256, 4, 2, 2)
    near = mmd(z.flatten(1), torch.randn(256, 16), 32.0)
    far = mmd((z + 2).flatten(1), torch.randn(256, 16), 32.0)
    assert abs(float(near)) < 0.02 < float(far)


def test_a_conv_vae_trained_on_one_size_reconstructs_another_without_resizing():
    """Paper Table 3 (a VAE trained on another dataset): the same weights, built for the new size, reconstruct
    images of that size as they are. (Not as well as their own size: measured on flat grey images, pixel MSE
    0.0004 at the trained 16x16 against 0.008 at 24x24, whose inner latent cells training never saw as inner.)"""
    torch.manual_seed(0)
    small = ConvVAE((1, 16, 16), 8, 8)
    opt = torch.optim.Adam(small.parameters(), lr=3e-3)
    for _ in range(120):
        x = torch.rand(16, 1, 1, 1) * torch.ones(16, 1, 16, 16)  # flat grey images: quick to learn
        loss = vae_loss(small, x, x, 0.0, None)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    big = ConvVAE((1, 24, 24), 8, 8)
    big.load_state_dict(small.state_dict())  # no layer depends on the size
    big.eval()
    x24 = torch.rand(64, 1, 1, 1) * torch.ones(64, 1, 24, 24)
    with torch.no_grad():
        out = big.reconstruct(x24)
    assert out.shape == x24.shape
    assert float(((out - x24) ** 2).mean()) < 0.25 * float(((x24 - x24.mean()) ** 2).mean())


def test_flat_vae_keys_are_unchanged_and_conv_keys_name_the_architecture():
    flat = vae_config(get_preset(None), adversarial=False)
    assert "arch" not in flat and flat["latent_dim"] == 32  # the committed stores' VAE keys stay valid
    conv = vae_config(get_preset(None).with_overrides(vae_arch="conv", vae_latent_channels=8), adversarial=False)
    assert conv["arch"] == "conv" and conv["latent_channels"] == 8 and "latent_dim" not in conv
    assert conv["bandwidth"] is None  # from the flattened latent's length, which depends on the image size


def test_varmixup_and_varmi_run_on_a_conv_vae(tmp_path, digits):
    import varmixup_bench as bench

    d = bench.train("varmixup+varmi", digits, workdir=tmp_path, epochs=1, show_progress=False, vae_arch="conv",
                    vae_epochs=2, vae_latent_channels=4, vae_width=8)
    from varmixup_bench.defenses.vae import ConvVAE

    inner = d.rule.vae.vae
    assert isinstance(inner, ConvVAE) and inner.latent_shape == (4, 2, 2)  # 8x8 digits at the default stride 4
    decoded = []
    handle = inner.decoder.register_forward_hook(lambda m, i, o: decoded.append(o.shape[0]))
    rec = bench.evaluate(d, "clean", workdir=tmp_path, show_progress=False, record=False)
    handle.remove()
    # VarMI classified decodings of the conv VAE's latent mixes: N_MI of them per test image
    assert rec["n_examples"] == len(digits.test) and sum(decoded) >= d.rule.n_mi * len(digits.test)
    assert sum(decoded) % d.rule.n_mi == 0
    assert d.rule.vae.meta["config"]["arch"] == "conv"


@pytest.mark.parametrize("adversarial", [False, True])
def test_vae_training_interrupted_resumes_to_the_same_weights(tmp_path, digits, adversarial):
    """A VAE training killed after epoch 2 of 4 resumes from its checkpoint (weights, Adam state, the shuffle and
    noise generators) to the weights of an uninterrupted training; the checkpoint is gone afterwards."""
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.defenses.latent import train_vae
    from varmixup_bench.defenses.vae import build_vae
    from varmixup_bench.training.checkpoint import FILE

    s = get_preset(None).with_overrides(vae_arch="conv", vae_latent_channels=4, vae_latent_stride=2, vae_epochs=4,
                                        vae_adv_epochs=4, vae_adv_steps=1)
    cpu = torch.device("cpu")
    full, part = build_vae("conv", (1, 8, 8), s), build_vae("conv", (1, 8, 8), s)
    part.load_state_dict(full.state_dict())
    ref = train_vae(full, digits.train, s, adversarial, cpu, 0, False, digits.test.x[:50])

    with pytest.raises(StopTraining):
        train_vae(part, digits.train, s, adversarial, cpu, 0, False, digits.test.x[:50], tmp_path, stop_after(2))
    assert (tmp_path / FILE).exists()
    hist = train_vae(part, digits.train, s, adversarial, cpu, 0, False, digits.test.x[:50], tmp_path)
    assert not (tmp_path / FILE).exists() and [h["epoch"] for h in hist] == [1, 2, 3, 4]
    for a, b in zip(full.state_dict().values(), part.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["test_psnr_db"] for h in hist] == pytest.approx([h["test_psnr_db"] for h in ref])


def test_vae_seed_shares_one_vae_across_training_seeds_and_the_seeds_still_pool(tmp_path, digits, private_cache):
    """With vae_seed = 0, VarMixup at training seeds 0 and 1 uses one MMD-VAE (one key, trained once) and two
    classifiers; unset, the VAE follows the training seed (the keys of stores written before the field are
    unchanged); the seeds' records pool as one model (model_signature ignores both seeds)."""
    import varmixup_bench as bench
    from varmixup_bench.results.record import model_signature

    s = get_preset(None)
    assert vae_config(s.with_overrides(seed=1), False)["seed"] == 1  # unset: the training seed, as before
    assert vae_config(s.with_overrides(seed=1, vae_seed=0), False) == vae_config(s, False)
    opts = dict(workdir=tmp_path, epochs=1, show_progress=False, vae_epochs=1, vae_width=8)
    d0 = bench.train("varmixup", digits, seed=0, **opts)
    d1 = bench.train("varmixup", digits, seed=1, vae_seed=0, **opts)
    assert d0.info["config_hash"] != d1.info["config_hash"]  # two classifiers
    assert len(list((tmp_path / "vaes").glob("*/meta.json"))) == 1  # one VAE
    r0, r1 = (bench.evaluate(d, "clean", workdir=tmp_path, show_progress=False) for d in (d0, d1))
    assert r1["seed"] == 1 and model_signature(r0) == model_signature(r1)
    with pytest.raises(BenchError, match="vae_seed"):
        s.with_overrides(vae_seed=-1).check()
