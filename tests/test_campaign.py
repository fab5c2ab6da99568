"""Campaigns as data (issue 29, item 4): `bench campaign run|status|compose PLAN.toml`. A plan is checked before any
work; a run is resumable (a rerun trains and evaluates nothing); status lists the missing cells; compose writes a
page whose numbers come from the records, with a PARTIAL banner until every cell is recorded."""
from __future__ import annotations

import csv
import json
import re
import time
from pathlib import Path

import pytest

from tests_cli_helper import bench_cli
from varmixup_bench.results.store import ResultStore
from varmixup_bench.training.cache import WeightCache

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "leaderboards" / "digits-smoke.toml"
# the committed plan with small budgets (the plan itself, at the quick preset's epochs, takes about a minute)
FAST = ('set = { epochs = { erm = 5, mixup = 3 }, test_subset = 120, n_adaptive = 4, n_mi = 8, '
        'worst_case_draws = 2 }\nreference = "paper:cifar10"\n')
EXTRA_PASS = '\n[[pass]]\nname = "eps-curve"\ndefenses = ["erm"]\nattacks = ["pgd10"]\neps = ["16/255"]\n'


def _fast(text: str) -> str:
    out = text.replace('preset = "quick"\n', 'preset = "quick"\n' + FAST, 1)
    assert FAST in out
    return out


def _section(page: str, title: str) -> str:
    return page.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The digits-smoke plan run once: status before, run, status after, a rerun with training and evaluation
    watched, then compose of the plan (complete) and of the plan with one more pass (PARTIAL)."""
    import varmixup_bench.training.runner as runner

    root = tmp_path_factory.mktemp("campaign")
    plan, plus, wd = root / "digits-smoke.toml", root / "digits-smoke-plus.toml", root / "wd"
    plan.write_text(_fast(SMOKE.read_text()))
    plus.write_text(_fast(SMOKE.read_text()) + EXTRA_PASS)
    out = {"plan": plan, "plus": plus, "wd": wd, "page": root / "pages" / "smoke.md",
           "partial": root / "pages" / "partial.md"}
    out["status_before"] = bench_cli("campaign", "status", str(plan), "--workdir", str(wd))
    out["run"] = bench_cli("campaign", "run", str(plan), "--workdir", str(wd), "--no-progress")
    out["records_after_run"] = len(ResultStore(wd).records())
    out["status_after"] = bench_cli("campaign", "status", str(plan), "--workdir", str(wd))
    calls: list[str] = []

    def spy(name, fn):
        def wrapped(*a, **k):
            calls.append(name)
            return fn(*a, **k)
        return wrapped

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "train_classifier", spy("train", runner.train_classifier))
        mp.setattr(runner, "evaluate", spy("evaluate", runner.evaluate))
        out["rerun"] = bench_cli("campaign", "run", str(plan), "--workdir", str(wd), "--no-progress")
    out["rerun_calls"] = calls
    out["compose"] = bench_cli("campaign", "compose", str(plan), "--workdir", str(wd), "--output", str(out["page"]))
    out["compose_partial"] = bench_cli("campaign", "compose", str(plus), "--workdir", str(wd), "--output",
                                       str(out["partial"]))
    return out


def test_a_claim_sets_two_radii_against_each_other_only_when_it_writes_both(tmp_path):
    """A side without eps takes its pass's radius: a claim of pgd10 in an L2 pass against pgd10 at the L∞ default
    is refused with both radii named, and accepted once both sides write eps (or name one radius)."""
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.errors import BenchError

    l2 = '\n[[pass]]\nname = "l2"\ndefenses = ["erm"]\nattacks = ["pgd10"]\nseeds = [0]\nset = { norm = "L2" }\n'
    text = SMOKE.read_text().split("[[claim]]")[0] + l2
    claim = '\n[[claim]]\nbetter = {{ defense = "erm", attack = "pgd10"{a} }}\n' \
            'worse = {{ defense = "erm", attack = "pgd10", pass = "l2"{b} }}\n'
    path = tmp_path / "p.toml"
    path.write_text(text + claim.format(a="", b=""))
    with pytest.raises(BenchError, match=r"better is at 32/255 and worse at L2 [\d.]+ \(a side without eps takes "
                                         r"its pass's radius\): write eps on both sides"):
        load_plan(path)
    plain = tmp_path / "plain.toml"
    plain.write_text(text)
    default_l2 = load_plan(plain).pass_named("l2").settings.eps_for(None, "digits")
    path.write_text(text + claim.format(a=', eps = "32/255"', b=f", eps = {default_l2}"))
    (c,) = load_plan(path).claims
    assert (c.better.norm, c.worse.norm) == ("Linf", "L2")


@pytest.mark.parametrize("edit, expected", [
    (('"erm", "mixup+mi"]', '"erm", "mixup+mii"]'), "unknown inference rule 'mii'"),
    (('"adaptive-pgd10"]', '"adaptive-pgd10", "pgd11"]'), "unknown attack 'pgd11'"),
    (("seeds = [0]", 'seeds = [0]\neps = ["8/2x5"]'), "invalid epsilon '8/2x5'"),
    (('worse = { defense = "erm", attack = "pgd10" }', 'worse = { defense = "erm", attack = "fgsm" }'),
     "missing claim cell erm fgsm"),
    (("seeds = [0]", "seeds = [0]\nset = { trials = 0 }"), "trials must be >= 1"),
    (("seeds = [0]", "seeds = [0]\ndefences = [\"at\"]"), "unknown key 'defences'"),
    (('worse = { defense = "erm", attack = "pgd10" }', 'worse = { defense = "erm", attack = "pgd10" }\nmargin = -6'),
     "margin must be a finite number >= 0"),
    (('preset = "quick"', 'preset = "quick"\nreference = "papr"'), "unknown reference 'papr'"),
    (('preset = "quick"', 'preset = "quick"\nreference = "paper:cifar11"'),
     "reference 'paper' has no dataset 'cifar11'"),
])
def test_a_bad_plan_exits_2_with_one_line_before_any_work(tmp_path, edit, expected):
    plan = tmp_path / "bad.toml"
    text = SMOKE.read_text()
    assert edit[0] in text
    plan.write_text(text.replace(edit[0], edit[1], 1))
    wd = tmp_path / "fresh"
    for command in ("run", "status", "compose"):
        start = time.perf_counter()
        code, out, err = bench_cli("campaign", command, str(plan), "--workdir", str(wd))
        assert code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert expected in err and "bad.toml" in err, err
        assert time.perf_counter() - start < 15
        assert not wd.exists()  # not even created: nothing loaded, trained or stored


def test_the_committed_plan_loads_as_the_issue_states_it():
    from varmixup_bench.campaigns.plan import load_plan

    plan = load_plan(SMOKE)
    assert (plan.name, plan.dataset, plan.preset_name) == ("digits-smoke", "digits", "quick")
    assert [(p.name, p.defenses, p.attacks, p.seeds, p.eps) for p in plan.passes] == [
        ("main", ("erm", "mixup+mi"), ("clean", "pgd10", "adaptive-pgd10"), (0,), None)]
    assert len(plan.cells()) == 6 and not plan.steps
    (claim,) = plan.claims
    assert (claim.better.cell.attack, claim.better.metric, claim.worse.cell.attack, claim.worse.metric) == (
        "clean", "clean", "pgd10", "robust")
    assert claim.worse.cell.eps == pytest.approx(32 / 255)  # no eps given: the dataset's default radius


def test_status_lists_missing_cells_before_the_run_and_none_after(smoke):
    code, out, err = smoke["status_before"]
    assert code == 0, err
    missing = [line for line in out.splitlines() if line.startswith("  pass main: ")]
    assert len(missing) == 6 and "  pass main: erm pgd10 @ 32/255 (seed 0)" in missing
    assert "wall time so far: 0.00 h measured; with the forecast about" in out  # nothing ran yet
    code, out, err = smoke["status_after"]
    assert code == 0, err
    assert "missing cells: none" in out and "pass main: " not in out
    import re

    # after the run: its measured hours, and with nothing left the forecast adds nothing to them
    measured, total = re.search(r"wall time so far: ([\d.]+) h measured; with the forecast about ([\d.]+) h in all",
                                out).groups()
    assert measured == total


def test_run_fills_every_cell_and_a_rerun_trains_and_evaluates_nothing(smoke):
    code, _, err = smoke["run"]
    assert code == 0, err
    assert "6 cell(s) run, 0 already in the store" in err
    assert smoke["records_after_run"] == 6
    code, _, err = smoke["rerun"]
    assert code == 0, err
    assert "0 cell(s) run, 6 already in the store" in err
    assert smoke["rerun_calls"] == []
    assert len(ResultStore(smoke["wd"]).records()) == 6
    events = [json.loads(line) for line in (smoke["wd"] / "campaign-digits-smoke.jsonl").read_text().splitlines()]
    ends = [e for e in events if e["event"] == "end"]
    assert [e["event"] for e in events].count("run") == 2
    assert [(e["step"], e["status"], e["cells_run"]) for e in ends] == [("pass main", "ok", 6), ("pass main", "ok", 0)]
    assert all(e["seconds"] > 0 and e["start"] <= e["time"] for e in ends)


def test_compose_writes_the_page_from_the_records_and_decides_the_claim(smoke):
    from varmixup_bench.results.stats import compare_records, format_interval

    code, out, err = smoke["compose"]
    assert code == 0, err
    assert "(complete)" in out
    page = smoke["page"].read_text()
    assert "PARTIAL" not in page
    recs = {(r["defense"], r["attack"]): r for r in ResultStore(smoke["wd"]).records()}
    clean, pgd = recs[("erm", "clean")], recs[("erm", "pgd10")]
    (row,) = [line for line in _section(page, "Claims").splitlines() if line.startswith("| 1 |")]
    cmp = compare_records(clean, pgd, ("clean", "robust"))
    assert format_interval(clean["clean_acc"], clean["clean_acc_ci_low"], clean["clean_acc_ci_high"]) in row
    assert format_interval(pgd["robust_acc"], pgd["robust_acc_ci_low"], pgd["robust_acc_ci_high"]) in row
    assert f"| {cmp.diff:+.1f} | {cmp.se:.1f} | {cmp.p:.2g} | paired, n=120 |" in row
    assert row.endswith("| **holds** |")
    assert "| erm clean (clean, seed 0, pass main) | erm pgd10 @ 32/255 (robust, seed 0, pass main) |" in row
    # the headline's strongest cell: the lowest robust accuracy of erm's attacks at 32/255, named
    low = min((r for (d, a), r in recs.items() if d == "erm" and a != "clean"), key=lambda r: r["robust_acc"])
    head = _section(page, "Headline")
    assert f"{format_interval(low['robust_acc'], low['robust_acc_ci_low'], low['robust_acc_ci_high'])} " \
           f"{low['attack']}" in head
    # the paper's numbers beside ours (the plan's reference): Table 2's clean and PGD-10 of ERM, ours on digits
    beside = _section(page, "Beside the reference (`paper:cifar10`)")
    (erm,) = [[c.strip() for c in line.strip("|").split("|")] for line in beside.splitlines()
              if line.startswith("| erm ")]
    ours = format_interval(clean["clean_acc"], clean["clean_acc_ci_low"], clean["clean_acc_ci_high"])
    assert erm[:4] == ["erm", "94.5 ± 0.14", ours, "0 ± 0"]
    assert erm[4] == ""  # ours at 8/255: digits' pass ran at 32/255, so the paper's radius has no cell of ours
    # the measured times: the state file's seconds, the records' seconds, the models' per-epoch seconds
    events = [json.loads(line) for line in (smoke["wd"] / "campaign-digits-smoke.jsonl").read_text().splitlines()]
    wall = sum(e["seconds"] for e in events if e["event"] == "end")
    assert f"Wall time: **{wall:.1f} s" in page
    assert f"evaluating the passes' cells {sum(r['seconds'] for r in recs.values()):.1f} s" in page
    assert "{" not in _section(page, "Time (measured)") and re.search(r"Computation: \*\*[\d.]+ s \(", page)
    assert "timed before the stop-aware clock" not in page  # this campaign's passes all record stopped_seconds
    for key in {r["config_hash"] for r in recs.values()}:
        meta = json.loads((WeightCache(smoke["wd"]).folder(key) / "meta.json").read_text())
        seconds = sum(h["seconds"] for h in meta["history"])
        assert f"| {len(meta['history'])} | {seconds:.1f} |" in page and f"`{key}`" in page
    assert "bench campaign run " in page and "bench campaign compose " in page
    assert f"torch threads {clean['threads']}" in page
    # one command, one family-wise 5 %: claims, diagnose findings and each table's bold marks share it (4 families)
    for title in ("Claims", "Headline", "Full matrix"):
        assert "decided at a family-wise 1.25 % (this command's 5 % shared equally by the 4 families" \
            in _section(page, title), title
    assert "family-wise 1.25 %" in _section(page, "Gradient-masking flags (`bench diagnose`'s checks on these cells, "
                                                  "at the page's share)")
    # the long CSV: one row per cell, every record's numbers
    rows = list(csv.DictReader(smoke["page"].with_suffix(".csv").open()))
    assert len(rows) == 6
    assert {(r["defense"], r["attack"]) for r in rows} == set(recs)
    assert all(float(r["robust_acc"]) == pytest.approx(recs[(r["defense"], r["attack"])]["robust_acc"]) for r in rows)


def test_compose_says_partial_and_lists_the_missing_cells_until_complete(smoke):
    code, out, err = smoke["compose_partial"]
    assert code == 0, err
    assert "PARTIAL: 1 cell(s), 0 step(s) missing" in out
    page = smoke["partial"].read_text()
    assert "> **PARTIAL — 1 of 7 cell(s)" in page
    assert "- pass `eps-curve`: erm pgd10 @ 16/255 (seed 0)" in _section(page, "Missing")
    assert "**holds**" in page  # the claim's cells are recorded: its verdict stands, provisional


STEP_PLAN = """
[campaign]
name = "digits-steps"
dataset = "digits"
preset = "quick"
set = { epochs = { erm = 2 }, test_subset = 60, vae_epochs = 1, vae_latent_dim = 4 }

[[pass]]
name = "main"
defenses = ["erm", "varerm"]
attacks = ["clean"]

[[pass]]
name = "psnr"
defenses = ["varerm"]
attacks = ["vae-psnr"]

[[step]]
kind = "converge"
defense = "erm"
attack = "pgd"
steps = [2, 4]
eot = [1]

[[step]]
kind = "vae-figure"

[[step]]
kind = "plot"
name = "fidelity"
plot = "vae-fidelity"

[[claim]]
better = { defense = "erm", attack = "clean" }
worse = { defense = "erm", attack = "clean", metric = "robust" }
"""


def test_steps_run_after_the_passes_are_timed_skipped_when_done_and_shown_on_the_page(tmp_path, monkeypatch):
    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.engine import run_campaign
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.runs import sweep

    used = []
    monkeypatch.setitem(sweep.EXECUTORS._items, "ray", lambda spec, jobs, options=None: (
        used.append(options), sweep.local_executor(spec, jobs))[1])  # --executor ray passes through to the sweep
    path = tmp_path / "steps.toml"
    path.write_text(STEP_PLAN)
    plan = load_plan(path)
    assert [(s.name, s.kind) for s in plan.steps] == [("converge erm", "converge"), ("vae-figure", "vae-figure"),
                                                      ("fidelity", "plot")]
    wd = tmp_path / "wd"
    first = run_campaign(plan, wd, executor="ray", options={"num_cpus": 1}, show_progress=False)
    assert used == [{"num_cpus": 1}, {"num_cpus": 1}] and first.cells_run == 3
    assert first.steps_run == ["converge erm", "vae-figure", "fidelity"]
    again = run_campaign(plan, wd, show_progress=False)
    assert again.cells_run == 0 and again.steps_run == []
    assert again.steps_skipped == ["converge erm", "vae-figure", "fidelity"]
    events = [json.loads(line) for line in (wd / "campaign-digits-steps.jsonl").read_text().splitlines()]
    ends = {e["step"]: e for e in events if e["event"] == "end"}
    assert ends["step converge erm"]["status"] == "ok" and ends["step converge erm"]["result"]["budgets"] == 2
    vae = ends["step vae-figure"]
    assert vae["seconds"] > 0 and Path(vae["outputs"][0]).is_file() and vae["result"]["latent_dim"] == 4
    done = compose(plan, wd, tmp_path / "page" / "steps.md")
    page = done.page.read_text()
    assert done.complete and "PARTIAL" not in page
    assert f"test pixel MSE {vae['result']['test_mse']:.5f}" in page  # read back from the state file
    assert (tmp_path / "page" / "steps-files" / Path(vae["outputs"][0]).name).is_file()  # copied beside the page
    assert "| step `converge erm` |" in page and "MMD-VAE" in _section(page, "Training budget (measured)")
    fidelity = [Path(p).name for p in ends["step fidelity"]["outputs"]]
    assert fidelity == ["campaign-digits-steps-vae-fidelity.png", "campaign-digits-steps-vae-fidelity.csv"]
    assert f"![fidelity](steps-files/{fidelity[0]})" in page and f"[{fidelity[1]}](steps-files/{fidelity[1]})" in page
    table = (tmp_path / "page" / "steps-files" / fidelity[1]).read_text().splitlines()
    assert len(table) == 2 and table[1].startswith('"flat, latent 4, 1 epochs",4,')  # the one VAE of the plan
    (row,) = [line for line in _section(page, "Claims").splitlines() if line.startswith("| 1 |")]
    assert row.endswith("| **within noise** |")  # clean vs robust of the clean cell: the same outcomes
    # a plot step draws the plan's cells only: the converge step's budget grid shares the store, not the plot
    from varmixup_bench.campaigns.steps import StepRun

    plotted = StepRun(plan, plan.steps[2], wd, "cpu", False).records()
    assert sorted((r["defense"], r["attack"]) for r in plotted) == [("erm", "clean"), ("varerm", "clean"),
                                                                   ("varerm", "vae-psnr")]
    assert any(r["attack"].startswith("pgd(") for r in ResultStore(wd).records())


def test_step_arguments_are_checked_when_the_plan_loads(tmp_path):
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.errors import BenchError

    for step, expected in [('kind = "reprot"\ndefense = "erm"', "unknown campaign step kind 'reprot'"),
                           ('kind = "report"', "a report step needs defense"),
                           ('kind = "report"\ndefense = "erm"\nskip = ["ece"]', "cannot skip ece"),
                           ('kind = "report"\ndefense = "erm"\neps_grid = [0.5]', "eps_grid must be a list of strings"),
                           ('kind = "report"\ndefense = "erm"\neps_grid = ["9/2"]', "an L-inf eps must be <= 1"),
                           ('kind = "converge"\ndefense = "erm"\nsteps = [0]', "steps must be a non-empty list"),
                           ('kind = "vae-figure"\ndefense = "erm"', "unknown key 'defense'"),
                           ('kind = "plot"\nplot = "fidelty"', "unknown plot 'fidelty'")]:
        path = tmp_path / "p.toml"
        path.write_text(SMOKE.read_text() + f"\n[[step]]\n{step}\n")
        with pytest.raises(BenchError, match=expected):
            load_plan(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cifar10-regime", "cifar10-paper-regime"])
def test_a_committed_complete_plan_finds_every_cell_in_its_committed_csv(tmp_path, name):
    """A committed leaderboard's CSV holds its plan: restored into an empty workdir, `campaign status` of the plan
    finds every cell stored (the CSV keeps each record's sweep key, so a key the code now computes differently,
    or a cell the CSV lost, shows up as missing)."""
    import os

    from varmixup_bench.campaigns.plan import load_plan

    root = Path(__file__).resolve().parents[1]
    if not (root.parent / "shared" / "datasets" / "cifar10-jpeg.tar.gz").exists():
        pytest.skip("the shared CIFAR-10 tarball is not beside the checkout")
    code, _, err = bench_cli("restore", str(root / "leaderboards" / f"{name}.csv"), "--workdir", str(tmp_path))
    assert code == 0, err
    cwd = os.getcwd()
    os.chdir(root)  # the plan names the data relative to the repository root
    try:
        code, out, err = bench_cli("campaign", "status", f"leaderboards/{name}.toml", "--workdir", str(tmp_path))
    finally:
        os.chdir(cwd)
    assert code == 0, err
    assert re.search(r"^missing cells: none$", out, re.M), out.split("\nmissing cells:")[-1]
    rows = [line for line in out.splitlines() if line.startswith("│ pass ")]
    assert len(rows) == len(load_plan(root / "leaderboards" / f"{name}.toml").passes)
    assert all(line.split("│")[3].strip() == "0" for line in rows), "\n".join(rows)


def test_the_plans_reading_is_placed_on_the_page_and_its_absence_said(tmp_path):
    """`reading = "X.md"` (relative to the plan): the prose is on the composed page under "Reading" (so a recompose
    keeps it), and a plan whose reading is not written yet says so instead of failing."""
    from varmixup_bench.campaigns.compose import compose
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.core.errors import BenchError

    plan_path = tmp_path / "p.toml"
    plan_path.write_text(SMOKE.read_text().replace('preset = "quick"\n', 'preset = "quick"\nreading = "r.md"\n', 1))
    (tmp_path / "r.md").write_text("ERM falls to 0 % under PGD-10: nothing to see.\n")
    page = tmp_path / "page.md"
    compose(load_plan(plan_path), tmp_path / "wd", page, device="cpu")
    assert "## Reading\n\nERM falls to 0 % under PGD-10: nothing to see.\n" in page.read_text()
    (tmp_path / "r.md").unlink()
    compose(load_plan(plan_path), tmp_path / "wd", page, device="cpu")
    assert "## Reading\n\n(not written yet: the plan names `r.md`)" in page.read_text()
    plan_path.write_text(SMOKE.read_text().replace('preset = "quick"\n', 'preset = "quick"\nreading = "r.txt"\n', 1))
    with pytest.raises(BenchError, match="reading 'r.txt' must be a Markdown file"):
        load_plan(plan_path)


def test_training_budget_names_apart_the_models_one_recipe_trained_in_several_ways():
    """A VAE ladder's latents, Mixup at another eta: rows of one name say what differs in their configs (never
    the seed or the epochs, which have columns); a name trained one way stays bare."""
    from varmixup_bench.campaigns.budget import _named_apart

    def row(model, seed, **cfg):
        return {"model": model, "seed": seed, "config": {"seed": seed, "epochs": 10, **cfg}}

    vae = {"arch": "conv", "latent_channels": 8, "latent_stride": 2, "width": 32}
    rows = _named_apart([row("MMD-VAE", 0, **vae), row("MMD-VAE", 0, **{**vae, "latent_channels": 16, "latent_stride": 4}),
                         row("MMD-VAE", 0, latent_dim=64, width=32),
                         row("mixup", 0, recipe_config={"eta": 1.0}), row("mixup", 1, recipe_config={"eta": 1.0}),
                         row("mixup", 0, recipe_config={"eta": 2.0}), row("erm", 0), row("erm", 1)])
    assert [r["model"] for r in rows] == [
        "MMD-VAE (arch=conv, latent_channels=8, latent_stride=2)",
        "MMD-VAE (arch=conv, latent_channels=16, latent_stride=4)", "MMD-VAE (latent_dim=64)",
        "mixup (eta=1)", "mixup (eta=1)", "mixup (eta=2)", "erm", "erm"]
    assert all("config" not in r for r in rows)
    # a Var* classifier's VAE is seeded from the training seed: seeds are not told apart, its epochs are named
    def var(*pairs):
        return [row("varmixup", s, recipe_config={"vae": {"seed": s, "epochs": e, "latent_channels": 8}})
                for s, e in pairs]

    assert [r["model"] for r in _named_apart(var((0, 10), (1, 10), (0, 20)))] == [
        "varmixup (vae_epochs=10)", "varmixup (vae_epochs=10)", "varmixup (vae_epochs=20)"]
    assert [r["model"] for r in _named_apart(var((0, 10), (1, 10)))] == ["varmixup", "varmixup"]


def test_a_rehearsal_runs_the_whole_plan_at_toy_budgets_in_a_workdir_of_its_own(tmp_path):
    """`bench campaign rehearse`: every pass, step and claim of the plan, each model one epoch on 40 test images,
    the page says REHEARSAL; a rerun runs nothing; a workdir holding anything else is refused before any work."""
    from varmixup_bench.campaigns.plan import load_plan
    from varmixup_bench.campaigns.rehearse import MARKER
    from varmixup_bench.config.presets import REHEARSAL, rehearsal_budgets

    plan = load_plan(SMOKE, rehearsal=REHEARSAL)
    assert plan.name == "digits-smoke-rehearsal" and plan.reading is None
    s = plan.passes[0].settings
    assert s.epochs_for("erm") == 1 and s.test_subset == REHEARSAL["test_subset"] and s.n_mi == REHEARSAL["n_mi"]
    # a pass's own set does not lift a toy budget; a dataset of 100 classes gets subsets of at least 2 per class
    own = tmp_path / "own.toml"
    own.write_text(SMOKE.read_text().replace(
        'seeds = [0]', 'seeds = [0]\nset = { test_subset = 60, epochs_default = 9, worst_case_draws = 1 }'))
    s = load_plan(own, rehearsal=REHEARSAL).passes[0].settings
    assert (s.test_subset, s.epochs_for("mixup")) == (REHEARSAL["test_subset"], 1)
    assert s.worst_case_draws == 1  # the plan's own smaller budget stays: its code path is rehearsed too
    # so does the campaign's own: [campaign] set is kept below the budgets by the same rule as a pass's
    top = tmp_path / "top.toml"
    top.write_text(SMOKE.read_text().replace('preset = "quick"\n', 'preset = "quick"\nset = { n_mi = 2, test_subset = 90 }\n', 1))
    s = load_plan(top, rehearsal=REHEARSAL).passes[0].settings
    assert (s.n_mi, s.test_subset) == (2, REHEARSAL["test_subset"])
    assert load_plan(own).passes[0].settings.test_subset == 60
    wide = rehearsal_budgets(100)
    assert (wide["test_subset"], wide["spsa_subset"], wide["train_subset"]) == (200, 100, 1000)
    assert rehearsal_budgets(10) == REHEARSAL
    wd = tmp_path / "rehearsal"
    code, out, err = bench_cli("campaign", "rehearse", str(SMOKE), "--workdir", str(wd), "--no-progress")
    assert code == 0, err
    assert "6 cell(s) run" in out and "1 of 1 claim(s) decided" in out
    page = (wd / "digits-smoke-rehearsal.md").read_text()
    assert "REHEARSAL at toy budgets" in page and "PARTIAL" not in page and (wd / MARKER).is_file()
    assert {r["n_examples"] for r in ResultStore(wd).records()} == {REHEARSAL["test_subset"]}
    code, out, err = bench_cli("campaign", "rehearse", str(SMOKE), "--workdir", str(wd), "--no-progress")
    assert code == 0 and "0 cell(s) run (6 from an earlier rehearsal)" in out, err
    real = tmp_path / "real"
    real.mkdir()
    (real / "results.sqlite").write_text("")
    code, out, err = bench_cli("campaign", "rehearse", str(SMOKE), "--workdir", str(real))
    assert code == 2 and "never beside real results" in err and sorted(p.name for p in real.iterdir()) == ["results.sqlite"]


def test_a_rehearsal_that_fails_names_the_failure_after_composing_what_ran(tmp_path, monkeypatch):
    import varmixup_bench.campaigns.engine as engine
    from varmixup_bench.campaigns.rehearse import rehearse
    from varmixup_bench.core.errors import BenchError

    def boom(*args, **kwargs):
        raise RuntimeError("a step that fails hours in")

    monkeypatch.setattr(engine, "run_campaign", boom)
    with pytest.raises(BenchError, match="the rehearsal stopped: RuntimeError: a step that fails hours in"):
        rehearse(SMOKE, tmp_path / "wd", show_progress=False)
    assert "PARTIAL" in (tmp_path / "wd" / "digits-smoke-rehearsal.md").read_text()


def test_a_masking_flag_names_the_passes_of_its_model_so_a_vae_ladder_reads_apart():
    """One defense and seed trained on four VAEs is four models: each flag names the passes whose cells evaluated
    the model it fired on (a finding's model is its config hash, with the inference settings after a `|`)."""
    from types import SimpleNamespace

    from varmixup_bench.campaigns.compose import finding_lines, passes_of
    from varmixup_bench.views.diagnostics import Finding

    latest = {"k1": {"defense": "varmixup+varmi", "config_hash": "aaa"},
              "k2": {"defense": "varmixup+varmi", "config_hash": "aaa"},
              "k3": {"defense": "varmixup+varmi", "config_hash": "bbb"},
              "k4": {"defense": "varmixup", "config_hash": "bbb"}}
    statuses = [SimpleNamespace(name="vae-a", keys={"c1": "k1"}), SimpleNamespace(name="vae-a-adaptive", keys={"c2": "k2"}),
                SimpleNamespace(name="vae-b", keys={"c3": "k3", "c4": "k4", "c5": "not-recorded"})]
    where = passes_of(statuses, latest)
    assert where == {("varmixup+varmi", "aaa"): ["vae-a", "vae-a-adaptive"], ("varmixup+varmi", "bbb"): ["vae-b"],
                     ("varmixup", "bbb"): ["vae-b"]}
    found = [Finding("oblivious-overstates", "cifar10", "varmixup+varmi", (("pgd10", 0.03),), "68% > 3%", model="aaa",
                     seed="0"),
             Finding("accuracy-rises-with-eps", "cifar10", "varmixup+varmi", (("pgd10", 0.03),), "76% > 72%",
                     model="bbb|lambda_mi=0.5", seed="0"),
             Finding("oblivious-overstates", "cifar10", "mixup+mi", (("pgd10", 0.03),), "50% > 4%", model="ccc", seed="1")]
    assert finding_lines(found, where) == [
        "- ⚠ cifar10 varmixup+varmi (seed 0; passes `vae-a`, `vae-a-adaptive`) `oblivious-overstates`: 68% > 3%",
        "- ⚠ cifar10 varmixup+varmi (seed 0; pass `vae-b`) `accuracy-rises-with-eps`: 76% > 72%",
        "- ⚠ cifar10 mixup+mi (seed 1) `oblivious-overstates`: 50% > 4%"]  # no pass recorded it: the seed alone
