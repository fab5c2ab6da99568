"""MI-OL: partners never from the predicted class, lambda_mi = 1 equals plain, batching is one forward."""
from __future__ import annotations

import torch

from varmixup_bench.config.presets import get_preset
from varmixup_bench.defenses.mi import MixupInference
from varmixup_bench.defenses.plain import Plain
from varmixup_bench.defenses.pool import OtherLabelPool


def test_pool_never_draws_predicted_class_and_covers_the_others():
    y = torch.tensor([0] * 5 + [1] * 3 + [2] * 7 + [3] * 1)
    x = torch.arange(len(y), dtype=torch.float32).view(-1, 1, 1, 1)
    pool = OtherLabelPool(x, y)
    pred = torch.tensor([0, 1, 2, 3] * 50)
    idx = pool.indices(pred, 200, torch.Generator().manual_seed(0))
    labels = pool.y[idx]
    assert not (labels == pred.unsqueeze(0)).any()
    for c in range(4):
        drawn = set(labels[:, pred == c].unique().tolist())
        assert drawn == {0, 1, 2, 3} - {c}
    # uniform over the other classes (Pang et al.'s MI-OL), not over examples (which would give class 2 7/15)
    freq = (labels[:, pred == 3] == 2).float().mean().item()
    assert abs(freq - 1 / 3) < 0.03


def test_mi_partners_exclude_the_models_prediction(mixup_mi, digits):
    rule: MixupInference = mixup_mi.rule
    x = digits.test.x[:50]
    with torch.no_grad():
        pred = mixup_mi.classifier(x).argmax(1)
    xs = rule.partners(mixup_mi.classifier, x, torch.Generator().manual_seed(0))
    assert xs.shape == (rule.n_mi, 50, *x.shape[1:])
    # identify each partner by exact pixel match in the pool
    flat_pool = rule.pool.x.flatten(1)
    for j in range(5):
        for i in range(50):
            match = (flat_pool == xs[j, i].flatten()).all(1).nonzero().flatten()
            assert len(match) >= 1
            assert (rule.pool.y[match] != pred[i]).all()


def test_mi_with_lambda_one_equals_plain(mixup_mi, digits):
    settings = get_preset("quick").with_overrides(lambda_mi_default=1.0)
    rule = MixupInference(settings, "mixup")
    rule.setup(mixup_mi.classifier, mixup_mi.info["context"])
    x = digits.test.x[:64]
    with torch.no_grad():
        p_mi = rule.forward(mixup_mi.classifier, x, torch.Generator().manual_seed(0))
        p_plain = Plain(settings, "mixup").forward(mixup_mi.classifier, x)
    torch.testing.assert_close(p_mi, p_plain, rtol=1e-5, atol=1e-6)


def _calls(defense, x, seed=0):
    calls = []
    handle = defense.classifier.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        p = defense.predict_proba(x, torch.Generator().manual_seed(seed))
    finally:
        handle.remove()
    return calls, p


def test_mi_is_batched_in_cache_sized_calls_and_a_probability(mixup_mi, digits, monkeypatch):
    from dataclasses import replace

    from varmixup_bench.defenses.base import CPU_CHUNK_ROWS

    calls, p = _calls(mixup_mi, digits.test.x[:40])  # on a CPU: the 1,200 mixes in calls of 256 rows
    assert calls == [40] + [CPU_CHUNK_ROWS] * 4 + [1200 - 4 * CPU_CHUNK_ROWS]
    torch.testing.assert_close(p.sum(1), torch.ones(40))
    assert mixup_mi.rule.lambda_mi == 0.5 and mixup_mi.rule.n_mi == 30
    monkeypatch.setattr(mixup_mi.rule, "settings", replace(mixup_mi.rule.settings, forward_rows=10**6))
    one, p_one = _calls(mixup_mi, digits.test.x[:40])
    assert one == [40, 40 * mixup_mi.rule.n_mi]  # prediction for the pool, then all mixes in one call
    torch.testing.assert_close(p, p_one, rtol=1e-5, atol=1e-6)  # same draws, same probabilities


def test_chunked_rule_forward_gives_the_one_call_values_and_gradients(mixup_mi, digits, monkeypatch):
    from dataclasses import replace

    x0, y = digits.test.x[:24], digits.test.y[:24]
    out = {}
    for rows in (7, 10**6):  # 7 does not divide 24 x 30: a ragged last chunk
        monkeypatch.setattr(mixup_mi.rule, "settings", replace(mixup_mi.rule.settings, forward_rows=rows))
        x = x0.clone().requires_grad_(True)
        p = mixup_mi.forward(x, torch.Generator().manual_seed(5))
        p[torch.arange(24), y].log().sum().backward()
        out[rows] = (p.detach(), x.grad)
    torch.testing.assert_close(out[7][0], out[10**6][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[7][1], out[10**6][1], rtol=1e-4, atol=1e-6)
    assert out[7][1].abs().sum() > 0


def test_chunk_rows_default_is_device_dependent():
    from varmixup_bench.defenses.base import CPU_CHUNK_ROWS, chunk_rows

    settings = get_preset("quick")
    assert chunk_rows(settings, torch.device("cpu")) == CPU_CHUNK_ROWS
    assert chunk_rows(settings, torch.device("cuda")) is None  # a GPU gets one large call
    from dataclasses import replace

    assert chunk_rows(replace(settings, forward_rows=64), torch.device("cuda")) == 64


def test_mi_batched_equals_per_sample(mixup_mi, digits):
    x = digits.test.x[:6]
    rule = mixup_mi.rule
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        pred = mixup_mi.classifier(x).argmax(1)
        idx = rule.pool.indices(pred, rule.n_mi, torch.Generator().manual_seed(3))
        batched = rule.forward(mixup_mi.classifier, x, g)
        for i in range(len(x)):
            mixes = 0.5 * x[i] + 0.5 * rule.pool.x[idx[:, i]]
            single = torch.softmax(mixup_mi.classifier(mixes), 1).mean(0)
            torch.testing.assert_close(batched[i], single, rtol=1e-4, atol=1e-5)
