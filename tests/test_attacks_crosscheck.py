"""The harness's PGD agrees with ART's PGD and with a plain PyTorch loop; robust accuracy falls with eps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from varmixup_bench.attacks.pgd import PGD10
from varmixup_bench.dev.perf import plain_pgd_accuracy
from varmixup_bench.training.runner import attack_accuracy, evaluate

EPS, STEP = 24 / 255, 6 / 255  # a radius where digits accuracy is mid-range, so agreement means something


def art_pgd_accuracy(model, x, y, eps, step, steps):
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    clf = PyTorchClassifier(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    attack = ProjectedGradientDescent(clf, norm=np.inf, eps=eps, eps_step=step, max_iter=steps, num_random_init=1,
                                      batch_size=256, verbose=False)
    x_adv = attack.generate(x.numpy())
    assert np.abs(x_adv - x.numpy()).max() <= eps + 1e-6
    pred = clf.predict(x_adv).argmax(1)
    return 100.0 * float((pred == y.numpy()).mean())


def test_pgd_agrees_with_art_and_plain_loop(erm, digits):
    # all 1797 digits and three random starts each, so the comparison is not dominated by start noise
    x, y = torch.cat([digits.test.x, digits.train.x]), torch.cat([digits.test.y, digits.train.y])
    harness = attack_accuracy(erm, PGD10(EPS, STEP), x, y, trials=3, seed=0, batch_size=256,
                              show_progress=False)["robust"]
    plain = []
    for s in range(3):
        torch.manual_seed(s)
        plain.append(plain_pgd_accuracy(erm.classifier, x, y, EPS, STEP, 10, 256)[1])
    art = art_pgd_accuracy(erm.classifier, x, y, EPS, STEP, 10)
    clean = 100.0 * float((erm.predict(x) == y).float().mean())
    assert 10 < np.mean(harness) < clean - 10, "pick an eps where the attack bites but does not saturate"
    assert abs(np.mean(harness) - np.mean(plain)) <= 2.0
    assert abs(np.mean(harness) - art) <= 2.0


def test_robust_accuracy_non_increasing_in_eps_and_zero_at_half(erm, workdir):
    grid = [0.0, 4 / 255, 8 / 255, 16 / 255, 32 / 255, 64 / 255, 0.5]
    accs = [evaluate(erm, "pgd10", eps=e, step=max(e / 4, 1 / 255), record=False, show_progress=False)["robust_acc"]
            for e in grid]
    assert all(b <= a for a, b in zip(accs, accs[1:])), accs
    assert accs[0] == pytest.approx(evaluate(erm, "clean", record=False, show_progress=False)["clean_acc"])
    assert accs[-1] <= 1.0, accs


def test_pgd50_not_weaker_than_pgd10(erm):
    r10 = evaluate(erm, "pgd10", eps=EPS, step=STEP, record=False, show_progress=False)["robust_acc"]
    r50 = evaluate(erm, "pgd50", eps=EPS, step=STEP, record=False, show_progress=False)["robust_acc"]
    assert r50 <= r10 + 1.0


def test_attack_stays_in_eps_ball_and_unit_range(erm, digits):
    x, y = digits.test.x[:64], digits.test.y[:64]
    adv = PGD10(8 / 255, 2 / 255).perturb(erm.classifier, x, y)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
