"""Models, the mixup recipe, the training loop and the safetensors weight cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from varmixup_bench.training.cache import WeightCache
from varmixup_bench.core.errors import BenchError
from varmixup_bench.training.models import build_model
from varmixup_bench.defenses.mixup import mix_pairs, mixed_cross_entropy


@pytest.mark.parametrize("name, params_m", [("resnet18", 11.17), ("resnet34", 21.28)])
def test_cifar_resnets_have_cifar_stem(name, params_m):
    m = build_model(name, (3, 32, 32), 10, [0.5] * 3, [0.25] * 3)
    assert m.net.conv1.kernel_size == (3, 3) and m.net.conv1.stride == (1, 1)
    assert isinstance(m.net.maxpool, nn.Identity)
    assert sum(p.numel() for p in m.parameters()) / 1e6 == pytest.approx(params_m, abs=0.05)
    assert m(torch.rand(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 64, 64)])
def test_small_cnn_sizes_from_shape(shape):
    m = build_model("small-cnn", shape, 7, [0.0] * shape[0], [1.0] * shape[0])
    assert m(torch.rand(3, *shape)).shape == (3, 7)


def test_normalisation_lives_in_the_model():
    m = build_model("small-cnn", (3, 8, 8), 2, [0.5, 0.4, 0.3], [0.2, 0.2, 0.2])
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(m.normalize(x)[0, 1], (x[0, 1] - 0.4) / 0.2)


def test_mixup_known_answer():
    rng = np.random.default_rng(0)
    x = torch.rand(6, 1, 2, 2)
    mixed, perm, lam = mix_pairs(x, rng, 1.0)
    ref = np.random.default_rng(0)
    lam_ref = ref.beta(1.0, 1.0)
    assert lam == pytest.approx(lam_ref)
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[perm])
    logits = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    soft = lam * nn.functional.one_hot(y, 3) + (1 - lam) * nn.functional.one_hot(y[perm], 3)
    expect = -(soft * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(mixed_cross_entropy(logits, y, perm, lam), expect)


def test_trained_erm_is_accurate_and_mixup_too(erm, mixup_mi, digits):
    for d in (erm,):
        acc = (d.predict(digits.test.x) == digits.test.y).float().mean().item()
        assert acc > 0.9
    assert erm.info["history"][-1]["loss"] < erm.info["history"][0]["loss"]
    base = (mixup_mi.classifier(digits.test.x).argmax(1) == digits.test.y).float().mean().item()
    assert base > 0.9


def test_weight_cache_roundtrip_and_key_check(tmp_path, private_cache):
    cache = WeightCache(tmp_path)
    m = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.3])
    cache.save("abc", m, {"x": 1})
    m2 = build_model("small-cnn", (1, 8, 8), 10, [0.0], [1.0])
    assert cache.load("abc", m2)["x"] == 1
    for (k, v), (_, v2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(v, v2), k
    (tmp_path / "models" / "abc").rename(tmp_path / "models" / "xyz")
    with pytest.raises(BenchError, match="do not belong to key xyz"):
        cache.load("xyz", m2)


def test_nan_loss_stops_training_with_epoch_and_recipe(digits):
    from varmixup_bench.training.data import Split
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses.erm import ERM

    m = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.3])
    x = digits.train.x[:64].clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(BenchError, match=r"training erm: loss is nan in epoch 1"):
        train_classifier(ERM(get_preset("quick")), m, Split(x, digits.train.y[:64]), epochs=1, batch_size=64,
                         lr=1e-3, optimizer="adam", device=torch.device("cpu"), seed=0, show_progress=False)


def test_training_is_reproducible_under_a_seed(digits, tmp_path, private_cache):
    import varmixup_bench as bench

    a = bench.train("erm", digits, workdir=tmp_path / "a", epochs=1, show_progress=False)
    b = bench.train("erm", digits, workdir=tmp_path / "b", epochs=1, show_progress=False)
    assert a.info["config_hash"] == b.info["config_hash"]
    for (k, v), (_, w) in zip(a.classifier.state_dict().items(), b.classifier.state_dict().items()):
        assert torch.equal(v, w), k


def test_bench_cache_dir_holds_the_weights_of_every_workdir(digits, tmp_path, monkeypatch):
    import varmixup_bench as bench

    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    a = bench.train("erm", digits, workdir=tmp_path / "a", epochs=1, show_progress=False)
    b = bench.train("erm", digits, workdir=tmp_path / "b", epochs=1, show_progress=False)
    assert a.info["trained"] and not b.info["trained"]
    assert (tmp_path / "cache" / "models" / a.info["config_hash"] / "weights.safetensors").exists()
    assert not list(tmp_path.glob("[ab]/models/*/weights.safetensors"))


class _Stop(Exception):
    pass


def _train(digits, ckpt, epochs=3, stop_after=None, amp=False):
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses.mixup import Mixup

    torch.manual_seed(0)
    m = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.3])

    def stop(epoch):
        if epoch == stop_after:
            raise _Stop

    hist = train_classifier(Mixup(get_preset("quick")), m, digits.train, epochs=epochs, batch_size=128, lr=1e-3,
                            optimizer="adam", device=torch.device("cpu"), seed=0, show_progress=False, amp=amp,
                            checkpoint_dir=ckpt, on_epoch_end=stop)
    return m, hist


def test_interrupted_training_resumes_from_its_last_epoch_with_identical_weights(digits, tmp_path):
    ref, ref_hist = _train(digits, tmp_path / "ref")
    with pytest.raises(_Stop):
        _train(digits, tmp_path / "run", stop_after=2)
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()
    resumed, hist = _train(digits, tmp_path / "run")
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in ref_hist])
    # every epoch keeps its own seconds across the resume: the sweep's budget table counts the epochs run before
    # a session's end
    assert all(h["seconds"] > 0 for h in hist)
    for (k, v), (_, w) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(v, w, msg=k)
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()  # removed once training completed


def test_bf16_autocast_trains_on_cpu(digits, tmp_path):
    """With amp the convolutions run in bfloat16 during training (weights stay fp32), the loss falls, and the
    run differs from the fp32 one only by bfloat16's rounding."""
    seen = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda mod, i, o: seen.append(o.dtype) if isinstance(mod, torch.nn.Conv2d) else None)
    try:
        m, hist = _train(digits, None, epochs=2, amp=True)
    finally:
        hook.remove()
    assert seen and set(seen) == {torch.bfloat16}
    assert all(np.isfinite(h["loss"]) for h in hist) and hist[-1]["loss"] < hist[0]["loss"]
    assert next(m.parameters()).dtype == torch.float32  # autocast only, weights stay fp32
    _, fp32 = _train(digits, None, epochs=2)
    assert [h["loss"] for h in hist] != [h["loss"] for h in fp32]
    assert all(abs(a["loss"] - b["loss"]) < 0.1 * b["loss"] for a, b in zip(hist, fp32))


def test_amp_is_part_of_the_cache_key(digits, tmp_path):
    import varmixup_bench as bench

    a = bench.train("erm", digits, workdir=tmp_path, epochs=1, show_progress=False)
    b = bench.train("erm", digits, workdir=tmp_path, epochs=1, show_progress=False, amp=True)
    assert a.info["config_hash"] != b.info["config_hash"] and b.info["config"]["amp"] is True


def test_large_training_sets_stream_through_a_dataloader(digits):
    from varmixup_bench.training.loop import batches

    perm = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(0))
    on_dev = list(batches(digits.train, 100, perm, torch.device("cpu"), (digits.train.x, digits.train.y), 0))
    streamed = list(batches(digits.train, 100, perm, torch.device("cpu"), None, 0))
    assert len(on_dev) == len(streamed) == 14  # 1437 images: 14 full batches of 100, the remainder dropped
    for (x1, y1), (x2, y2) in zip(on_dev, streamed):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_epoch_history_keeps_cpu_seconds_that_a_wait_does_not_inflate(digits):
    """Each epoch records wall and CPU seconds: time spent waiting (a paused or starved run) raises the wall figure
    only, so a budget read from the history can tell the two apart."""
    import time

    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.defenses.erm import ERM
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.training.models import build_model

    class WaitingERM(ERM):
        def loss(self, model, x, y, rng):
            time.sleep(0.5)  # no CPU used: like a SIGSTOP or a busy machine
            return super().loss(model, x, y, rng)

    # One intra-op thread: with more, OpenMP's idle workers spin through the sleep for up to KMP_BLOCKTIME (200 ms)
    # each and burn real CPU, which a process clock rightly counts (CI failed on that with more cores than here).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = build_model("small-cnn", (1, 8, 8), 10, [0.5], [0.25])
        (row,) = train_classifier(WaitingERM(get_preset(None)), model, digits.train, epochs=1, batch_size=512,
                                  lr=1e-3, optimizer="adam", device=torch.device("cpu"), seed=0, show_progress=False)
    finally:
        torch.set_num_threads(threads)
    waited = 0.5 * (len(digits.train) // 512)
    assert row["seconds"] >= waited and row["cpu_seconds"] < row["seconds"] - 0.8 * waited
