"""Correct training and evaluation: every example drawn, corruption subsets, the default step, MI partners, the data's
cache key, threads, and randomised rules detected (each defect of the review has a test that failed before its fix;
its statistics are in test_statistics.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import varmixup_bench as bench
from varmixup_bench.training.data import Dataset, Split, stratified_subset


# ---- 2. training sees every example ----

def test_every_training_example_is_drawn_across_epochs():
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses.base import Recipe

    seen: set[int] = set()

    class Record(Recipe):
        name = "record"

        def loss(self, model, x, y, rng):
            seen.update(int(v) for v in x[:, 0, 0, 0].round())
            logits = model(x)
            return torch.nn.functional.cross_entropy(logits, y), logits

    n = 103  # 3 batches of 32 and a remainder of 7: the old permutation of range(96) never drew 96..102
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    train_classifier(Record(None), model, Split(x / 1.0, torch.arange(n) % 2), epochs=12, batch_size=32, lr=1e-3,
                     optimizer="adam", device=torch.device("cpu"), seed=0, show_progress=False)
    assert seen == set(range(n))


def test_training_code_version_was_bumped():
    from varmixup_bench.training.runner import TRAINING_CODE_VERSION

    assert TRAINING_CODE_VERSION >= 3  # cached models from the truncated-permutation loop retrain


# ---- 3. official CIFAR-C folders score the subset's own images ----

def test_official_corruption_folder_with_a_test_subset_scores_the_subset_images(erm, digits, tmp_path):
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.defenses.base import Defense

    # uint8-exact images, so the .npy copies are bit-identical to the clean test images
    q = lambda s: Split((s.x * 255).round() / 255, s.y, s.index)  # noqa: E731
    ds = Dataset("digits-u8", q(digits.train), q(digits.test), digits.classes)
    clean_u8 = (ds.test.x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()[..., 0]
    folder = tmp_path / "digits-C"
    folder.mkdir()
    from varmixup_bench.attacks.corruptions import CORRUPTIONS

    for name in CORRUPTIONS:
        np.save(folder / f"{name}.npy", np.concatenate([clean_u8] * 5))
    np.save(folder / "labels.npy", np.concatenate([ds.test.y.numpy().astype(np.uint8)] * 5))
    settings = get_preset("quick").with_overrides(corruptions_dir=str(folder))
    d = Defense.from_classifier(erm.classifier, ds, settings)
    for seed in (0, 1):
        sub = stratified_subset(ds.test, 120, seed, "test")
        assert not torch.equal(sub.index, torch.arange(120))  # a real subset, not the first images
        r = bench.evaluate(d, "corruptions", split=sub, record=False, show_progress=False)
        assert r["robust_acc"] == pytest.approx(r["clean_acc"], abs=1e-9)


# ---- 5. the default step scales with eps ----

def test_default_step_is_eps_over_four_and_erm_falls_to_zero_at_large_eps(erm, digits):
    sub = stratified_subset(digits.test, 120, 0, "test")
    recs = [bench.evaluate(erm, "pgd10", eps=e, split=sub, record=False, show_progress=False) for e in (8 / 255, 0.5)]
    assert recs[0]["step"] == pytest.approx(2 / 255)
    assert recs[1]["step"] == pytest.approx(0.125)
    assert recs[1]["robust_acc"] <= 2.0


def test_paper_preset_keeps_its_explicit_step_and_runs_spsa_on_1000_images():
    from varmixup_bench.attacks import ATTACKS
    from varmixup_bench.config.presets import get_preset

    paper = get_preset("paper")
    assert ATTACKS.get("pgd10")(8 / 255, paper.step, paper).step == pytest.approx(8 / 255)
    assert paper.spsa_subset == 1000
    assert get_preset("quick").step is None


def test_attacks_without_a_step_record_none(erm, digits):
    sub = stratified_subset(digits.test, 60, 0, "test")
    from dataclasses import replace

    small = dict(erm.info, settings=replace(erm.info["settings"], spsa_iters=2, spsa_samples=8))
    fast = type(erm)(erm.spec, erm.recipe, erm.rule, erm.classifier, erm.dataset, small)  # SPSA: 2 x 8 queries
    for attack in ("fgsm", "spsa", "clean"):
        r = bench.evaluate(fast, attack, split=sub, record=False, show_progress=False)
        assert r["step"] is None, attack


# ---- 6. MI-OL partners: class uniform, then example ----

def test_mi_partner_classes_are_uniform_on_an_imbalanced_pool():
    from varmixup_bench.defenses.pool import OtherLabelPool

    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    pool = OtherLabelPool(torch.arange(100.0).view(100, 1, 1, 1), y)
    idx = pool.indices(torch.zeros(20000, dtype=torch.long), 1, torch.Generator().manual_seed(0))
    counts = torch.bincount(pool.y[idx].flatten(), minlength=3).numpy() / idx.numel()
    assert counts[0] == 0
    # the reference draws class 1 and class 2 with probability 1/2 each (by examples it would be 0.6 / 0.4)
    assert abs(counts[1] - 0.5) < 0.02 and abs(counts[2] - 0.5) < 0.02
    # within a class, examples are uniform
    within = torch.bincount(idx.flatten()[pool.y[idx].flatten() == 2] - 80, minlength=20).numpy()
    assert within.min() > 0.6 * within.mean()


# ---- 8. the model cache keys the data's content, not its path ----

def _tiny_folder(root: Path) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("test", 4)):
        for c in ("a", "b"):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / split / c / f"{i}.png")
    return root


def test_relative_and_absolute_paths_train_once_and_record_one_dataset_id(tmp_path, monkeypatch, private_cache):
    folder = _tiny_folder(tmp_path / "tiny-set")
    monkeypatch.chdir(tmp_path)
    a = bench.train("erm", "imagefolder:tiny-set", workdir=tmp_path / "wd", epochs=1, show_progress=False)
    b = bench.train("erm", f"imagefolder:{folder.resolve()}", workdir=tmp_path / "wd", epochs=1, show_progress=False)
    assert a.info["trained"] and not b.info["trained"]
    assert a.info["config_hash"] == b.info["config_hash"]
    assert a.dataset.name == b.dataset.name == "imagefolder:tiny-set"


# ---- 15. threads ----

def test_threads_option_and_ray_worker_share(tmp_path):
    from varmixup_bench.runs.sweep import _with_threads
    from tests_cli_helper import bench_cli

    before = torch.get_num_threads()
    try:
        assert _with_threads(1, torch.get_num_threads) == 1
        code, _, err = bench_cli("run", "--defense", "erm", "--attack", "clean", "--epochs", "1", "--threads", "1",
                                 "--workdir", str(tmp_path), "--no-progress")
        assert code == 0 and "1 thread(s)" in err
        code, _, err = bench_cli("run", "--defense", "erm", "--threads", "0", "--workdir", str(tmp_path))
        assert code == 2 and "--threads" in err
    finally:
        torch.set_num_threads(before)


# ---- 16. a randomised plug-in rule is never called white-box ----

def _noisy_rule(declared: bool | None):
    from varmixup_bench.defenses.base import InferenceRule, softmax_probs

    body = {"name": "noisy", "forward": lambda self, clf, x, generator=None, n_samples=None:
            softmax_probs(clf(x) + 3 * torch.randn(x.shape[0], 10, generator=generator))}
    if declared is not None:
        body["stochastic"] = declared
    return type("Noisy", (InferenceRule,), body)


def test_undeclared_randomised_rule_is_measured_and_attacked_as_randomised(erm, digits):
    from varmixup_bench.defenses.base import Defense

    sub = stratified_subset(digits.test, 60, 0, "test")
    d = Defense.from_classifier(erm.classifier, digits, erm.info["settings"], "erm+noisy",
                                rule=_noisy_rule(None)(erm.info["settings"], "erm"))
    r = bench.evaluate(d, "pgd10", split=sub, record=False, show_progress=False)
    assert r["threat_model"] == "oblivious" and r["stochastic"] is True


def test_declared_deterministic_rule_that_varies_is_an_error(erm, digits):
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.defenses.base import Defense

    d = Defense.from_classifier(erm.classifier, digits, erm.info["settings"], "erm+noisy",
                                rule=_noisy_rule(False)(erm.info["settings"], "erm"))
    with pytest.raises(BenchError, match="'noisy' declares stochastic = False"):
        bench.evaluate(d, "pgd10", split=stratified_subset(digits.test, 60, 0, "t"), record=False, show_progress=False)


def test_deterministic_rule_stays_white_box(erm, digits):
    r = bench.evaluate(erm, "pgd10", split=stratified_subset(digits.test, 60, 0, "t"), record=False, show_progress=False)
    assert r["threat_model"] == "white-box" and r["stochastic"] is False
