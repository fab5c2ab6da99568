"""Evaluation rigor for randomised defenses: attack specs, batched EOT, restarts and the worst case over draws,
APGD / surrogate / transfer attacks, convergence grids, the not-converged diagnostic and `bench report`."""
from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import varmixup_bench as bench
from varmixup_bench.training.data import Split
from varmixup_bench.core.errors import BenchError
from tests_cli_helper import bench_cli


@pytest.fixture(scope="module")
def sub(digits):
    return Split(digits.test.x[:96], digits.test.y[:96], digits.test.index[:96])


def _run(defense, attack, split, eps=24 / 255, **kw):
    return bench.evaluate(defense, attack, eps=eps, record=False, show_progress=False, split=split, **kw)


# ---- attack specs ----


@pytest.mark.parametrize("spec", ["transfer:erm", "torchattacks:FGSM", "art:FastGradientMethod",
                                  "adaptive:torchattacks:PGD(eot=2)"])
def test_a_family_spec_is_known_as_the_first_attack_of_a_fresh_process(spec):
    """A family's factory is registered by its module; the registry imports it on first use (a fresh process whose
    first attack was `transfer:erm`, as in `bench run --attack transfer:erm`, was told it is unknown)."""
    import subprocess
    import sys

    code = ("import sys; from varmixup_bench.attacks.spec import attack_class; "
            f"cls = attack_class({spec!r}); print(cls.__name__, cls.kind)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    name, kind = out.stdout.split()
    family = spec.split(":")[0]
    expected = {"transfer": ("Transfer", "transfer"), "adaptive": ("Adaptive_torchattacks_PGD", "adaptive-gradient")}
    assert (name, kind) == expected[family] if family in expected else name == f"Catalog_{spec.replace(':', '_')}"

def test_attack_specs_are_canonical_and_validated():
    from varmixup_bench.attacks.spec import build_attack, parse_attack_spec, validate_attack

    assert str(parse_attack_spec("adaptive-pgd( eot=8 , steps=20)")) == "adaptive-pgd(eot=8,steps=20)"
    atk = build_attack("adaptive-pgd(steps=20,eot=8,restarts=2)", 8 / 255, None, __import__("varmixup_bench.config.presets", fromlist=["get_preset"]).get_preset("quick"))
    assert (atk.steps, atk.eot, atk.restarts, atk.spec) == (20, 8, 2, "adaptive-pgd(eot=8,restarts=2,steps=20)")
    assert atk.config()["steps"] == 20 and atk.config()["eot"] == 8
    assert build_attack("pgd50", 8 / 255, None, None).steps == 50  # the named budgets keep their own steps
    with pytest.raises(BenchError, match="takes no keyword 'stepz'; its keywords: eot, restarts, steps"):
        validate_attack("adaptive-pgd(stepz=3)")
    with pytest.raises(BenchError, match="steps must be an integer"):
        validate_attack("pgd(steps=2.5)")
    with pytest.raises(BenchError, match="unknown attack family 'transfr'"):
        validate_attack("transfr:erm")
    with pytest.raises(BenchError, match="unknown attack 'pgd100'"):
        validate_attack("pgd100")


# ---- batched EOT ----

class FixedDraws(nn.Module):
    """A randomised model whose draw for the k-th input row it ever sees is noise[k]: the looped and the batched
    EOT forms see exactly the same draws in the same order."""

    def __init__(self, noise: torch.Tensor) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(noise[0].numel(), 5)
        self.noise, self.used = noise, 0

    def forward(self, x):
        n = len(x)
        z = x + self.noise[self.used:self.used + n]
        self.used += n
        return F.log_softmax(self.lin(z.flatten(1)), dim=1)


def test_batched_eot_gives_the_looped_gradient_on_fixed_draws():
    from varmixup_bench.attacks.eot import eot_gradient

    torch.manual_seed(1)
    x, y, draws = torch.rand(6, 1, 4, 4), torch.randint(0, 5, (6,)), 8
    noise = torch.randn(6 * draws, 1, 4, 4)
    looped = eot_gradient(FixedDraws(noise), x, y, draws, looped=True)
    batched = eot_gradient(FixedDraws(noise), x, y, draws)
    chunked = eot_gradient(FixedDraws(noise), x, y, draws, max_rows=18)  # 3 draws per call, then 3, then 2
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(chunked, looped, rtol=1e-5, atol=1e-7)
    # and it is the gradient of the mean loss over those draws, computed by hand
    xr = x.repeat(draws, 1, 1, 1).requires_grad_(True)
    m = FixedDraws(noise)
    F.nll_loss(m(xr), y.repeat(draws), reduction="sum").backward()
    torch.testing.assert_close(batched * len(x), xr.grad.view(draws, *x.shape).sum(0), rtol=1e-5, atol=1e-6)


def test_batched_eot_draws_each_row_independently_on_mi(mixup_mi, sub):
    from varmixup_bench.attacks.evaluation import DefendedModel

    calls = []
    h = mixup_mi.classifier.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    try:
        from varmixup_bench.attacks.eot import eot_gradient

        g = eot_gradient(DefendedModel(mixup_mi, torch.Generator().manual_seed(0)), sub.x[:16], sub.y[:16], 8)
    finally:
        h.remove()
    assert calls == [128, 128]  # one prediction pass and one mixed pass over B·N_A = 16·8 rows, not 8 calls
    assert g.abs().sum() > 0


# ---- worst case over draws, restarts ----

def test_worst_case_is_below_the_mean_for_mi_and_equal_for_erm(erm, mixup_mi, sub):
    det = _run(erm, "pgd10", sub)
    assert det["draws"] == 1 and det["robust_acc_worst"] == det["robust_acc"]
    rnd = _run(mixup_mi, "adaptive-pgd10", sub)
    assert rnd["draws"] == 10 and rnd["stochastic"]
    assert rnd["robust_acc_worst"] <= rnd["robust_acc"]
    assert rnd["robust_acc_worst_ci_low"] <= rnd["robust_acc_worst"] <= rnd["robust_acc_worst_ci_high"]
    from varmixup_bench.results.stats import decode_per_image

    per = decode_per_image(rnd["per_image"])
    assert np.all(per["worst"] <= per["robust"] + 1e-12)  # correct in all draws implies correct on average
    assert abs(100 * per["robust"].mean() - rnd["robust_acc"]) < 1e-9
    assert abs(100 * per["worst"].mean() - rnd["robust_acc_worst"]) < 1e-9


def test_restarts_keep_per_image_the_candidate_classified_correctly_least_often(erm, sub):
    from varmixup_bench.attacks.base import Attack
    from varmixup_bench.attacks.evaluation import attack_accuracy

    x, y = sub.x[:40], sub.y[:40]
    eps = 0.3
    torch.manual_seed(0)
    strong = __import__("varmixup_bench.attacks.eot", fromlist=["eot_pgd"]).eot_pgd(erm.classifier, x, y, eps=eps, step=eps / 4,
                                                                     steps=20, n_draws=1)

    class TwoCandidates(Attack):
        """First candidate: the clean image; second: a strong PGD example, but only for even positions."""

        name = "two"

        def perturb(self, model, xb, yb, targets=None):
            return xb

        def candidates(self, model, xb, yb, targets=None):
            yield xb.clone()
            mixed = xb.clone()
            mixed[::2] = strong[::2]
            yield mixed

    out = attack_accuracy(erm, TwoCandidates(eps), x, y, trials=1, seed=0, batch_size=64, show_progress=False)
    with torch.no_grad():
        ok_clean = erm.predict(x) == y
        ok_strong = erm.predict(strong) == y
    expect = ok_clean.clone()
    expect[::2] = ok_clean[::2] & ok_strong[::2]  # the worse of the two where there is a choice
    assert out["robust"][0] == pytest.approx(100.0 * float(expect.float().mean()))


def test_more_restarts_never_help_a_deterministic_defense(erm, sub):
    one = _run(erm, "pgd(steps=5,restarts=1)", sub, seed=2)
    three = _run(erm, "pgd(steps=5,restarts=3)", sub, seed=2)
    assert three["robust_acc"] <= one["robust_acc"]  # the first restart is the same; the rest can only add


# ---- the new adaptive attacks ----

def test_surrogate_pgd50_on_a_deterministic_defense_is_white_box_pgd50(erm, sub):
    a, b = _run(erm, "pgd50", sub, seed=4), _run(erm, "surrogate-pgd50", sub, seed=4)
    assert b["threat_model"] == "white-box" and a["robust_acc"] == b["robust_acc"]


def test_surrogates_of_mi_and_varmi_follow_their_definitions(mixup_mi, sub):
    x = sub.x[:4]
    rule = mixup_mi.rule
    mean = rule.pool.x.mean(0, keepdim=True)
    want = mixup_mi.classifier(rule.lambda_mi * x + (1 - rule.lambda_mi) * mean)
    torch.testing.assert_close(rule.surrogate(mixup_mi.classifier, x), want)
    r = _run(mixup_mi, "surrogate-pgd50", sub)
    assert r["threat_model"] == "adaptive"


def test_a_randomised_rule_without_surrogate_is_refused(mixup_mi):
    from varmixup_bench.defenses.base import InferenceRule

    class Noisy(InferenceRule):
        name, stochastic = "noisy", True

        def forward(self, classifier, x, generator=None, n_samples=None):
            return F.softmax(classifier(x), 1)

    with pytest.raises(BenchError, match="defines no deterministic surrogate"):
        Noisy(None, "erm").surrogate(mixup_mi.classifier, torch.rand(2, 1, 8, 8))


def test_adaptive_apgd_agrees_with_pyautoattack_apgd_on_a_deterministic_defense(erm, sub):
    from pyautoattack.autopgd_base import APGDAttack

    eps = 24 / 255
    ours = _run(erm, "adaptive-apgd(steps=20)", sub, eps=eps)
    assert ours["threat_model"] == "adaptive" and ours["step"] is None
    model = erm.classifier.eval()
    x, y = sub.x, sub.y
    fooled = torch.zeros(len(y), dtype=torch.bool)
    for loss in ("ce", "dlr"):
        apgd = APGDAttack(model, n_iter=20, norm="Linf", eps=eps, loss=loss, n_restarts=1, seed=0, device="cpu")
        adv = apgd.perturb(x, y)
        with torch.no_grad():
            fooled |= model(adv).argmax(1) != y
    reference = 100.0 * float((~fooled).float().mean())
    # two random-start implementations: paired on the same 96 images they may differ by a few images (CI once
    # saw 33.3 vs 30.2 %, 3 images), never by more than noise; a weaker or stronger attack would fail this
    from varmixup_bench.results.stats import decode_per_image, paired_test

    per = decode_per_image(ours["per_image"])
    order = {int(i): k for k, i in enumerate(sub.index)}
    robust = np.zeros(len(y))
    robust[[order[int(i)] for i in per["idx"]]] = per["robust"]
    cmp = paired_test(robust, (~fooled).numpy().astype(float))
    assert cmp.diff == pytest.approx(ours["robust_acc"] - reference, abs=1e-6)
    assert not cmp.significant(alpha=0.01) and abs(cmp.diff) <= 6 * 100 / len(y), (ours["robust_acc"], reference, cmp)


def test_adaptive_apgd_takes_its_default_budget_from_the_preset():
    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.config.presets import get_preset

    assert build_attack("adaptive-apgd", 8 / 255, None, get_preset("quick")).steps == 100  # AutoAttack's
    full = build_attack("adaptive-apgd", 8 / 255, None, get_preset("cifar-cpu-full"))
    assert (full.steps, full.eot) == (20, 8) and full.config()["steps"] == 20  # the budget is in the cell key
    assert build_attack("adaptive-apgd(steps=7)", 8 / 255, None, get_preset("cifar-cpu-full")).steps == 7


def test_adaptive_apgd_on_mi_is_far_below_oblivious(mixup_mi, sub):
    obl = _run(mixup_mi, "pgd10", sub)
    ada = _run(mixup_mi, "adaptive-apgd(steps=20,eot=8)", sub)
    from varmixup_bench.results.stats import compare_records

    assert compare_records(obl, ada).a_above_b(), (obl["robust_acc"], ada["robust_acc"])


class _Alternating(nn.Module):
    """A randomised model whose calls alternate between two fixed draws: an even call adds `shift` to class 0's
    logit, an odd call does not. The EOT loss is the mean of the two; the last draw's is the odd one."""

    stochastic = True

    def __init__(self, shift: float = 4.0) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.shift, self.calls = nn.Linear(16, 3), shift, 0

    def forward(self, x):
        out = self.lin(x.flatten(1))
        bump = torch.zeros_like(out)
        bump[:, 0] = self.shift if self.calls % 2 == 0 else 0.0
        self.calls += 1
        return out + bump


def test_torchattacks_apgd_steers_by_the_last_eot_draw_alone():
    """The library behaviour the harness works around (attacks/adaptive.py): with eot_iter = 2, APGD averages the
    two draws' gradients but keeps the loss of the last draw, and its best iterate and step-size halving follow
    that one draw. Against MI (one mix per draw) APGD-20 ended significantly weaker than EOT-PGD-10."""
    import torchattacks

    model = _Alternating().eval()
    x, y = torch.rand(6, 1, 4, 4), torch.zeros(6, dtype=torch.long)
    apgd = torchattacks.APGD(model, eps=8 / 255, steps=1, n_restarts=1, seed=0, loss="ce", eot_iter=2)
    x_best, _, loss_best, _ = apgd.attack_single_run(x, y)
    with torch.no_grad():
        model.calls = 1  # the odd draw
        odd = F.cross_entropy(model(x_best), y, reduction="none")
        model.calls = 0
        even = F.cross_entropy(model(x_best), y, reduction="none")
    assert torch.allclose(loss_best, odd, atol=1e-5)  # the last draw's loss...
    assert not torch.allclose(loss_best, (odd + even) / 2, atol=1e-2)  # ...not the EOT mean


def test_adaptive_apgd_puts_eot_in_the_model_on_a_randomised_defense(mixup_mi, erm):
    """Each forward of what APGD attacks averages `eot` draws (an eot-draw loss for its decisions), and APGD runs
    with eot_iter = 1; a deterministic defense is attacked as before (one call, one deterministic output)."""
    from varmixup_bench.attacks.evaluation import DefendedModel, attacked_model
    from varmixup_bench.attacks.spec import build_attack

    atk = build_attack("adaptive-apgd(steps=5,eot=6)", 8 / 255, None, mixup_mi.info["settings"])
    model = attacked_model(mixup_mi, atk, torch.Generator().manual_seed(0))
    assert isinstance(model, DefendedModel) and model.n_samples == 6 and model.stochastic
    assert atk._apgd(model, "ce").eot_iter == 1 and atk.config()["eot_in"] == "model"
    det = attacked_model(erm, atk, torch.Generator())
    assert not erm.stochastic and getattr(det, "n_samples", 1) == 1


def test_transfer_attack_is_black_box_and_crafted_on_the_source(erm, mixup_mi, sub):
    """PGD-50's gradients come from the source's classifier (the ERM the evaluation context provides, as the
    preset trains it: a network with its weights runs forward with gradients 50 times for the one batch, and the
    attacked Mixup+MI's never does), and the examples transfer: Mixup+MI loses accuracy beyond noise."""
    from varmixup_bench.results.stats import compare_records

    source = mixup_mi.info["context"].defense_provider("erm")
    weights = {"source": next(source.classifier.parameters()).detach().cpu().clone(),
               "attacked": next(mixup_mi.classifier.parameters()).detach().cpu().clone()}
    calls = {"source": 0, "attacked": 0}

    def hook(module, inputs, output):
        if isinstance(module, (type(source.classifier), type(mixup_mi.classifier))) and getattr(
                output, "requires_grad", False):
            first = next(module.parameters()).detach().cpu()
            for who, w in weights.items():  # a forward that gradients will flow through, by whose weights
                calls[who] += int(torch.equal(first, w))
        return None

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        r = _run(mixup_mi, "transfer:erm", sub, batch_size=len(sub), trials=1)  # one batch: 50 steps
    finally:
        handle.remove()
    assert r["threat_model"] == "black-box" and r["attack_config"]["source"] == "erm"
    assert calls == {"source": 50, "attacked": 0}
    assert compare_records(r, r, ("clean", "robust")).a_above_b()


# ---- convergence ----

def test_convergence_grid_on_mi_is_non_increasing_up_to_noise(tmp_path, digits):
    from varmixup_bench.runs.converge import run_convergence, unconverged
    from varmixup_bench.results.stats import compare_records

    d = bench.train("mixup+mi", digits, workdir=tmp_path, epochs=8, show_progress=False, test_subset=96)
    recs = run_convergence(d, steps=(5, 10, 20), eot=(1, 4), workdir=tmp_path, show_progress=False)
    assert len(recs) == 6 and {r["attack"] for r in recs} >= {"adaptive-pgd(eot=4,restarts=1,steps=20)"}
    by = {(r["attack_config"]["steps"], r["attack_config"]["eot"]): r for r in recs}
    for eot in (1, 4):
        for s0, s1 in ((5, 10), (10, 20)):
            assert not compare_records(by[(s1, eot)], by[(s0, eot)]).a_above_b(), (s0, s1, eot)
    # unconverged flags a line whose largest budget reads significantly lower than the one before, decided
    # with Holm: every flag is below the unadjusted level, and every Bonferroni-significant fall is flagged
    from varmixup_bench.results.stats import FAMILY_ALPHA
    from varmixup_bench.runs.converge import convergence_comparisons

    pairs, flagged = convergence_comparisons(recs), unconverged(recs)
    assert sorted(axis for *_, axis in pairs) == ["eot"] * 3 + ["steps"] * 2  # a line per eot, one per steps value
    falls = [(pair, compare_records(pair[0], pair[1])) for pair in pairs]
    assert all(f in pairs for f in flagged)
    for pair, cmp in falls:
        if pair in flagged:
            assert cmp.diff > 0 and cmp.p < FAMILY_ALPHA
        elif cmp.diff > 0:
            assert cmp.p >= FAMILY_ALPHA / len(pairs)
    again = run_convergence(d, steps=(5, 10, 20), eot=(1, 4), workdir=tmp_path, show_progress=False)
    assert [r["timestamp"] for r in again] == [r["timestamp"] for r in recs]  # read from the store, not rerun


def test_a_budget_spec_run_exactly_by_a_named_preset_reuses_its_record(tmp_path, digits, monkeypatch):
    """`adaptive-pgd(eot=N_A,restarts=1,steps=10)` is `adaptive-pgd10`: the same seeds give the same numbers, so
    a convergence grid reuses the stored preset instead of attacking again; a different budget is not reused."""
    import varmixup_bench.training.runner as runner
    from varmixup_bench.attacks.spec import build_attack, named_presets
    from varmixup_bench.results.store import ResultStore

    d = bench.train("mixup+mi", digits, workdir=tmp_path, epochs=2, show_progress=False, test_subset=64)
    n_a = int(d.info["settings"].n_adaptive)
    spec = f"adaptive-pgd(eot={n_a},restarts=1,steps=10)"
    named = runner.stored_or_evaluate(d, "adaptive-pgd10", workdir=tmp_path, show_progress=False)
    fresh = bench.evaluate(d, spec, record=False, show_progress=False)  # really attacked under the budget's name
    assert fresh["robust_acc"] == named["robust_acc"] and fresh["per_image"] == named["per_image"]

    # the named record as a campaign pass stores it, tagged with its sweep cell: the copy is not that cell
    ResultStore(tmp_path).append(dict(named, sweep_key="cell-of-a-pass"))
    monkeypatch.setattr(runner, "evaluate", lambda *a, **k: pytest.fail("attacked again"))
    reused = runner.stored_or_evaluate(d, spec, workdir=tmp_path, show_progress=False)
    assert (reused["attack"], reused["same_as"], reused["seconds"]) == (spec, "adaptive-pgd10", 0.0)
    assert "sweep_key" not in reused  # it kept the pass's tag and became that cell's newest record on the page
    assert [r["attack"] for r in ResultStore(tmp_path).records() if r.get("sweep_key") == "cell-of-a-pass"] == \
        ["adaptive-pgd10"]
    assert reused["eval_hash"] == fresh["eval_hash"] != named["eval_hash"]
    assert reused["robust_acc_worst"] == named["robust_acc_worst"]
    assert ResultStore(tmp_path).records()[-1]["eval_hash"] == fresh["eval_hash"]  # stored under the budget's name
    assert runner.stored_or_evaluate(d, spec, workdir=tmp_path)["timestamp"] == reused["timestamp"]

    other = build_attack("adaptive-pgd(eot=1,restarts=1,steps=10)", 8 / 255, None, d.info["settings"])
    assert named_presets(other) == []  # another EOT budget is another attack
    tpgd = build_attack("pgd(steps=10)", 8 / 255, None, d.info["settings"])
    assert [a.spec for a in named_presets(tpgd)] == ["pgd10"]  # tpgd10 overrides choose_targets: not a preset
    with pytest.raises(pytest.fail.Exception, match="attacked again"):
        runner.stored_or_evaluate(d, "adaptive-pgd(eot=1,restarts=1,steps=10)", workdir=tmp_path)


def test_deterministic_defenses_get_no_eot_axis():
    from varmixup_bench.runs.converge import budget_specs

    assert budget_specs("adaptive-pgd", [10, 20], [1, 8], [1], stochastic=False) == [
        "adaptive-pgd(restarts=1,steps=10)", "adaptive-pgd(restarts=1,steps=20)"]
    assert len(budget_specs("adaptive-pgd", [10, 20], [1, 8], [1, 3], stochastic=True)) == 8
    with pytest.raises(BenchError, match="has no steps or restarts budget"):
        budget_specs("fgsm", [10], [1], [1], stochastic=True)


def _budget_rec(steps, acc, n=400, eot=8):
    return {"dataset": "d", "defense": "x+mi", "attack": f"adaptive-pgd(eot={eot},restarts=1,steps={steps})",
            "eps": 8 / 255, "robust_acc": acc, "robust_acc_std": 0.0, "n_examples": n, "trials": 1,
            "stochastic": True, "attack_config": {"steps": steps, "eot": eot, "restarts": 1}, "threat_model": "adaptive"}


def test_not_converged_fires_only_beyond_noise():
    from varmixup_bench.runs.converge import unconverged

    assert unconverged([_budget_rec(10, 60), _budget_rec(20, 50), _budget_rec(50, 40)])[0][2] == "steps"
    assert unconverged([_budget_rec(10, 60), _budget_rec(20, 50), _budget_rec(50, 49)]) == []  # 1 point: noise
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame

    recs = [dict(_budget_rec(s, a), timestamp=f"t{s}", clean_acc=90.0) for s, a in ((20, 55), (50, 40))]
    findings = diagnose(leaderboard_frame(recs))
    assert [f.check for f in findings] == ["not-converged"]



def test_named_budgets_are_points_of_their_familys_grid():
    """adaptive-pgd10 and adaptive-pgd50 are adaptive-pgd at steps 10 and 50: stored side by side (a campaign's
    convergence pass) they are a steps line of the grid, and PGD-50 well below PGD-10 is `not-converged` as it is
    for `bench converge`'s own specs. It used to see only specs written with parentheses, and stayed silent."""
    from varmixup_bench.runs.converge import budget_family, unconverged
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame

    assert {budget_family(a) for a in ("adaptive-pgd10", "adaptive-pgd50", "adaptive-pgd(eot=32,steps=10)")} == {
        "adaptive-pgd"}
    assert budget_family("pgd50") == "pgd" and budget_family("spsa") is None and budget_family("gone") is None

    def named(attack, steps, acc, eot=8):
        return dict(_budget_rec(steps, acc, eot=eot), attack=attack)

    recs = [named("adaptive-pgd10", 10, 60), named("adaptive-pgd50", 50, 45),
            named("adaptive-pgd(eot=32,restarts=1,steps=10)", 10, 59, eot=32)]
    assert [(prev["attack"], last["attack"], axis) for prev, last, axis in unconverged(recs)] == [
        ("adaptive-pgd10", "adaptive-pgd50", "steps")]  # 15 points on 400 images; the EOT axis: 1 point, noise
    stamped = [dict(r, timestamp=f"t{i}", clean_acc=90.0) for i, r in enumerate(recs)]
    assert [f.check for f in diagnose(leaderboard_frame(stamped))] == ["not-converged"]
    # `bench converge` stores its budget spec as a copy (same_as) of the named attack that runs it: one point
    copy = dict(recs[1], attack="adaptive-pgd(eot=8,restarts=1,steps=50)", same_as="adaptive-pgd50")
    assert [(prev["attack"], last["attack"]) for prev, last, _ in unconverged(recs + [copy])] == [
        ("adaptive-pgd10", "adaptive-pgd50")]


# ---- leaderboard ----

def test_leaderboard_shows_worst_case_columns_for_randomised_defenses_only(erm, mixup_mi, sub):
    from varmixup_bench.views.leaderboard import leaderboard_frame, render_wide, wide_frame

    recs = [dict(_run(d, "pgd10", sub), timestamp=str(i)) for i, d in enumerate((erm, mixup_mi))]
    wide = wide_frame(leaderboard_frame(recs))
    col = "pgd10 ε=24/255 worst-case"
    assert col in wide.columns
    cells = dict(zip(wide["defense"], wide[col]))
    assert isinstance(cells["mixup+mi"], dict) and not isinstance(cells["erm"], dict)
    assert "worst-case" in render_wide(wide, "md")
    # with R = 1 draw per adversarial example the worst case is the mean: no column for it
    one = [dict(r, draws=1, robust_acc_worst=r["robust_acc"]) for r in recs]
    assert not any("worst-case" in c for c in wide_frame(leaderboard_frame(one)).columns)


# ---- CLI ----

def test_converge_and_report_reject_bad_options_with_one_line(tmp_path):
    for args, msg in (
        (["converge", "-d", "erm", "--steps", "10,x"], "invalid --steps"),
        (["converge", "-d", "erm", "--eot", "0"], "--eot values must be >= 1"),
        (["converge", "-d", "erm", "--attack", "fgsm"], "has no steps or restarts budget"),
        (["converge", "-d", "erm", "--attack", "adaptive-pgd(steps=3)"], "give the attack's name only"),
        (["report", "-d", "erm", "--transfer-from", "nope"], "unknown recipe"),
        (["report", "-d", "erm", "--ece-threshold", "0"], "--ece-threshold must be > 0"),
        (["run", "-d", "erm", "-a", "adaptive-pgd(stepz=3)"], "takes no keyword 'stepz'"),
    ):
        code, _, stderr = bench_cli(*args, "--workdir", str(tmp_path))
        assert code == 2, (args, stderr)
        assert msg in stderr and "Traceback" not in stderr
        assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.slow
def test_report_has_every_checklist_item_with_numbers_and_a_verdict(tmp_path):
    code, _, stderr = bench_cli("report", "-d", "mixup+mi", "--preset", "quick", "--epochs", "5", "--test-subset", "60",
                "--steps", "5,10", "--eot", "1,2", "--set", "spsa_iters=5", "--set", "spsa_samples=16",
                "--set", "corruption_subset=30", "--set", "n_adaptive=2", "--workdir", str(tmp_path),
                "--output", str(tmp_path / "rep"), "--no-progress")
    assert code == 0, stderr
    from varmixup_bench.views.report import CHECKLIST, MARKS

    md = (tmp_path / "rep" / "report.md").read_text()
    page = (tmp_path / "rep" / "report.html").read_text()
    for i, key in enumerate(CHECKLIST, 1):
        section = md.split(f"## {i}. {key}: ")[1].split("\n## ")[0]
        assert section.split("\n")[0] in MARKS.values()
        assert any(ch.isdigit() for ch in section.split("| --- | --- |")[1])  # a number in its table
        assert "Verdict: **" in section
        assert key in page
    assert (tmp_path / "rep" / "eps.png").exists() and (tmp_path / "rep" / "converge.png").exists()


def test_bench_diagnose_names_the_model_of_each_finding(tmp_path):
    """One defense and seed trained on two VAEs is two models: `bench diagnose` prints each finding's config hash,
    so the reader can tell which one fired (the seed alone is the same)."""
    from typer.testing import CliRunner

    from varmixup_bench.cli import app
    from varmixup_bench.results.store import ResultStore

    recs = []
    for model, low in (("aaaa1111", 45), ("bbbb2222", 40)):
        for steps, acc in ((10, 60), (50, low)):
            recs.append(dict(_budget_rec(steps, acc), attack=f"adaptive-pgd{steps}", config_hash=model, seed=0,
                             eval_hash=f"{model}{steps}", timestamp=f"2026-01-01T00:00:{steps:02d}", clean_acc=90.0))
    ResultStore(tmp_path).extend(recs)
    result = CliRunner().invoke(app, ["diagnose", "--workdir", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "not-converged" in line]
    assert len(rows) == 2 and "aaaa1111" in rows[0] + rows[1] and "bbbb2222" in rows[0] + rows[1]
