"""The fast training regime's pieces: optimizer, one-cycle schedule (resumed where it stopped), flip-translate
augmentation, label smoothing in every recipe's loss, the fast-cnn model, and keys that change only when used."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests_interrupt_helper import StopTraining, stop_after

from varmixup_bench.core.errors import BenchError
from varmixup_bench.training.models import build_model
from varmixup_bench.config.presets import get_preset
from varmixup_bench.training.loop import AUGMENTS, SCHEDULES, flip_translate, make_optimizer


def test_fast_cnn_maps_cifar_and_digits_shapes_to_logits():
    for shape in ((3, 32, 32), (1, 8, 8)):
        m = build_model("fast-cnn-half", shape, 10, [0.5] * shape[0], [0.25] * shape[0]).eval()
        assert m(torch.rand(2, *shape)).shape == (2, 10)


def test_one_cycle_warms_up_then_decays_to_near_zero():
    opt = make_optimizer("sgd-nesterov", [torch.nn.Parameter(torch.zeros(1))], 0.2, 5e-4)
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["weight_decay"] == 5e-4
    sched = SCHEDULES["one-cycle"](opt, 100, 0.2)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = int(np.argmax(lrs))
    assert 20 <= peak <= 30 and lrs[0] == pytest.approx(0.2 / 25) and max(lrs) == pytest.approx(0.2, rel=0.02)
    assert lrs[-1] < 0.01 and all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))


def test_flip_translate_keeps_pixels_flips_about_half_and_is_seeded():
    x = torch.rand(400, 3, 8, 8)
    a = flip_translate(x, np.random.default_rng(0))
    b = flip_translate(x, np.random.default_rng(0))
    assert torch.equal(a, b) and a.shape == x.shape
    # with no shift every image is itself or its mirror image
    c = flip_translate(x, np.random.default_rng(1), shift=0)
    same, mirrored = (c == x).flatten(1).all(1), (c == x.flip(-1)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 150 < int(mirrored.sum()) < 250
    assert set(AUGMENTS) == {"none", "flip-translate", "flip-crop"}


@pytest.mark.parametrize("recipe", ["erm", "mixup", "at", "trades", "iat", "manifold-mixup"])
def test_label_smoothing_enters_every_recipe_loss(recipe):
    from varmixup_bench.defenses import RECIPES

    torch.manual_seed(0)
    model = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.25])
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    losses = []
    for ls in (0.0, 0.3):
        r = RECIPES.get(recipe)(get_preset(None).with_overrides(label_smoothing=ls, train_steps=1))
        torch.manual_seed(1)
        losses.append(r.loss(model.train(), x, y, np.random.default_rng(0))[0].item())
    assert losses[0] != pytest.approx(losses[1], rel=1e-4)
    if recipe == "erm":
        torch.manual_seed(1)
        with torch.no_grad():
            logits = model(x)
        assert losses[1] == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=0.3)), rel=1e-5)


def test_regime_preset_checks_and_keys(tmp_path, digits):
    from varmixup_bench.training.runner import defense_key, make_context

    regime = get_preset("cifar-regime")
    assert regime.model == "fast-cnn-half" and regime.augment == "flip-crop" and regime.vae_arch == "conv"
    assert regime.init == "whiten" and regime.channels_last
    for bad in ({"lr_schedule": "cosine"}, {"augment": "cutout"}, {"optimizer": "lion"}, {"label_smoothing": 1.0},
                {"init": "orthogonal"}):
        with pytest.raises(BenchError):
            get_preset(None).with_overrides(**bad).check()
    plain = defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu"))
    smoothed = defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu", label_smoothing=0.1))
    whitened = defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu", init="whiten"))
    assert len({plain, smoothed, whitened}) == 3


def test_a_regime_training_on_digits_learns_and_resumes_to_the_same_weights(tmp_path, digits):
    """Every regime piece at once on small data: it learns, and a run interrupted after epoch 2 of 4 resumes
    (the schedule continued, the augmentation re-drawn from the same seeds) to the same weights."""
    import varmixup_bench as bench
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses import RECIPES

    over = dict(model="fast-cnn-half", optimizer="sgd-nesterov", lr=0.05, weight_decay=5e-4,
                lr_schedule="one-cycle", label_smoothing=0.1, augment="flip-translate", batch_size=64)
    d = bench.train("erm", digits, workdir=tmp_path, epochs=6, show_progress=False, **over)
    assert bench.evaluate(d, "clean", record=False, show_progress=False)["clean_acc"] > 50  # chance: 10 % (flips hurt digits)
    settings = get_preset(None).with_overrides(**over)

    full = build_model("fast-cnn-half", (1, 8, 8), 10, [0.5], [0.25])
    part = build_model("fast-cnn-half", (1, 8, 8), 10, [0.5], [0.25])
    part.load_state_dict(full.state_dict())
    kw = dict(batch_size=64, lr=0.05, optimizer="sgd-nesterov", device=torch.device("cpu"), seed=0,
              show_progress=False, weight_decay=5e-4, lr_schedule="one-cycle", augment="flip-translate")
    recipe = RECIPES.get("erm")(settings)
    train_classifier(recipe, full, digits.train, epochs=4, **kw)

    with pytest.raises(StopTraining):
        train_classifier(recipe, part, digits.train, epochs=4, checkpoint_dir=tmp_path / "ck", on_epoch_end=stop_after(2),
                         **kw)
    train_classifier(recipe, part, digits.train, epochs=4, checkpoint_dir=tmp_path / "ck", **kw)
    for a, b in zip(full.state_dict().values(), part.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_channels_last_is_a_memory_order_only_same_key_and_same_predictions(tmp_path, digits):
    """channels_last changes how the weights sit in memory, not what they are: the same cache key (a model trained
    one way loads the other way) and the same logits to float rounding."""
    import varmixup_bench as bench
    from varmixup_bench.training.runner import defense_key, make_context

    over = dict(model="fast-cnn-half", batch_size=64)
    keys = {cl: defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu", channels_last=cl, **over))
            for cl in (False, True)}
    assert keys[False] == keys[True]
    trained = bench.train("erm", digits, workdir=tmp_path, epochs=2, show_progress=False, channels_last=True, **over)
    assert trained.info["trained"]
    conv = next(m for m in trained.classifier.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    loaded = bench.train("erm", digits, workdir=tmp_path, epochs=2, show_progress=False, channels_last=False, **over)
    assert not loaded.info["trained"]
    x = digits.test.x[:32]
    with torch.no_grad():
        assert torch.allclose(trained.classifier(x), loaded.classifier(x), atol=1e-4)


def test_a_channels_last_vae_has_the_same_key_and_the_same_reconstructions(tmp_path, digits, private_cache):
    """The Var* recipes' conv VAE in channels-last order (the preset's channels_last): the same VAE key, trained one
    way and loaded the other, with the same reconstructions to float rounding."""
    from varmixup_bench.defenses.latent import get_vae
    from varmixup_bench.training.runner import make_context

    over = dict(vae_arch="conv", vae_latent_channels=4, vae_width=8, vae_epochs=1)
    fast = get_vae(make_context(digits, workdir=tmp_path, device="cpu", channels_last=True, show_progress=False,
                                **over), False)
    conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert fast.trained and conv.weight.is_contiguous(memory_format=torch.channels_last)
    plain = get_vae(make_context(digits, workdir=tmp_path, device="cpu", channels_last=False, show_progress=False,
                                 **over), False)
    assert not plain.trained and plain.key == fast.key
    x = digits.test.x[:32]
    with torch.no_grad():
        assert torch.allclose(fast.reconstruct(x), plain.reconstruct(x), atol=1e-5)


def test_channels_last_models_hand_back_contiguous_input_gradients_so_l2_pgd_runs(tmp_path, digits):
    """torchattacks' PGDL2 reshapes the input gradient with .view, which fails on the channels-last gradient of a
    channels-last model (shown below on a plain conversion); to_channels_last hands the gradient back contiguous,
    equal to the channels-first model's, for the classifier and through the conv VAE's encoder alike."""
    import copy

    import torchattacks

    from varmixup_bench.defenses.vae import build_vae
    from varmixup_bench.training.models import to_channels_last

    first = build_model("fast-cnn-half", (3, 16, 16), 10, [0.5] * 3, [0.25] * 3).eval()
    x, y = torch.rand(4, 3, 16, 16), torch.arange(4)
    bare = copy.deepcopy(first).to(memory_format=torch.channels_last)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        torchattacks.PGDL2(bare, eps=0.5, alpha=0.1, steps=2)(x, y)  # the library's bug, without the fix
    last = to_channels_last(bare, bare.normalize)
    adv = torchattacks.PGDL2(last, eps=0.5, alpha=0.1, steps=2)(x, y)
    assert float((adv - x).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5

    def input_grad(model, fn):
        xx = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(model, xx).square().sum(), xx)
        return grad

    g_first, g_last = (input_grad(m, lambda m, v: m(v)) for m in (first, last))
    assert g_last.is_contiguous() and torch.allclose(g_first, g_last, atol=1e-5)
    vae = build_vae("conv", (3, 16, 16), get_preset("cifar-regime")).eval()
    vae_last = copy.deepcopy(vae)
    to_channels_last(vae_last, vae_last.encoder)
    g_first, g_last = (input_grad(m, lambda m, v: m.encode_mean(v)) for m in (vae, vae_last))
    assert g_last.is_contiguous() and torch.allclose(g_first, g_last, atol=1e-4)


@pytest.mark.parametrize("total", [1, 2, 3, 4, 7, 100, 391])
def test_one_cycle_matches_torch_onecycle_and_survives_short_trainings(total):
    """The same learning rates as torch's OneCycleLR (linear, no momentum cycling) from 5 steps on, and for the
    trainings of 4 steps or fewer (where OneCycleLR divides by zero or degenerates) a decay from lr without
    warm-up."""
    def lrs(make):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
        sched = make(opt)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    ours = lrs(lambda opt: SCHEDULES["one-cycle"](opt, total, 0.2))
    assert all(np.isfinite(ours)) and max(ours) <= 0.2 + 1e-12 and min(ours) > 0
    if total <= 4:
        assert ours[0] == pytest.approx(0.2) and all(a >= b for a, b in zip(ours, ours[1:]))
    if 0.25 * total - 1 >= 1:
        ref = lrs(lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=total, pct_start=0.25,
                                                                   anneal_strategy="linear", cycle_momentum=False))
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_flip_crop_shifts_each_image_on_its_own_within_two_pixels():
    from varmixup_bench.training.loop import flip_crop

    x = torch.rand(300, 3, 12, 12)
    a, b = flip_crop(x, np.random.default_rng(0)), flip_crop(x, np.random.default_rng(0))
    assert torch.equal(a, b) and a.shape == x.shape
    found = set()
    for i in range(len(x)):  # each output is its image (or mirror image), shifted by some (dy, dx) in [-2, 2]^2
        padded = torch.nn.functional.pad(torch.stack([x[i], x[i].flip(-1)]), (2, 2, 2, 2), mode="reflect")
        hits = [(f, dy, dx) for f in (0, 1) for dy in range(5) for dx in range(5)
                if torch.equal(padded[f, :, dy:dy + 12, dx:dx + 12], a[i])]
        assert hits, i
        found.add(hits[0][1:])
    assert len(found) == 25  # every shift occurs: drawn per image, not one per batch
    assert set(AUGMENTS) >= {"none", "flip-translate", "flip-crop"}


def test_whiten_init_decorrelates_the_stems_patches_and_freezes_it(digits):
    from varmixup_bench.training.data import Split
    from varmixup_bench.training.init import apply_init, patch_whitening

    # known answer: the filters whiten a correlated Gaussian sample
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(4, 4, generator=g)
    sample = torch.randn(20000, 4, generator=g) @ mix
    filters, values = patch_whitening(sample, eps=0.0)
    out = (sample - sample.mean(0)) @ filters.T
    assert torch.allclose(torch.cov(out.T), torch.eye(4), atol=0.02) and bool((values[:-1] >= values[1:]).all())

    model = build_model("fast-cnn-half", (3, 16, 16), 10, [0.5] * 3, [0.25] * 3)
    train = Split(torch.rand(600, 3, 16, 16) ** 2, torch.randint(0, 10, (600,)))
    apply_init("whiten", model, train)
    stem = model.net[0]
    assert not stem.weight.requires_grad and stem.weight.shape == (24, 3, 2, 2)
    assert torch.allclose(stem.weight[:12], -stem.weight[12:])
    with torch.no_grad():
        z = torch.nn.functional.conv2d(model.normalize(train.x), stem.weight[:12]).permute(0, 2, 3, 1).reshape(-1, 12)
    assert torch.allclose(torch.cov(z.T), torch.eye(12), atol=0.05)
    with pytest.raises(BenchError, match="unknown init"):
        apply_init("orthogonal", model, train)
    gray = build_model("fast-cnn-half", (1, 8, 8), 10, [0.5], [0.25])  # 4-number patches: 8 filters, 16 zeros
    apply_init("whiten", gray, digits.train)
    w = gray.net[0].weight
    assert torch.count_nonzero(w[:8].flatten(1).abs().sum(1)) == 8 and torch.count_nonzero(w[8:]) == 0
