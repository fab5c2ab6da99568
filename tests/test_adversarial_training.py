"""AT, TRADES, IAT, Manifold Mixup and VarIAT: known answers, and AT's robustness against ERM and ART."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import varmixup_bench as bench
from varmixup_bench.training.models import build_model
from varmixup_bench.config.presets import get_preset
from varmixup_bench.defenses import Defense
from varmixup_bench.defenses.adversarial import IAT, TRADES, iat_loss, trades_loss
from varmixup_bench.defenses.manifold import ManifoldMixup, mixable_layers
from varmixup_bench.defenses.mixup import mix_pairs, mixed_cross_entropy

AT_EPS = 32 / 255  # 8/255 barely moves an 8x8 digits model, so robustness is compared at a radius that bites
AT_OPTS = dict(train_eps=AT_EPS, train_step=8 / 255, train_steps=5)


@pytest.fixture(scope="module")
def at_model(workdir, digits):
    return bench.train("at", digits, workdir=workdir, epochs=10, show_progress=False, **AT_OPTS)


def _pgd_acc(defense, eps):
    return bench.evaluate(defense, "pgd10", eps=eps, step=eps / 4, record=False, show_progress=False)["robust_acc"]


def test_at_is_markedly_more_robust_than_erm(at_model, erm):
    assert _pgd_acc(at_model, AT_EPS) > _pgd_acc(erm, AT_EPS) + 25


def test_at_matches_art_madry_trainer(at_model, digits):
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(0)
    mean, std = digits.channel_stats()
    model = build_model("small-cnn", digits.image_shape, 10, mean, std)
    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=digits.image_shape,
                            nb_classes=10, optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
                            clip_values=(0.0, 1.0), device_type="cpu")
    # ART's defaults are on a 0-255 scale (eps=8, eps_step=2): every value is passed explicitly on [0,1]
    trainer = AdversarialTrainerMadryPGD(clf, nb_epochs=10, batch_size=128, eps=AT_EPS, eps_step=8 / 255, max_iter=5,
                                         num_random_init=1)
    trainer.fit(digits.train.x.numpy(), np.eye(10)[digits.train.y.numpy()])
    model.eval()
    art_defense = Defense.from_classifier(model, digits, get_preset("quick"), spec="art-madry-at")
    ours, theirs = _pgd_acc(at_model, AT_EPS), _pgd_acc(art_defense, AT_EPS)
    assert abs(ours - theirs) <= 8, (ours, theirs)


def test_trades_with_beta_zero_is_erm_and_kl_is_nonnegative():
    torch.manual_seed(0)
    clean, adv, y = torch.randn(16, 10), torch.randn(16, 10), torch.randint(0, 10, (16,))
    total, ce, kl = trades_loss(clean, adv, y, beta=0.0)
    torch.testing.assert_close(total, F.cross_entropy(clean, y))
    for _ in range(20):
        a, b = torch.randn(8, 5) * 3, torch.randn(8, 5) * 3
        assert trades_loss(a, b, torch.zeros(8, dtype=torch.long), 6.0)[2] >= 0
    assert trades_loss(clean, clean, y, 6.0)[2].abs() < 1e-6
    _, _, kl_manual = trades_loss(clean, adv, y, 1.0)
    p = clean.softmax(1)
    torch.testing.assert_close(kl_manual, (p * (p.log() - adv.log_softmax(1))).sum(1).mean())


def test_trades_recipe_with_beta_zero_equals_erm_loss(digits):
    settings = get_preset("quick").with_overrides(trades_beta=0.0, train_steps=2)
    model = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.3]).train()
    x, y = digits.train.x[:32], digits.train.y[:32]
    loss, logits = TRADES(settings).loss(model, x, y, np.random.default_rng(0))
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y))


def test_iat_loss_is_mean_of_clean_and_adversarial_mixup_losses(digits):
    model = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.3]).eval()
    x, y = digits.train.x[:32], digits.train.y[:32]
    x_adv = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    loss, _ = iat_loss(model, x, x_adv, y, np.random.default_rng(3), eta=1.0)
    rng = np.random.default_rng(3)
    m1, p1, l1 = mix_pairs(x, rng, 1.0)
    m2, p2, l2 = mix_pairs(x_adv, rng, 1.0)
    expect = 0.5 * (mixed_cross_entropy(model(m1), y, p1, l1) + mixed_cross_entropy(model(m2), y, p2, l2))
    torch.testing.assert_close(loss, expect)
    assert IAT(get_preset("quick")).config()["eta"] == 1.0


def test_iat_mi_uses_lambda_06_by_default():
    p = get_preset("quick")
    assert p.lambda_mi_for("iat") == 0.6 and p.lambda_mi_for("mixup") == 0.5
    assert get_preset("paper").lambda_mi_for("iat") == 0.6


def test_manifold_mixup_mixes_a_hidden_layer(digits):
    model = build_model("small-cnn", (3, 32, 32), 10, [0.5] * 3, [0.3] * 3)
    layers = mixable_layers(model)
    assert layers[0] is None and len(layers) == 3 and all(isinstance(m, torch.nn.MaxPool2d) for m in layers[1:])
    resnet = build_model("resnet18", (3, 32, 32), 10, [0.5] * 3, [0.3] * 3)
    assert mixable_layers(resnet)[1:] == [resnet.net.layer1, resnet.net.layer2]
    settings = get_preset("quick")
    recipe = ManifoldMixup(settings)
    model.eval()
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    seen = set()
    for seed in range(12):
        # the recipe's draws, repeated here: the layer, lambda ~ Beta(eta, eta) and the partner permutation
        mine = np.random.default_rng(seed)
        k, lam = int(mine.integers(3)), float(mine.beta(recipe.eta, recipe.eta))
        perm = torch.as_tensor(mine.permutation(8))
        input_mixed = model(lam * x + (1 - lam) * x[perm])
        if k == 0:
            expect = input_mixed
        else:  # the mix of that stage's output, which is not the mix of the inputs
            handle = layers[k].register_forward_hook(lambda m, i, o: lam * o + (1 - lam) * o[perm])
            expect = model(x)
            handle.remove()
            assert not torch.allclose(expect, input_mixed, atol=1e-4)
        loss, logits = recipe.loss(model, x, y, np.random.default_rng(seed))
        torch.testing.assert_close(logits, expect)
        torch.testing.assert_close(loss, mixed_cross_entropy(expect, y, perm, lam, settings.label_smoothing))
        seen.add(k)
    assert seen == {0, 1, 2}
    assert not layers[1]._forward_hooks  # the mixing hook is removed after each batch


def test_variat_trains_and_is_keyed_with_its_vae(workdir, digits):
    d = bench.train("variat", digits, workdir=workdir, epochs=1, vae_epochs=2, train_steps=2, show_progress=False)
    cfg = d.info["config"]["recipe_config"]
    assert cfg["vae"]["adversarial"] is False and cfg["train_steps"] == 2
    assert np.isfinite(d.info["history"][-1]["loss"])
