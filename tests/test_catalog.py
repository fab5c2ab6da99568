"""Issue 13: the torchattacks / ART catalogs by name, and the L2 threat model."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from varmixup_bench.attacks.base import Norm, parse_norm
from varmixup_bench.attacks.evaluation import check_in_ball
from varmixup_bench.attacks.spec import build_attack
from varmixup_bench.core.errors import BenchError
from varmixup_bench.training.runner import attack_accuracy, evaluate
from tests_cli_helper import bench_cli

L2_EPS, L2_STEP = 0.5, 0.125  # digits (8x8): L2 PGD-10 leaves ERM mid-range (about 45 %), so agreement means something


def _decode(rec):
    from varmixup_bench.results.stats import decode_per_image

    return decode_per_image(rec["per_image"])


def test_torchattacks_pgd_equals_builtin_pgd10_with_the_same_seed(erm):
    builtin = evaluate(erm, "pgd10", eps=8 / 255, record=False, show_progress=False)
    catalog = evaluate(erm, "torchattacks:PGD(steps=10)", eps=8 / 255, record=False, show_progress=False)
    assert catalog["attack"] == "torchattacks:PGD(steps=10)" and catalog["threat_model"] == "white-box"
    assert catalog["robust_acc"] == builtin["robust_acc"]
    assert np.array_equal(_decode(catalog)["robust"], _decode(builtin)["robust"])  # image by image
    assert catalog["attack_config"]["kwargs"] == {"alpha": 2 / 255, "eps": 8 / 255, "steps": 10}


def test_adaptive_catalog_pgd_equals_white_box_pgd_on_a_deterministic_defense(erm):
    white = evaluate(erm, "torchattacks:PGD", record=False, show_progress=False)
    adaptive = evaluate(erm, "adaptive:torchattacks:PGD", record=False, show_progress=False)
    assert adaptive["threat_model"] == "adaptive" and white["threat_model"] == "white-box"
    assert np.array_equal(_decode(adaptive)["robust"], _decode(white)["robust"])


def _plain_l2_pgd(model, x, y, eps, step, steps, seed):
    """A reference L2 PGD written out in plain PyTorch (its own random start: uniform radius, random direction)."""
    g = torch.Generator().manual_seed(seed)
    flat = lambda t: t.reshape(len(t), -1)  # noqa: E731
    d = torch.randn(x.shape, generator=g)
    d = d / flat(d).norm(dim=1).view(-1, 1, 1, 1) * torch.rand(len(x), generator=g).view(-1, 1, 1, 1) * eps
    adv = (x + d).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        (grad,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(adv), y), adv)
        adv = adv.detach() + step * grad / flat(grad).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        delta = adv - x
        delta = delta * (eps / flat(delta).norm(dim=1).clamp_min(1e-12)).clamp(max=1).view(-1, 1, 1, 1)
        adv = (x + delta).clamp(0, 1)
    with torch.no_grad():
        return 100.0 * float((model(adv).argmax(1) == y).float().mean())


def test_l2_pgd_agrees_with_art_and_a_plain_pytorch_loop(erm, digits):
    """The harness's L2 PGD-10 (torchattacks PGDL2) against a plain PyTorch loop (random start, 3 starts each) and
    against ART's L2 PGD. ART starts uniformly in the ball's volume, i.e. near its surface in 64 dimensions, which
    measured 2-3 points weaker than a uniform radius here; so ART is compared from the clean start, where both are
    the same algorithm, through the catalog (`torchattacks:PGDL2(random_start=False)`)."""
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    x, y = torch.cat([digits.test.x, digits.train.x]), torch.cat([digits.test.y, digits.train.y])
    settings = erm.info["settings"]

    def harness(spec: str, trials: int) -> float:
        atk = build_attack(spec, L2_EPS, L2_STEP, settings, "l2")
        return float(np.mean(attack_accuracy(erm, atk, x, y, trials=trials, seed=0, batch_size=512,
                                             show_progress=False)["robust"]))

    ours = harness("pgd10", 3)
    plain = np.mean([_plain_l2_pgd(erm.classifier, x, y, L2_EPS, L2_STEP, 10, s) for s in range(3)])
    clf = PyTorchClassifier(model=erm.classifier, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    x_art = ProjectedGradientDescent(clf, norm=2, eps=L2_EPS, eps_step=L2_STEP, max_iter=10, num_random_init=0,
                                     batch_size=512, verbose=False).generate(x.numpy(), y=y.numpy())
    art = 100.0 * float((clf.predict(x_art).argmax(1) == y.numpy()).mean())
    clean = 100.0 * float((erm.predict(x) == y).float().mean())
    assert 10 < ours < clean - 10, "an eps where the attack bites but does not saturate"
    assert abs(ours - plain) <= 2.0, (ours, plain)
    assert abs(harness("torchattacks:PGDL2(random_start=False)", 1) - art) <= 2.0


def test_fgm_in_l2_equals_arts_fast_gradient_method(erm, digits):
    from art.attacks.evasion import FastGradientMethod
    from art.estimators.classification import PyTorchClassifier

    x, y = digits.test.x[:200], digits.test.y[:200]
    ours = build_attack("fgsm", L2_EPS, None, erm.info["settings"], "l2").perturb(erm.classifier, x, y)
    clf = PyTorchClassifier(model=erm.classifier, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 8, 8),
                            nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    art = FastGradientMethod(clf, norm=2, eps=L2_EPS).generate(x.numpy(), y=y.numpy())
    assert np.abs(ours.numpy() - art).max() < 1e-4


def test_adaptive_pgd_in_l2_reproduces_torchattacks_pgdl2_with_one_draw(erm, digits):
    x, y = digits.test.x[:128], digits.test.y[:128]
    settings = erm.info["settings"]
    torch.manual_seed(3)
    ours = build_attack("adaptive-pgd10", L2_EPS, None, settings, "l2").perturb(erm.classifier, x, y)
    torch.manual_seed(3)
    ref = build_attack("pgd10", L2_EPS, None, settings, "l2").perturb(erm.classifier, x, y)
    assert torch.allclose(ours, ref, atol=1e-5)


@pytest.mark.parametrize("spec,norm,eps", [
    ("pgd10", "l2", L2_EPS), ("fgsm", "l2", L2_EPS), ("adaptive-pgd10", "l2", L2_EPS),
    ("torchattacks:PGDL2", "l2", L2_EPS), ("art:ProjectedGradientDescent(max_iter=5)", "l2", L2_EPS),
    ("torchattacks:CW(steps=20)", "l2", 0.2), ("torchattacks:CW(steps=20)", "linf", 4 / 255),
    ("torchattacks:DeepFool(steps=10)", "linf", 8 / 255), ("torchattacks:Square(n_queries=50)", "l2", L2_EPS),
])
def test_every_adversarial_batch_lies_in_its_norm_ball_and_in_unit_range(erm, digits, spec, norm, eps):
    x, y = digits.test.x[:64], digits.test.y[:64]
    atk = build_attack(spec, eps, None, erm.info["settings"], norm)
    torch.manual_seed(0)
    from varmixup_bench.attacks.evaluation import attacked_model

    model = attacked_model(erm, atk, torch.Generator().manual_seed(0))
    for cand in atk.candidates(model, x, y):
        size = parse_norm(norm).distance(cand - x)
        assert float(size.max()) <= eps * (1 + 1e-5) + 1e-6, spec
        assert float(cand.min()) >= 0 and float(cand.max()) <= 1
        check_in_ball(atk, x, cand)  # the evaluation's own check agrees


def test_the_ball_check_refuses_a_point_outside_the_l2_ball(erm, digits):
    x = digits.test.x[:4]
    atk = build_attack("pgd10", 0.5, None, erm.info["settings"], "l2")
    outside = (x + 0.2).clamp(0, 1)  # within 0.2 in L-inf, but far outside L2 0.5 on 64 pixels
    assert float(Norm.L2.distance(outside - x).max()) > 0.5
    with pytest.raises(RuntimeError, match="left the L2 eps-ball"):
        check_in_ball(atk, x, outside)


def test_l2_defaults_come_from_the_preset_and_accuracy_falls_with_eps(erm):
    rec = evaluate(erm, "pgd10", norm="l2", record=False, show_progress=False)
    assert (rec["norm"], rec["eps"], rec["step"]) == ("L2", 0.7, 0.175)  # digits' L2 default, step eps/4
    accs = [evaluate(erm, "pgd10", eps=e, norm="l2", record=False, show_progress=False)["robust_acc"]
            for e in (0.0, 0.25, 0.5, 1.0, 2.0)]
    assert all(b <= a for a, b in zip(accs, accs[1:])) and accs[-1] <= 1.0, accs


def test_hopskipjump_is_black_box_on_a_randomised_defense_and_computes_no_gradient(mixup_mi, digits, monkeypatch):
    from varmixup_bench.training.data import Split

    def no_gradients(*args, **kwargs):
        raise AssertionError("a decision-based attack asked for a gradient")

    monkeypatch.setattr(torch.autograd, "grad", no_gradients)
    monkeypatch.setattr(torch.Tensor, "backward", no_gradients)
    split = Split(digits.test.x[:12], digits.test.y[:12], digits.test.index[:12])
    rec = evaluate(mixup_mi, "art:HopSkipJump(max_iter=1,max_eval=10,init_eval=5,init_size=20)", split=split,
                   record=False, show_progress=False)
    assert rec["threat_model"] == "black-box" and rec["stochastic"] is True
    assert rec["attack_config"]["kind"] == "decision" and rec["attack_config"]["projected"] is True
    assert rec["robust_acc"] <= rec["clean_acc"] + 100.0 / 12  # never above clean beyond one draw's noise


def test_catalog_kinds_and_norms():
    from varmixup_bench.attacks.catalog import art_catalog, torchattacks_catalog

    ta, art = torchattacks_catalog(), art_catalog()
    assert (ta["PGD"].kind, ta["PGD"].norms) == ("gradient", ("Linf",))
    assert (ta["Square"].kind, ta["APGD"].norms, ta["CW"].norms) == ("score", ("Linf", "L2"), ("L2",))
    assert art["HopSkipJump"].kind == "decision" and art["SquareAttack"].kind == "score"
    assert art["ProjectedGradientDescent"].kind == "gradient" and art["ProjectedGradientDescent"].refused is None
    assert "TensorFlow" in art["ProjectedGradientDescentTensorFlowV2"].refused
    assert "patch" in art["DPatch"].refused


def test_list_attacks_all_lists_both_catalogs():
    code, out, _ = bench_cli("list", "attacks", "--all")
    assert code == 0
    for name in ("torchattacks:PGD", "torchattacks:Square", "art:HopSkipJump", "art:ProjectedGradientDescent"):
        assert name in out
    assert "decision" in out and "score" in out


@pytest.mark.parametrize("args,message", [
    (["-a", "torchattacks:PDG"], "did you mean torchattacks:PGD"),
    (["-a", "torchattacks:pdg"], "did you mean torchattacks:PGD"),  # case aside
    (["-a", "torchattacks:PGD(foo=1)"], "its keywords: alpha, eps, random_start, steps"),
    (["-a", "art:Nope"], "art has no attack class 'Nope'"),
    (["-a", "art:DPatch"], "cannot run here"),
    (["-a", "adaptive:torchattacks:Square"], "drop the adaptive: prefix"),
    (["-a", "torchattacks:PGD", "--norm", "l2"], "no L2 version"),
    (["-a", "spsa", "--norm", "l2"], "attack spsa has no L2 version"),
    (["-a", "pgd10", "--norm", "l3"], "valid norms: linf, l2"),
    (["-a", "pgd10", "--eps", "2"], "--norm l2"),
    (["-a", "nope:PGD"], "attack family"),
])
def test_bad_names_keywords_and_norms_are_status_2_with_the_valid_choices(tmp_path, args, message):
    code, out, err = bench_cli("run", "-d", "erm", *args, "--workdir", str(tmp_path), "--no-progress")
    assert code == 2, out + err
    assert message in " ".join(err.split()), err
    assert not (tmp_path / "results.sqlite").exists()


def test_an_l2_record_round_trips_through_csv_md_json_and_robustbench(erm, tmp_path):
    from varmixup_bench.views.leaderboard import leaderboard_frame, render, render_wide, wide_frame
    from varmixup_bench.views.rb_export import write_robustbench
    from varmixup_bench.results.store import ResultStore

    evaluate(erm, "clean", workdir=tmp_path, show_progress=False)
    evaluate(erm, "pgd10", eps=8 / 255, workdir=tmp_path, show_progress=False)
    l2 = evaluate(erm, "pgd10", eps=0.5, norm="l2", workdir=tmp_path, show_progress=False)
    records = ResultStore(tmp_path).records()
    frame = leaderboard_frame(records)
    assert sorted(frame["norm"]) == ["L2", "Linf", "none"]
    back = pd.read_csv(__import__("io").StringIO(render(frame, "csv")))
    row = back[back["norm"] == "L2"].iloc[0]
    assert (row["attack"], row["eps"], row["robust_acc"]) == ("pgd10", 0.5, pytest.approx(l2["robust_acc"]))
    as_json = json.loads(render(frame, "json"))
    assert {r["norm"] for r in as_json} == {"L2", "Linf", "none"}
    assert "L2 0.5" in render(frame, "md")
    wide = render_wide(wide_frame(frame), "md")
    assert "pgd10 L2 ε=0.5" in wide and "pgd10 ε=8/255" in wide
    paths = write_robustbench(records, tmp_path / "rb")
    l2_info = json.loads((tmp_path / "rb" / "digits" / "L2" / "erm.json").read_text())
    linf_info = json.loads((tmp_path / "rb" / "digits" / "Linf" / "erm.json").read_text())
    assert len(paths) == 2 and l2_info["eps"] == "0.5" and linf_info["eps"] == "8/255"
    assert "worst L2 accuracy at 0.5" in l2_info["footnote"] and "L2" not in linf_info["footnote"]
    from varmixup_bench.views.plots import curves, plot

    assert plot(records, "eps", tmp_path / "l2.png", norm="L2").stat().st_size > 0  # bench plot eps --norm l2
    l2_points = curves([r for r in records if r.get("norm") == "L2"], "eps")
    assert [x for x, _, _ in l2_points["erm"]] == [0.5]
    code, _, err = bench_cli("plot", "eps", "--norm", "l2", "--attack", "fgsm", "--workdir", str(tmp_path))
    assert code == 2 and "no records for a eps plot of attack fgsm in L2" in err


def test_norm_names():
    assert parse_norm("linf") is Norm.LINF and parse_norm("Linf") is Norm.LINF and parse_norm("L2") is Norm.L2
    with pytest.raises(BenchError, match="valid norms"):
        parse_norm("l1")
