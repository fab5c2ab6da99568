"""`bench campaign probe` (campaigns.probe): the plan's evaluations that nothing stored estimates, measured on a few
test images of trained models, never training and never recording; the forecast scales them by each cell's
images."""
from __future__ import annotations

import json

import pytest

PLAN = """
[campaign]
name = "probe"
dataset = "digits"
preset = "quick"
set = {{ epochs = {{ erm = 1, mixup = 1 }}, test_subset = 60, spsa_subset = 40, spsa_iters = 2, spsa_samples = 4 }}

[[pass]]
name = "first"
defenses = ["erm"]
attacks = ["clean"]
seeds = [0]
{extra}
"""

MORE = """
[[pass]]
name = "more"
defenses = ["erm", "mixup", "mixup+mi"]
attacks = ["clean", "pgd10", "spsa"]
seeds = [0]
eps = ["0.1", "0.2"]
"""


def _pass(name: str, defenses: list[str], attacks: list[str], more: str = "") -> str:
    """A [[pass]] table of seed 0 (TOML)."""
    def listed(items: list[str]) -> str:
        return ", ".join(f'"{i}"' for i in items)

    return (f'\n[[pass]]\nname = "{name}"\ndefenses = [{listed(defenses)}]\nattacks = [{listed(attacks)}]\n'
            f"seeds = [0]\n{more}\n")


def _plan(tmp_path, extra, name):
    from varmixup_bench.campaigns.plan import load_plan

    (tmp_path / name).write_text(PLAN.format(extra=extra))
    return load_plan(tmp_path / name)


def test_probes_measure_unestimated_kinds_on_trained_models_only_and_the_forecast_scales_them(tmp_path,
                                                                                             private_cache):
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.probe import Probes, run_probes
    from varmixup_bench.campaigns.status import pass_status
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.training.cache import WeightCache

    wd = tmp_path / "wd"
    run_campaign(_plan(tmp_path, "", "a.toml"), wd, show_progress=False)  # erm trained, its clean cell stored
    plan = _plan(tmp_path, MORE, "b.toml")
    models_before = sorted(p.name for p in WeightCache(wd).root.iterdir())
    records_before = len(ResultStore(wd).records())
    before = estimate(plan, wd, pass_status(plan, wd, "cpu"), "cpu")[1]

    rows = run_probes(plan, wd, images=20, device="cpu", show_progress=False)

    by_kind = {r["kind"].removesuffix(" (more)"): r for r in rows}  # kind names end with the first cell's pass
    # clean on the plain classifier has a stored record of the same attack and rule: not probed; pgd10 and spsa on
    # it are one kind each whatever the radius and recipe (erm, mixup); MI's are other kinds, with no model trained
    assert set(by_kind) == {"pgd10 on erm", "spsa on erm", "clean on mixup+mi", "pgd10 on mixup+mi",
                            "spsa on mixup+mi"}
    assert by_kind["pgd10 on erm"]["cells"] == 4 and by_kind["pgd10 on erm"]["stand_in"] == "erm"
    assert by_kind["pgd10 on erm"]["images"] == 20 and by_kind["spsa on erm"]["images"] == 20
    assert by_kind["pgd10 on mixup+mi"]["error"] == "no trained model of this kind yet"
    assert "seconds" not in by_kind["spsa on mixup+mi"]
    # never training, never recording
    assert sorted(p.name for p in WeightCache(wd).root.iterdir()) == models_before
    assert len(ResultStore(wd).records()) == records_before

    probes = Probes.of(wd).events()
    assert len(probes) == 2 and {p["stand_in"] for p in probes} == {"erm"}
    per_image = {p["fields"]["attack"]: p["seconds"] / p["images"] for p in probes}
    after = estimate(plan, wd, pass_status(plan, wd, "cpu"), "cpu")[1]
    assert after.probed == 8  # pgd10 and spsa at two radii on erm and mixup
    cells = [c for c in pass_status(plan, wd, "cpu")[1].missing]
    for cell, seconds, old in zip(cells, after.evaluate, before.evaluate):
        if cell.defense == "mixup+mi" and cell.attack != "clean":
            assert seconds == old  # no probe of MI: what the records said before (here: nothing like it)
        elif cell.attack == "pgd10":
            assert seconds == pytest.approx(per_image["pgd10"] * 60)  # the 60 test images of the plan
        elif cell.attack == "spsa":
            assert seconds == pytest.approx(per_image["spsa"] * 40)  # SPSA runs on its subset of 40
    assert run_probes(plan, wd, images=20, device="cpu", show_progress=False) == [
        r for r in rows if "error" in r]  # probed kinds are not probed again; MI still cannot be


def test_a_probe_refuses_too_few_or_too_many_images(tmp_path, private_cache):
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.probe import run_probes
    from varmixup_bench.core.errors import BenchError

    wd = tmp_path / "wd"
    with pytest.raises(BenchError, match="at least 20"):
        run_probes(_plan(tmp_path, MORE, "b.toml"), wd, images=5, device="cpu", show_progress=False)
    run_campaign(_plan(tmp_path, "", "a.toml"), wd, show_progress=False)
    with pytest.raises(BenchError, match="give 20 to 60"):
        run_probes(_plan(tmp_path, MORE, "b.toml"), wd, images=61, device="cpu", show_progress=False)


def test_kinds_ignore_the_radius_and_adv_but_not_draws_or_the_vae(tmp_path):
    from varmixup_bench.campaigns.probe import kinds
    from varmixup_bench.campaigns.status import pass_status

    extra = "".join([
        _pass("var", ["varmixup+varmi", "adv-varmixup+adv-varmi"], ["pgd10"], 'eps = ["0.1", "0.2"]'),
        _pass("one-draw", ["varmixup+varmi"], ["pgd10"], "set = { worst_case_draws = 1 }"),
        _pass("wider-vae", ["varmixup+varmi"], ["pgd10"], "set = { vae_latent_dim = 8 }"),
        _pass("plain-one-draw", ["erm"], ["ece"], "set = { worst_case_draws = 1 }"),
        _pass("plain", ["erm", "varerm"], ["ece", "kid"])])
    plan = _plan(tmp_path, extra, "c.toml")
    wd = tmp_path / "wd"
    found = kinds(plan, wd, pass_status(plan, wd, "cpu"), "cpu")
    sizes = {k.missing[0].pass_name: len(k.missing) for k in found if k.fields["attack"] == "pgd10"}
    assert sizes == {"var": 4, "one-draw": 1, "wider-vae": 1}
    # at inference a VarERM classifier costs what ERM's does; KID samples through its recipe's VAE: two kinds
    plain = sorted((k.fields["attack"], len(k.missing)) for k in found if k.missing[0].pass_name.startswith("plain"))
    assert plain == [("ece", 3), ("kid", 1), ("kid", 1)]  # draws are no cost of a deterministic predictor
    assert all(not k.stand_ins for k in found)  # nothing trained in this workdir


def test_probe_file_torn_lines_are_skipped_rates_are_medians_and_unset_subsets_are_the_probes(tmp_path):
    from varmixup_bench.campaigns.probe import PROBE_FILE, Probes, images_of

    path = tmp_path / PROBE_FILE
    lines = [json.dumps({"signature": "a", "seconds": s, "images": 10}) for s in (1.0, 3.0, 100.0)]
    path.write_text("\n".join(lines) + '\n{"signature": "a", "seconds": 5')  # a crash mid-line
    assert Probes.of(tmp_path).rates == {"a": pytest.approx(0.3)}
    assert images_of({"subset": 200}, 1000) == 200 and images_of({"subset": 500}, 60) == 60
    assert images_of({"samples": 1000}, 60) == 1000 and images_of({"steps": 10}, 60) == 60
    from types import SimpleNamespace

    from varmixup_bench.campaigns.probe import probe_overrides

    unset = SimpleNamespace(spsa_subset=None, corruption_subset=None, kid_samples=1000)  # e.g. the quick preset
    assert probe_overrides(unset, 50) == {"test_subset": 50, "spsa_subset": 50, "corruption_subset": 50,
                                          "kid_samples": 50}


def test_the_cli_probes_then_status_counts_the_probed_evaluations(tmp_path, private_cache):
    from tests_cli_helper import bench_cli

    from varmixup_bench.campaigns.engine import run_campaign

    wd = tmp_path / "wd"
    plan = tmp_path / "b.toml"
    plan.write_text(PLAN.format(extra=MORE))
    code, _, err = bench_cli("campaign", "probe", str(plan), "--workdir", str(wd))
    assert code == 2 and "does not exist" in err  # a probe needs models trained there
    run_campaign(_plan(tmp_path, "", "a.toml"), wd, show_progress=False)
    code, out, err = bench_cli("campaign", "probe", str(plan), "--workdir", str(wd), "--images", "20", "--no-progress")
    assert code == 0 and "pgd10 on erm" in out and "no trained model of this kind yet" in out
    assert "probe spsa on erm (more) (on erm):" in err
    code, out, _ = bench_cli("campaign", "status", str(plan), "--workdir", str(wd))
    assert code == 0 and "8 evaluation(s) from probes" in out
    code, _, err = bench_cli("campaign", "probe", str(plan), "--workdir", str(wd), "--images", "3")
    assert code == 2 and "at least 20" in err


def test_records_estimate_cells_of_their_attack_and_rule_only_with_as_many_draws():
    from types import SimpleNamespace

    from varmixup_bench.campaigns.cells import exact_seconds
    from varmixup_bench.defenses import parse_defense_spec

    def cell(draws, eps=8 / 255):
        return SimpleNamespace(
            dspec=parse_defense_spec("adv-varmixup+adv-varmi"), rule=SimpleNamespace(stochastic=True), test_images=1000,
            ctx=SimpleNamespace(settings=SimpleNamespace(worst_case_draws=draws, model="m", trials=1),
                                dataset=SimpleNamespace(name="d")),
            attack=SimpleNamespace(spec="pgd10", config=lambda: {"steps": 10}, eps=eps, uses_recipe=False),
            cell=SimpleNamespace(attack="pgd10", defense="adv-varmixup+adv-varmi"))

    base = {"attack": "pgd10", "dataset": "d", "attack_config": {"steps": 10}, "model": "m", "trials": 1,
            "n_examples": 1000, "eps": 8 / 255}
    records = [{**base, "defense": "varmixup+varmi", "seconds": 400.0, "per_image": '{"idx": "", "draws": 10}'},
               {**base, "defense": "mixup+mi", "seconds": 5.0, "per_image": '{"idx": "", "draws": 1}'}]
    assert exact_seconds(cell(10), records) == pytest.approx(400.0)  # adv-varmi costs what varmi does
    assert exact_seconds(cell(1), records) is None  # one draw costs a tenth of ten: a probe's job, not this record's
    assert exact_seconds(cell(10, eps=0.0), records) is None  # at eps 0 the attack returns its input
    for field, other in (("model", "resnet18"), ("n_examples", 500), ("trials", 10)):
        assert exact_seconds(cell(10), [{**records[0], field: other}]) is None  # other architecture, images, trials


STEP = """
[[step]]
kind = "report"
defense = "erm"
steps = [10]
eot = [1]
eps_grid = ["0", "0.5"]
skip = ["corruptions"]
"""


def test_a_report_steps_forecast_lists_exactly_what_it_then_evaluates(tmp_path, private_cache):
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.cells import step_cells
    from varmixup_bench.campaigns.estimate import estimate
    from varmixup_bench.campaigns.probe import kinds
    from varmixup_bench.campaigns.status import pass_status, step_status
    from varmixup_bench.results.store import ResultStore

    wd = tmp_path / "wd"
    full = _plan(tmp_path, STEP, "s.toml")
    statuses, steps = pass_status(full, wd, "cpu"), step_status(full, wd)
    (erm_model,) = [e for e in estimate(full, wd, statuses, "cpu", steps) if e.name == "first"][0].train
    report = [e for e in estimate(full, wd, statuses, "cpu", steps) if e.name == "step report erm"]
    assert len(report) == 1 and report[0].train == {}  # ERM (and the transfer source, ERM) counted once, in the pass
    assert erm_model

    run_campaign(_plan(tmp_path, "", "a.toml"), wd, show_progress=False)  # the pass only: erm, clean
    statuses, steps = pass_status(full, wd, "cpu"), step_status(full, wd)
    forecast = {(pc.cell.attack, round(pc.cell.eps, 6)) for pc in step_cells(full, wd, statuses, steps, "cpu")}
    assert ("clean", 0.0) not in forecast  # stored by the pass: the report reuses it
    assert {"ece", "spsa", "pgd50", "transfer:erm"} <= {a for a, _ in forecast}
    assert "corruptions" not in {a for a, _ in forecast}  # skipped
    radii = {round(float(full.steps[0].settings.eps_for("Linf")), 6), 0.0, 0.5}
    assert {e for a, e in forecast if a == "pgd10"} == radii  # the step's eps grid and the preset's radius
    assert all(k.stand_ins for k in kinds(full, wd, statuses, "cpu", steps))  # ERM is trained: all probe-able
    before = {r["eval_hash"] for r in ResultStore(wd).records()}

    run_campaign(full, wd, show_progress=False)  # the report step runs what the store lacks
    new = {(r["attack"], round(float(r["eps"] or 0.0), 6)) for r in ResultStore(wd).records()
           if r["eval_hash"] not in before}
    assert new == forecast
    assert estimate(full, wd, pass_status(full, wd, "cpu"), "cpu", step_status(full, wd))[1:] == []  # all done


def test_a_plans_passes_and_steps_share_one_copy_of_each_dataset(tmp_path):
    from varmixup_bench.campaigns.cells import step_cells
    from varmixup_bench.campaigns.status import pass_status, step_status

    other = _pass("other-set", ["erm"], ["clean"], "set = { worst_case_draws = 1 }").replace("[0]", "[3]")
    plan = _plan(tmp_path, MORE + STEP + other, "d.toml")
    wd = tmp_path / "wd"
    cells = list(step_cells(plan, wd, pass_status(plan, wd, "cpu"), step_status(plan, wd), "cpu"))
    first = plan.sweep_spec(plan.passes[0], wd, "cpu").context("digits", 0, ())
    other = plan.sweep_spec(plan.passes[2], wd, "cpu").context("digits", 3, ())
    assert other.settings.worst_case_draws == 1 and first.settings.worst_case_draws != 1
    assert other.dataset is first.dataset and cells[0].ctx.dataset is first.dataset  # passes, seeds, steps: one copy
    assert len(plan.loaded_data) == 1


def test_a_failing_probe_is_reported_and_the_others_still_run(tmp_path, private_cache, monkeypatch):
    from tests_cli_helper import bench_cli

    import varmixup_bench.campaigns.probe as probe
    from varmixup_bench.campaigns.engine import run_campaign

    wd = tmp_path / "wd"
    run_campaign(_plan(tmp_path, "", "a.toml"), wd, show_progress=False)
    real = probe.run_probe

    def spsa_breaks(kind, *args, **kw):
        if kind.fields["attack"] == "spsa":
            raise RuntimeError("view size is not compatible\nmore")
        return real(kind, *args, **kw)

    monkeypatch.setattr(probe, "run_probe", spsa_breaks)
    plan = tmp_path / "b.toml"
    plan.write_text(PLAN.format(extra=MORE))
    code, out, err = bench_cli("campaign", "probe", str(plan), "--workdir", str(wd), "--images", "20", "--no-progress")
    assert code == 1 and "1 probe(s) failed" in err and "RuntimeError: view size is not compatible" in err
    assert {e["fields"]["attack"] for e in probe.Probes.of(wd).events()} == {"pgd10"}  # measured all the same
