"""The fast training regime's pieces: optimizer, one-cycle schedule (resumed where it stopped), flip-translate
augmentation, label smoothing in every recipe's loss, the fast-cnn model, and keys that change only when used."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

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
    assert set(AUGMENTS) == {"none", "flip-translate"}


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
        logits = model(x)
        assert losses[1] == pytest.approx(float(F.cross_entropy(logits, y, label_smoothing=0.3)), rel=1e-5)


def test_regime_preset_checks_and_keys(tmp_path, digits):
    from varmixup_bench.training.runner import defense_key, make_context

    regime = get_preset("cifar-regime")
    assert regime.model == "fast-cnn" and regime.augment == "flip-translate" and regime.vae_arch == "conv"
    for bad in ({"lr_schedule": "cosine"}, {"augment": "cutout"}, {"optimizer": "lion"}, {"label_smoothing": 1.0}):
        with pytest.raises(BenchError):
            get_preset(None).with_overrides(**bad).check()
    plain = defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu"))
    smoothed = defense_key("erm", make_context(digits, workdir=tmp_path, device="cpu", label_smoothing=0.1))
    assert plain != smoothed


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

    class Stop(Exception):
        pass

    def stop_after_2(epoch):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train_classifier(recipe, part, digits.train, epochs=4, checkpoint_dir=tmp_path / "ck", on_epoch_end=stop_after_2,
                         **kw)
    train_classifier(recipe, part, digits.train, epochs=4, checkpoint_dir=tmp_path / "ck", **kw)
    for a, b in zip(full.state_dict().values(), part.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)
