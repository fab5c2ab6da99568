"""Corruptions, ECE and local linearity: invariants and known answers."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import varmixup_bench as bench
from varmixup_bench.attacks.corruptions import CORRUPTIONS, corrupt_batch
from varmixup_bench.attacks.metrics import expected_calibration_error, load_official_corruptions, local_linearity


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_each_corruption_keeps_shape_range_and_grows_with_severity(name, digits):
    x = digits.test.x[:32]
    c1, c5 = corrupt_batch(x, name, 1, 0), corrupt_batch(x, name, 5, 0)
    assert c5.shape == x.shape and c5.dtype == torch.float32
    assert c5.min() >= 0 and c5.max() <= 1
    assert (c5 - x).abs().mean() > (c1 - x).abs().mean()


def test_fifteen_corruptions_on_rgb_images():
    assert len(CORRUPTIONS) == 15
    x = torch.rand(2, 3, 32, 32) * 0.5 + 0.25
    for name in CORRUPTIONS:
        y = corrupt_batch(x, name, 3, 1)
        assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
        assert (y - x).abs().mean() > 1e-3, name  # each one changes the images
    assert torch.equal(corrupt_batch(x, "fog", 2, 7), corrupt_batch(x, "fog", 2, 7))  # seeded
    # channels stay channels: contrast at severity 3 (c = 0.4) pulls each channel to its own mean (make_cifar_c)
    means = x.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(corrupt_batch(x, "contrast", 3, 1), ((x - means) * 0.4 + means).clamp(0, 1),
                               atol=1 / 255, rtol=0)


def test_upstream_imagecorruptions_is_broken_here_which_is_why_it_is_not_called():
    code = ("import numpy as np\nfrom imagecorruptions import corrupt\n"
            "corrupt(np.zeros((32, 32, 3), np.uint8), corruption_name='glass_blur', severity=1)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0
    from importlib.machinery import PathFinder

    # the installed packages, not sys.modules: robustbench_compat may have put its pkg_resources shim there
    if PathFinder.find_spec("pkg_resources") is None:  # setuptools >= 81 (docs/known-problems.md)
        assert "No module named 'pkg_resources'" in res.stderr  # it fails there, before glass_blur could


def test_official_npy_folder_is_read(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, (5 * 4, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "fog.npy", data)
    np.save(tmp_path / "labels.npy", np.tile(np.arange(4), 5).astype(np.uint8))
    x, y = load_official_corruptions(tmp_path, "fog", 3)
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(x[1], torch.from_numpy(data[9]).permute(2, 0, 1).float() / 255)


def test_corruptions_record_has_mean_and_breakdown(erm, digits):
    from varmixup_bench.training.data import Split

    r = bench.evaluate(erm, "corruptions", split=Split(digits.test.x[:40], digits.test.y[:40]), record=False,
                       show_progress=False)
    assert set(r["details"]) == set(CORRUPTIONS) and all(len(v) == 5 for v in r["details"].values())
    assert r["robust_acc"] == pytest.approx(np.mean([a for v in r["details"].values() for a in v]))
    assert r["threat_model"] == "none" and r["robust_acc"] < r["clean_acc"]


def test_corruptions_per_image_outcomes_reproduce_the_record_and_pair_two_predictors(erm, mixup_mi, digits):
    """Each image's share of the 75 conditions it is classified under correctly: their mean is the record's
    robust accuracy, and two predictors on the same images compare paired (a z test on the per-image
    differences, never McNemar's test of single 0/1 outcomes), with a smaller error than the unpaired test."""
    from varmixup_bench.results.stats import compare_records, decode_per_image, unpaired_test
    from varmixup_bench.training.data import Split

    split = Split(digits.test.x[:60], digits.test.y[:60], torch.arange(100, 160))
    a, b = (bench.evaluate(d, "corruptions", split=split, record=False, show_progress=False) for d in (erm, mixup_mi))
    pa = decode_per_image(a["per_image"])
    assert pa["conditions"] == 75 and list(pa["idx"]) == list(range(100, 160))
    assert 100 * pa["robust"].mean() == pytest.approx(a["robust_acc"])
    assert 100 * pa["clean"].mean() == pytest.approx(a["clean_acc"])
    assert np.allclose(pa["robust"] * 75, np.rint(pa["robust"] * 75))  # whole counts of conditions
    cmp = compare_records(a, b)
    d = decode_per_image(b["per_image"])["robust"] - pa["robust"]
    assert cmp.paired and cmp.n == 60
    assert cmp.diff == pytest.approx(a["robust_acc"] - b["robust_acc"])
    assert cmp.se == pytest.approx(100 * d.std(ddof=1) / np.sqrt(60))
    apart = unpaired_test(a["robust_acc"], 60, 0.0, 1, b["robust_acc"], 60, 0.0, 1)
    assert cmp.se < apart.se


def test_ece_known_answers():
    g = torch.Generator().manual_seed(0)
    n = 20000
    conf = torch.rand(n, generator=g) * 0.5 + 0.5
    correct = torch.rand(n, generator=g) < conf  # accuracy equals confidence: perfectly calibrated
    labels = torch.where(correct, torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long))
    probs = torch.stack([conf, 1 - conf], 1)
    ece, _ = expected_calibration_error(probs, labels)
    assert ece < 1.5
    over = torch.stack([torch.full((n,), 0.99), torch.full((n,), 0.01)], 1)
    labels_half = (torch.arange(n) % 2).long()  # 50 % accurate at 99 % confidence
    ece_over, _ = expected_calibration_error(over, labels_half)
    assert ece_over == pytest.approx(49.0, abs=0.1)


def test_ece_record_and_reliability_png(erm, workdir):
    from PIL import Image

    r = bench.evaluate(erm, "ece", record=False, show_progress=False)
    assert r["metric"] == "ece_percent"
    # the record's ECE and accuracy are those of the defended predictor's probabilities on the test images
    with torch.no_grad():
        probs = erm.predict_proba(erm.dataset.test.x.to(erm.device), None).cpu()
    ece, bins = expected_calibration_error(probs, erm.dataset.test.y)
    assert r["value"] == pytest.approx(ece, abs=1e-6)
    assert r["clean_acc"] == pytest.approx(100 * float((probs.argmax(1) == erm.dataset.test.y).float().mean()))
    assert sum(count for *_, count in bins) == len(erm.dataset.test) == r["n_examples"]
    assert Image.open(r["details"]["figure"]).size[0] > 100


def test_local_linearity_zero_at_zero_and_growing(erm, digits):
    x, y = digits.test.x[:64], digits.test.y[:64]
    torch.manual_seed(0)
    g = [float(local_linearity(erm.classifier, x, y, e).mean()) for e in (0.0, 2 / 255, 8 / 255, 32 / 255)]
    assert g[0] == 0.0 and g[1] < g[2] < g[3]
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    # cross-entropy of a linear model is not linear, but it is far flatter than the trained CNN's
    assert float(local_linearity(linear, x, y, 8 / 255).mean()) < g[2]
