"""Evaluation runs the model in eval mode, rejects non-[0,1] inputs, and records every field."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from varmixup_bench.attacks.pgd import PGD10
from varmixup_bench.training.data import Split
from varmixup_bench.core.errors import BenchError
from varmixup_bench.training.runner import attack_accuracy, evaluate
from varmixup_bench.results.store import RECORD_FIELDS, ResultStore


def test_model_is_in_eval_mode_during_attack_and_prediction(erm, digits):
    modes = []
    hooks = [m.register_forward_hook(lambda mod, i, o: modes.append(mod.training))
             for m in erm.classifier.modules() if isinstance(m, nn.BatchNorm2d)]
    erm.classifier.train()  # a careless caller left it in train mode
    try:
        attack_accuracy(erm, PGD10(8 / 255, 2 / 255), digits.test.x[:32], digits.test.y[:32], trials=1, seed=0,
                        batch_size=32, show_progress=False)
    finally:
        for h in hooks:
            h.remove()
    assert modes and not any(modes)
    assert erm.classifier.training  # the caller's mode is restored afterwards
    erm.classifier.eval()



class _Probe(PGD10):
    """An attack that calls the model exactly as the evaluation hands it over (no mode switch of its own, unlike
    torchattacks) and returns `out(x)`: what the evaluation does around an attack, seen from inside one."""

    def __init__(self, eps, out, calls):
        super().__init__(eps, eps / 4)
        self._out, self._calls = out, calls

    def perturb(self, model, x, y, targets=None):
        self._calls.append(model(x))
        return self._out(x)


def test_an_attack_runs_its_model_in_eval_mode_whatever_the_caller_left(erm, digits):
    modes, calls = [], []
    hooks = [m.register_forward_hook(lambda mod, i, o: modes.append(mod.training))
             for m in erm.classifier.modules() if isinstance(m, nn.BatchNorm2d)]
    erm.classifier.train()
    try:
        attack_accuracy(erm, _Probe(8 / 255, lambda x: x, calls), digits.test.x[:32], digits.test.y[:32], trials=1,
                        seed=0, batch_size=32, show_progress=False)
    finally:
        for h in hooks:
            h.remove()
        erm.classifier.eval()
    assert calls and modes and not any(modes)


def test_every_network_the_inference_rule_holds_is_in_eval_mode_during_an_attack(mixup_mi, digits, monkeypatch):
    """VarMI holds its VAE (BatchNorm inside): any network of the rule is put in eval mode for the attack, as F_w
    is, and left as the caller had it afterwards; here a BatchNorm the rule holds, left in train mode."""
    held = nn.BatchNorm1d(3).train()
    monkeypatch.setattr(mixup_mi.rule, "held", held, raising=False)
    assert held in mixup_mi.networks() and mixup_mi.networks()[0] is mixup_mi.classifier
    during = []

    class Look(_Probe):
        def perturb(self, model, x, y, targets=None):
            during.append([m.training for m in mixup_mi.networks()])
            return x

    attack_accuracy(mixup_mi, Look(8 / 255, None, []), digits.test.x[:16], digits.test.y[:16], trials=1, seed=0,
                    batch_size=16, show_progress=False)
    assert during and not any(any(modes) for modes in during)
    assert held.training  # restored



def test_eval_mode_restores_every_submodule_as_it_was_and_yields_the_model():
    from varmixup_bench.defenses.base import eval_mode

    inner = nn.BatchNorm1d(3)
    outer = nn.Sequential(nn.Linear(3, 3), inner, nn.Dropout(0.5))
    outer.train()
    inner.eval()  # left half in train mode by its owner
    held = nn.Sequential(inner)  # the same BatchNorm held by a second network
    with eval_mode(outer) as m:
        assert m is outer and not any(x.training for x in outer.modules())
    with eval_mode(outer, held) as both:
        assert both == (outer, held) and not any(x.training for x in outer.modules())
    assert outer.training and outer[0].training and outer[2].training and not inner.training

@pytest.mark.parametrize("out, message", [
    (lambda x: (x + 4 / 255).clamp(0, 1), "left the Linf eps-ball"),  # twice the radius of 2/255
    (lambda x: x - 1 / 255, r"outside \[0,1\]"),  # in the ball, below 0 where a digit pixel is black
])
def test_an_attack_that_leaves_its_ball_or_the_pixel_range_is_refused(erm, digits, out, message):
    x, y = digits.test.x[:32], digits.test.y[:32]
    assert float(x.min()) == 0.0
    with pytest.raises(RuntimeError, match=message):
        attack_accuracy(erm, _Probe(2 / 255, out, []), x, y, trials=1, seed=0, batch_size=32, show_progress=False)

def test_batchnorm_statistics_untouched_by_evaluation(erm, digits):
    before = {k: v.clone() for k, v in erm.classifier.state_dict().items()}
    evaluate(erm, "pgd10", record=False, show_progress=False)
    for k, v in erm.classifier.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("transform", [lambda x: x * 2 - 1, lambda x: (x - 0.5) / 0.25, lambda x: x * 255])
def test_inputs_outside_unit_range_are_rejected(erm, digits, transform):
    bad = Split(transform(digits.test.x[:16]), digits.test.y[:16])
    with pytest.raises(BenchError, match=r"\[0,1\] images"):
        evaluate(erm, "pgd10", split=bad, record=False, show_progress=False)


def test_record_has_every_field_and_is_stored(erm, workdir):
    store = ResultStore(workdir)
    n_before = len(store.records())
    rec = evaluate(erm, "pgd10", trials=2, show_progress=False)
    assert set(RECORD_FIELDS) <= set(rec)
    assert rec["threat_model"] == "white-box" and rec["trials"] == 2 and rec["n_examples"] == 360
    assert rec["step"] == pytest.approx(8 / 255) and rec["eps"] == pytest.approx(32 / 255)  # digits' default, step eps/4
    assert 0 <= rec["robust_acc"] <= rec["clean_acc"] <= 100
    assert rec["versions"]["torch"].startswith("2.")
    assert len(store.records()) == n_before + 1 and store.records()[-1]["eval_hash"] == rec["eval_hash"]


def test_stochastic_defense_is_attacked_obliviously_and_says_so(mixup_mi):
    rec = evaluate(mixup_mi, "pgd10", trials=2, record=False, show_progress=False)
    assert rec["threat_model"] == "oblivious"
    assert rec["inference_config"] == {"lambda_mi": 0.5, "n_mi": 30}


def test_trials_are_reproducible_under_a_seed(mixup_mi):
    a = evaluate(mixup_mi, "pgd10", trials=2, seed=5, record=False, show_progress=False)
    b = evaluate(mixup_mi, "pgd10", trials=2, seed=5, record=False, show_progress=False)
    assert (a["clean_acc"], a["robust_acc"], a["robust_acc_std"]) == (b["clean_acc"], b["robust_acc"], b["robust_acc_std"])
