"""`bench report`: one page per defense with the checks of Carlini et al. 2019, "On Evaluating Adversarial
Robustness" — each item's numbers with 95 % intervals, a verdict, and the plots. Evaluations already in the store
are read, missing ones are run (the plan, with an estimate, is printed first).

The gradient-masking items are decided by varmixup_bench.views.diagnostics: `diagnose` runs on a leaderboard frame of exactly the
report's records, and an item is flagged when, and only when, a finding of one of its checks (ITEM_CHECKS) exists
(its Holm–Bonferroni family at the report's share of 5 %, REPORT_ALPHA: the page flags nothing that `bench
diagnose` on the same records would not; SPSA and the transfer attack below every gradient attack are its
`blackbox-beats-whitebox`). The report's own tests (the worst case over draws, corruptions against clean, the ECE
against its threshold) are its second family (own_tests); clean accuracy against
chance keeps its own rule, stated in its verdict."""
from __future__ import annotations

import html
import re
import shutil
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from varmixup_bench.core.errors import BenchError
from varmixup_bench.results.stats import (compare_records, ece_p, family_share, format_interval, holm,
                                         one_sided_p, shown_pair)

# a report decides two families of comparisons: bench diagnose's checks (items 1-4; SPSA and the transfer attack
# stronger than the gradient attacks among them) and its own tests (worst case below the mean, corruptions above
# clean, ECE against its threshold); they share its 5 %
REPORT_ALPHA = family_share(2)

CHECKLIST = (
    "eps-curve", "convergence", "adaptive-vs-oblivious", "blackbox-transfer-vs-whitebox", "worst-case-draws",
    "clean-and-corruptions", "calibration",
)
LARGE_EPS = 0.5  # where a working attack should leave ~0 % (half the pixel range)
# the varmixup_bench.views.diagnostics checks that decide each masking item: a finding of any of them flags it
ITEM_CHECKS = {
    "eps-curve": ("accuracy-rises-with-eps", "large-eps-not-zero"),
    "convergence": ("not-converged", "pgd50-above-pgd10"),
    "adaptive-vs-oblivious": ("oblivious-overstates", "adaptive-above-oblivious"),
    "blackbox-transfer-vs-whitebox": ("blackbox-beats-whitebox",),
}
MARKS = {"pass": "✅ pass", "flag": "⚠ flag", "n/a": "– n/a"}  # verdict -> mark; the reason says what was found


@dataclass
class Item:
    """One checklist entry: what it asks, the measured numbers, the verdict (pass | flag | n/a) and what was
    found, in words that agree with the verdict."""

    key: str
    question: str
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (what, value)
    verdict: str = "pass"
    reason: str = ""
    header: str = "accuracy % [95 % CI]"  # what the numbers' column holds
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file in the report folder, caption)
    findings: list = field(default_factory=list)  # the varmixup_bench.views.diagnostics findings behind a flag

    @property
    def mark(self) -> str:
        return MARKS[self.verdict]


def _ci(rec: dict, which: str = "robust") -> str:
    if which == "worst":
        return format_interval(rec["robust_acc_worst"], rec["robust_acc_worst_ci_low"], rec["robust_acc_worst_ci_high"])
    return format_interval(rec[f"{which}_acc"], rec[f"{which}_acc_ci_low"], rec[f"{which}_acc_ci_high"])


def _large_eps_text(rec: dict | None, interval: bool = False) -> str:
    """What the large-eps check tested (diagnostics.large_eps): a randomised record's worst case over draws where
    it has one, else its accuracy; quoting the mean over draws beside a verdict on the worst case read "12.0
    [10.1, 14.2] %, not significantly above 5 %"."""
    if rec is None:
        return "?"
    from varmixup_bench.views.diagnostics import classified_with_draws

    worst = (classified_with_draws(rec) and rec.get("robust_acc_worst") is not None
             and rec.get("robust_acc_worst") == rec.get("robust_acc_worst"))
    if worst:
        value = _ci(rec, "worst") if interval else f"{float(rec['robust_acc_worst']):.1f}"
        return f"{value} % in the worst case over draws (mean {float(rec['robust_acc']):.1f} %)"
    return f"{_ci(rec)} %" if interval else _pct(rec)


def _below_p(a: dict, b: dict, which=("robust", "robust")) -> float:
    """One-sided p of "a is below b" (paired on the same images where both keep per-image results)."""
    return one_sided_p(compare_records(b, a, (which[1], which[0])))


def own_tests(ev: "Evidence", calibration_p: float | None = None) -> dict[str, bool]:
    """The report's own tests, decided together (Holm–Bonferroni at REPORT_ALPHA): "worst" (the worst case over
    draws below the mean), "corruptions"
    (corrupted images above clean ones), "calibration" (the ECE differs from its threshold: `calibration_p`,
    stats.ece_p's bootstrap, which judge runs once for this test and the page's item); each key present when its
    records are."""
    gradient = [r for r in ev.white + ev.grid if r.get("robust_acc") is not None]
    pvalues: dict[str, float] = {}
    worst = [r for r in gradient if r.get("robust_acc_worst") is not None]
    if ev.stochastic and worst:
        strongest = min(worst, key=lambda r: r["robust_acc_worst"])
        pvalues["worst"] = _below_p(strongest, strongest, ("worst", "robust"))
    if ev.corruptions is not None:
        pvalues["corruptions"] = _below_p(ev.clean, ev.corruptions, ("clean", "robust"))
    if calibration_p is not None:
        pvalues["calibration"] = calibration_p
    return dict(zip(pvalues, holm(list(pvalues.values()), REPORT_ALPHA)))


# the cells a report may leave out (`skip`): the ones another evaluation stands in for, or a claim does not need
SKIPPABLE = ("spsa", "transfer", "surrogate-pgd50", "corruptions")
EPS_GRID = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255, LARGE_EPS)


@dataclass
class ReportOptions:
    """What a report evaluates beyond the preset's radius: the eps curve's radii (L-inf; the preset's is always
    added), the convergence grid, the transfer source, the ECE threshold, and the cells it leaves out."""

    eps_grid: tuple[float, ...] = EPS_GRID
    steps: tuple[int, ...] = (10, 20, 50)
    eot: tuple[int, ...] = (1, 8)
    restarts: tuple[int, ...] = (1,)
    transfer_from: str = "erm"
    ece_threshold: float = 10.0
    skip: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.eps_grid or any(not 0 <= float(e) <= 1 for e in self.eps_grid):
            raise BenchError(f"the report's eps grid must be L-inf radii in [0, 1], at least one; got "
                             f"{list(self.eps_grid)}")
        unknown = sorted(set(self.skip) - set(SKIPPABLE))
        if unknown:
            raise BenchError(f"cannot skip {', '.join(unknown)}: a report may leave out only "
                             f"{', '.join(SKIPPABLE)}")

    def keeps(self, attack: str) -> bool:
        """Whether the report evaluates this optional cell (`transfer:erm` is `transfer`)."""
        return attack.split(":")[0] not in self.skip


# ---- the output folder ----

def check_output_folder(output: Path | str | None) -> None:
    """`--output` is the folder for report.md, report.html and the PNGs: refuse a file (an existing one, or a path
    with a suffix such as report.md) before any training."""
    if output is None:
        return
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise BenchError(f"--output {output} is an existing file; give a folder: bench report writes report.md, "
                         "report.html and the PNGs into it")
    if not path.exists() and path.suffix:
        raise BenchError(f"--output {output} looks like a file name ({path.suffix}); give a folder, e.g. --output "
                         f"{path.with_suffix('')}: bench report writes report.md, report.html and the PNGs into it")


# ---- the cells and the plan ----

@dataclass
class Cell:
    """One evaluation the report needs (eps/norm None: the preset's, as `bench converge` and `bench run` ask)."""

    attack: str
    eps: float | None
    norm: str | None
    stored: bool = False
    estimate: float | None = None  # seconds, for a cell to run; None: no similar attack stored


@dataclass
class Plan:
    cells: list[Cell]

    @property
    def to_run(self) -> list[Cell]:
        return [c for c in self.cells if not c.stored]

    def summary(self) -> str:
        n, run = len(self.cells), self.to_run
        head = f"plan: {n} cells: {n - len(run)} stored (reused), {len(run)} to run"
        if not run:
            return head + "; nothing to run"
        known = [c.estimate for c in run if c.estimate is not None]
        if not known:
            return head + "; estimate unknown (no stored record of a similar attack)"
        total = _duration(sum(known))
        if len(known) == len(run):
            return head + f"; estimate ~{total} (from stored seconds of similar attacks)"
        return head + (f"; estimate ≥ {total} for {len(known)} of them, unknown for {len(run) - len(known)} "
                       "(no stored record of a similar attack)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def report_cells(eps: float, stochastic: bool, opt: ReportOptions) -> list[Cell]:
    """Every evaluation of the report, in the order it runs, each once."""
    from varmixup_bench.attacks.base import attacks_of_kind
    from varmixup_bench.runs.converge import budget_specs

    strong = attacks_of_kind("adaptive-gradient" if stochastic else "gradient", steps=10)[0]  # adaptive-pgd10, pgd10
    cells = [Cell(strong, e, "Linf") for e in sorted(set(opt.eps_grid) | {eps})]
    cells += [Cell(spec, None, None) for spec in budget_specs("adaptive-pgd", opt.steps, opt.eot, opt.restarts,
                                                             stochastic)]
    if stochastic:
        cells.append(Cell("pgd10", eps, "Linf"))
    cells += [Cell(a, eps, "Linf") for a in ("adaptive-apgd" if stochastic else "pgd50", "surrogate-pgd50", "spsa",
                                             f"transfer:{opt.transfer_from}") if opt.keeps(a)]
    cells += [Cell(a, None, "Linf") for a in ("clean", "corruptions", "ece") if opt.keeps(a)]
    seen, out = set(), []
    for c in cells:
        if (c.attack, c.eps, c.norm) not in seen:
            seen.add((c.attack, c.eps, c.norm))
            out.append(c)
    return out


def family(attack: str) -> str:
    """`adaptive-pgd(eot=8,…)`, `adaptive-pgd10` -> adaptive-pgd; `transfer:erm` -> transfer: attacks whose cost
    per budget unit is alike."""
    return re.sub(r"\d+$", "", str(attack).split("(")[0].split(":")[0])


def _units(config: Any, stochastic: bool) -> int:
    """steps × EOT draws × restarts of an attack configuration (1 for attacks without a budget)."""
    from varmixup_bench.results.record import field_value

    config = field_value(config)
    if not isinstance(config, dict):
        return 1
    eot = int(config.get("eot") or 1) if stochastic else 1
    return max(1, int(config.get("steps") or 1) * eot * int(config.get("restarts") or 1))


def estimate_seconds(attack: str, config: dict, stochastic: bool, records: list[dict], model: str | None = None,
                     defense: str | None = None, dataset: str | None = None) -> float | None:
    """Seconds a cell should take: the median time per budget unit (steps × EOT draws × restarts) of stored
    records of the same attack family, preferring this model's, then this defense's, then this dataset's, times
    the cell's units; None when none is stored."""
    timed = [r for r in records if family(r.get("attack", "")) == family(attack) and not r.get("same_as")
             and isinstance(r.get("seconds"), (int, float)) and r["seconds"] > 0]
    for pick in (lambda r: model is not None and r.get("config_hash") == model,
                 lambda r: defense is not None and r.get("defense") == defense and r.get("dataset") == dataset,
                 lambda r: dataset is not None and r.get("dataset") == dataset):
        similar = [r for r in timed if pick(r)]
        if similar:
            per_unit = statistics.median(r["seconds"] / _units(r.get("attack_config"), bool(r.get("stochastic")))
                                         for r in similar)
            return per_unit * _units(config, stochastic)
    return None


def make_plan(defense, cells: list[Cell], workdir: Path, stochastic: bool) -> Plan:
    """Which cells the store already holds (the same evaluation key as stored_or_evaluate, or the named attack
    that runs a budget exactly) and an estimate for the others."""
    from varmixup_bench.attacks.spec import build_attack, named_presets
    from varmixup_bench.results.record import evaluation_key
    from varmixup_bench.results.store import ResultStore

    records = ResultStore(workdir).records()
    hashes = {r.get("eval_hash") for r in records}
    settings = defense.info["settings"]
    test = defense.dataset.test
    planned: set[str] = set()  # run earlier in this report: a budget that a named attack runs exactly reuses it
    for cell in cells:
        norm = cell.norm or settings.norm
        try:
            atk = build_attack(cell.attack, settings.eps_for(norm) if cell.eps is None else cell.eps, settings.step,
                               settings, norm)
            keys = {evaluation_key(defense, a, test, settings.trials, settings.seed) for a in [atk, *named_presets(atk)]}
        except Exception:  # noqa: BLE001 (a plan is a forecast: the run itself reports a bad cell)
            continue
        cell.stored = bool(keys & (hashes | planned))
        planned |= keys
        if not cell.stored:
            cell.estimate = estimate_seconds(cell.attack, atk.config(), stochastic, records,
                                             defense.info["config_hash"], defense.spec, defense.dataset.name)
    return Plan(cells)


# ---- the evidence and the verdicts ----

@dataclass
class Evidence:
    """The records the verdicts are decided on (one trained model)."""

    stochastic: bool
    strong: str  # the white-box attack of the eps curve: adaptive-pgd10 for a randomised defense, else pgd10
    chance: float  # percent
    curve: list[dict]
    grid: list[dict]
    oblivious: dict | None  # pgd10 on F_w (randomised defenses)
    adaptive: dict  # the strong attack at the preset's eps
    white: list[dict]  # the strong attack, APGD or PGD-50, surrogate PGD-50 (unless skipped)
    spsa: dict | None  # None: skipped (ReportOptions.skip), as transfer and corruptions
    transfer: dict | None
    clean: dict
    corruptions: dict | None
    ece: dict

    def records(self) -> list[dict]:
        out, seen = [], set()
        for r in [*self.curve, *self.grid, self.oblivious, self.adaptive, *self.white, self.spsa, self.transfer,
                  self.clean, self.corruptions, self.ece]:
            if r is not None and id(r) not in seen:
                seen.add(id(r))
                out.append(r)
        return out


def report_findings(records: list[dict]) -> list:
    """varmixup_bench.views.diagnostics' findings on a leaderboard frame of exactly these records: what `bench diagnose` says of
    them."""
    from varmixup_bench.views.leaderboard import flagged_frame

    return flagged_frame(records, alpha=REPORT_ALPHA)[1]


def _pct(rec: dict | None) -> str:
    return "?" if rec is None else f"{float(rec['robust_acc']):.1f} %"


def _p(finding) -> str:
    m = re.search(r"\(p ([=<] [^)]+)\)\s*$", finding.message)
    return f" (p {m.group(1)})" if m else ""


def finding_reason(finding, lookup: dict) -> str:
    """What a diagnostics finding found, in the report's words, with the numbers of its rows."""
    rows = [lookup.get((a, round(float(e), 8))) for a, e in finding.rows]
    (a0, e0), *rest = finding.rows
    a1 = rest[0][0] if rest else ""
    r0, r1 = rows[0], rows[1] if len(rows) > 1 else None
    check = finding.check
    if check == "oblivious-overstates":
        text = (f"oblivious overstates: {_pct(r0)} oblivious ({a0}) vs {_pct(r1)} adaptive ({a1}); report the "
                "adaptive number, not the oblivious one")
    elif check == "adaptive-above-oblivious":
        text = f"adaptive weaker than oblivious: {_pct(r0)} adaptive ({a0}) vs {_pct(r1)} oblivious ({a1})"
    elif check == "accuracy-rises-with-eps" and not rest:  # the smallest radius against the record's clean
        clean = "?" if r0 is None else f"{float(r0['clean_acc']):.1f} %"
        text = (f"accuracy above clean: {a0} {_pct(r0)} at ε={_eps(e0)} vs {clean} clean on the same images; "
                "gradients may be masked")
    elif check == "accuracy-rises-with-eps":
        text = (f"accuracy rises with ε: {a0} {_pct(r1)} at ε={_eps(rest[0][1])} vs {_pct(r0)} at ε={_eps(e0)}; "
                "gradients may be masked")
    elif check == "large-eps-not-zero":  # the check tests a randomised record's worst case over draws
        text = (f"not ~0 at large ε: {a0} leaves {_large_eps_text(r0)} at ε={_eps(e0)}, significantly above 5 %; "
                "gradients may be masked")
    elif check == "not-converged":
        text = (f"not converged: {a1} {_pct(r1)} vs {a0} {_pct(r0)}; the larger budget still lowers accuracy")
    elif check == "pgd50-above-pgd10":
        text = f"more steps help the defense: pgd50 {_pct(r0)} vs pgd10 {_pct(r1)}"
    elif check == "blackbox-beats-whitebox":
        who = "SPSA" if a0 == "spsa" else a0
        text = (f"{who} beats every gradient attack: {_pct(r0)} {who} vs {_pct(r1)} {a1}; gradients are not "
                "reaching the adversary")
    else:
        return finding.message
    return text + _p(finding)


def judge(ev: Evidence, opt: ReportOptions, findings: list | None = None) -> list[Item]:
    """The checklist items of one model's records; the masking items from `findings` (default: diagnose on a
    leaderboard frame of exactly these records)."""
    findings = report_findings(ev.records()) if findings is None else findings
    calibration = ece_p(ev.ece, opt.ece_threshold) if ev.ece is not None else None  # one bootstrap for both uses
    rejected = own_tests(ev, None if calibration is None else calibration[1])
    lookup = {(r["attack"], round(float(r["eps"]), 8)): r for r in ev.records() if r.get("eps") is not None}

    def flagged(item: Item) -> bool:
        item.findings = [f for f in findings if f.check in ITEM_CHECKS.get(item.key, ())]
        if item.findings:
            item.verdict = "flag"
            item.reason = "; ".join(dict.fromkeys(finding_reason(f, lookup) for f in item.findings))
        return bool(item.findings)

    items = []
    # 1. the eps curve falls and reaches ~0 at a large eps
    item = Item("eps-curve", f"Does {ev.strong} accuracy fall as ε grows and reach ~0 % at ε = {LARGE_EPS}?",
                [(f"{ev.strong} ε={_eps(r['eps'])}", _ci(r)) for r in ev.curve if r is not None])
    large = [r for r in ev.curve if r is not None and r["eps"] >= LARGE_EPS]
    if not flagged(item):
        item.reason = "falls with ε: no rise beyond noise" + (
            f"; at ε={_eps(large[-1]['eps'])} {_large_eps_text(large[-1], interval=True)}, not significantly "
            "above 5 %" if large else
            f"; ε = {LARGE_EPS} is not on the eps grid, so whether it reaches ~0 % was not checked")
    items.append(item)

    # 2. convergence: more steps, EOT draws and restarts do not lower accuracy further
    item = Item("convergence", "Do more steps, EOT draws and restarts stop lowering accuracy (adaptive PGD)?",
                [(r["attack"], _ci(r)) for r in ev.grid])
    if not flagged(item):
        item.reason = ("converged: on no axis does the largest budget lower accuracy significantly from the one "
                       "before it (paired test on the same images, Holm-corrected with the page's other comparisons)")
    items.append(item)

    # 3. adaptive <= oblivious
    item = Item("adaptive-vs-oblivious", "Is the adaptive attack at least as strong as the oblivious one?")
    if ev.stochastic and ev.oblivious is not None:
        item.numbers = [(f"{ev.oblivious['attack']} (oblivious, F_w only)", _ci(ev.oblivious)),
                        (ev.adaptive["attack"], _ci(ev.adaptive))]
        if not flagged(item):
            item.reason = f"agree within noise: {_pct(ev.oblivious)} oblivious vs {_pct(ev.adaptive)} adaptive"
    else:
        item.numbers = [(f"{ev.adaptive['attack']} (white-box = adaptive)", _ci(ev.adaptive))]
        if not flagged(item):
            item.verdict = "n/a"
            item.reason = ("not applicable: deterministic defense, the white-box attack already sees the whole "
                           "defended predictor")
    items.append(item)

    # 4. black-box and transfer attacks are not stronger than white-box / adaptive ones
    gradient = [r for r in ev.white + ev.grid if r.get("robust_acc") is not None]
    best = min(gradient, key=lambda r: r["robust_acc"])
    others = [(f"spsa (n={r['n_examples']})" if r is ev.spsa else r["attack"], r)
              for r in (ev.spsa, ev.transfer) if r is not None]
    item = Item("blackbox-transfer-vs-whitebox", "Are gradient-free (SPSA) and transfer attacks no stronger than "
                "the strongest gradient attack?",
                [(r["attack"], _ci(r)) for r in ev.white] + [(what, _ci(r)) for what, r in others])
    if not others:  # diagnose's blackbox-beats-whitebox, on SPSA or the transfer attack, flags it (below)
        item.verdict, item.reason = "n/a", "not measured"
    elif not flagged(item):
        names = " and ".join(f"{'SPSA' if r is ev.spsa else r['attack']} ({_pct(r)})" for _, r in others)
        item.reason = (f"{names} stay{'s' if len(others) == 1 else ''} within noise of or above the strongest "
                       f"gradient attack ({best['attack']}, {_pct(best)})")
    left_out = [a for a in ("spsa", "transfer", "surrogate-pgd50") if not opt.keeps(a)]
    if left_out:  # whatever the verdict: the page says which of its cells it did not run
        item.reason += f"; left out (skip): {', '.join(left_out)}"
    items.append(item)

    # 5. worst case over the defense's randomness (not a masking check: the report's own test)
    strongest = min([r for r in gradient if r.get("robust_acc_worst") is not None] or gradient,
                    key=lambda r: r.get("robust_acc_worst", r["robust_acc"]))
    has_worst = strongest.get("robust_acc_worst") is not None
    item = Item("worst-case-draws", "How many images survive every draw of the defense's randomness?",
                [(f"{strongest['attack']} mean over draws", _ci(strongest))]
                + ([(f"{strongest['attack']} correct in all {strongest.get('draws', 1)} draws", _ci(strongest, "worst"))]
                   if has_worst else []))
    if not ev.stochastic:
        item.verdict, item.reason = "n/a", "not applicable: deterministic defense, the worst case is the mean"
    elif has_worst and rejected.get("worst"):
        item.verdict, item.reason = "flag", (
            f"worst case below the mean: {float(strongest['robust_acc_worst']):.1f} % correct in all "
            f"{strongest.get('draws', 1)} draws vs {_pct(strongest)} on average; part of the reported robustness is "
            "the luck of the draw, report both")
    elif has_worst:
        item.reason = (f"worst case within noise of the mean: {float(strongest['robust_acc_worst']):.1f} % vs "
                       f"{_pct(strongest)}")
    else:
        item.verdict, item.reason = "n/a", "no worst case over draws recorded"
    items.append(item)

    # 6. clean and corruption accuracy (not a masking check)
    clean, corr = ev.clean, ev.corruptions
    item = Item("clean-and-corruptions", "Clean accuracy above chance, and corruption accuracy no higher than clean?",
                [("clean", _ci(clean, "clean"))]
                + ([(f"corruptions (15 × 5, n={corr['n_examples']})", _ci(corr))] if corr is not None else []))
    if clean["clean_acc_ci_low"] <= ev.chance:
        item.verdict, item.reason = "flag", (f"not above chance: clean {clean['clean_acc']:.1f} % vs chance "
                                             f"{ev.chance:.0f} %")
    elif corr is None:
        item.reason = (f"clean {clean['clean_acc']:.1f} % is above chance ({ev.chance:.0f} %); corruptions were "
                       "left out (skip)")
    elif rejected.get("corruptions"):
        shown_corr, shown_clean, where = shown_pair(corr, clean, ("robust", "clean"))  # the images tested
        item.verdict, item.reason = "flag", (f"corrupted images classified better than clean ones: "
                                             f"{shown_corr:.1f} % vs {shown_clean:.1f} %{where}")
    else:
        cost = compare_records(clean, corr, ("clean", "robust"))  # paired on the images both evaluated
        item.reason = (f"clean {clean['clean_acc']:.1f} % is above chance ({ev.chance:.0f} %); corruptions cost "
                       f"{cost.diff:.1f} ± {1.96 * cost.se:.1f} points (95 % interval of the paired difference)")
    items.append(item)

    # 7. calibration (not a masking check)
    ece = ev.ece
    shown = (format_interval(calibration[0], *calibration[3:], digits=2) if calibration is not None
             else f"{ece['value']:.2f}")
    item = Item("calibration", f"Is the defended predictor calibrated (ECE ≤ {opt.ece_threshold:g} %)?",
                [("ECE, 15 bins (%) [95 % bootstrap CI]" if calibration is not None else "ECE, 15 bins (%)", shown),
                 ("accuracy of the calibrated predictions (%) [95 % CI]", _ci(ece, "clean"))], header="value")
    thr = f"{opt.ece_threshold:g} %"
    if "calibration" not in rejected:  # no per-image confidences: the estimate alone, said so
        above = ece["value"] > opt.ece_threshold
        item.verdict = "flag" if above else "pass"
        item.reason = (f"{'miscalibrated' if above else 'calibrated'}: ECE {ece['value']:.2f} % "
                       f"{'>' if above else '≤'} {thr} (the record keeps no per-image confidences, or of a randomised "
                       "predictor's several trials only their mean: not tested)")
    elif not rejected["calibration"]:
        item.verdict, item.reason = "n/a", (f"undecided: ECE {shown} % is within noise of {thr} (bootstrap of the "
                                            "images, Holm-corrected with the page's own tests)")
    elif calibration[2]:  # rejected, on the estimate's side of the threshold (ece_p's z test)
        item.verdict, item.reason = "flag", f"miscalibrated: ECE {shown} % is significantly above {thr}"
    else:
        item.reason = f"calibrated: ECE {shown} % is significantly below {thr}"
    items.append(item)
    return items


def build_report(defense, workdir: Path, options: ReportOptions | None = None, show_progress: bool = True,
                 figures_dir: Path | None = None) -> list[Item]:
    """Print the plan, run what is missing (one progress bar across the cells) and return the checklist items
    for this defense at the preset's eps."""
    from varmixup_bench.runs.converge import plot_convergence, plot_convergence_differences
    from varmixup_bench.views.plots import plot
    from varmixup_bench.core.progress import progress, stderr_console
    from varmixup_bench.training.runner import stored_or_evaluate

    opt = options or ReportOptions()
    workdir = Path(workdir)
    eps = float(defense.info["settings"].eps_for("Linf"))  # the preset's radius, else the dataset's (as bench run)
    test = defense.dataset.test
    stochastic = defense.verify_randomness(test.x[:min(len(test), 64)].to(defense.device))
    from varmixup_bench.attacks.base import attacks_of_kind

    strong = attacks_of_kind("adaptive-gradient" if stochastic else "gradient", steps=10)[0]  # adaptive-pgd10, pgd10
    figures_dir = Path(figures_dir or workdir)

    cells = report_cells(eps, stochastic, opt)
    plan = make_plan(defense, cells, workdir, stochastic)
    stderr_console.print(plan.summary(), highlight=False, soft_wrap=True)
    got: dict[tuple, dict[str, Any]] = {}
    with progress(show_progress) as bar:
        task = bar.add_task(f"report {defense.spec}", total=len(cells), info="")
        for cell in cells:
            bar.update(task, info=cell.attack + ("" if cell.eps is None else f" ε={_eps(cell.eps)}"))
            got[(cell.attack, cell.eps, cell.norm)] = stored_or_evaluate(
                defense, cell.attack, eps=cell.eps, norm=cell.norm, workdir=workdir, show_progress=show_progress)
            bar.advance(task)

    def rec(attack: str, e: float | None = eps, norm: str | None = "Linf") -> dict | None:
        return got[(attack, e, norm)] if opt.keeps(attack) else None

    grid_cells = [c for c in cells if c.eps is None and c.norm is None]
    ev = Evidence(stochastic=stochastic, strong=strong, chance=100.0 / defense.dataset.num_classes,
                  curve=[rec(strong, e) for e in sorted(set(opt.eps_grid) | {eps})],
                  grid=[rec(c.attack, None, None) for c in grid_cells],
                  oblivious=rec("pgd10") if stochastic else None, adaptive=rec(strong),
                  white=[r for r in (rec(strong), rec("adaptive-apgd" if stochastic else "pgd50"),
                                     rec("surrogate-pgd50")) if r is not None],
                  spsa=rec("spsa"), transfer=rec(f"transfer:{opt.transfer_from}"), clean=rec("clean", None),
                  corruptions=rec("corruptions", None), ece=rec("ece", None))
    items = judge(ev, opt)

    # the figure of the very records the page's table judges (ev.curve): the store also holds this trained model
    # under other inference settings (a lambda_MI sweep keeps the config hash), which must not take a point
    by_key = {it.key: it for it in items}
    plot([r for r in ev.curve if r is not None], "eps", figures_dir / "eps.png", strong, defense.dataset.name,
         defense.spec)
    by_key["eps-curve"].figures.append(("eps.png", f"{strong} accuracy against ε (symmetric-log axis, ticked at the "
                                                   "radii measured), 95 % intervals"))
    plot_convergence(ev.grid, figures_dir / "converge.png", defense.spec, defense.dataset.name, "adaptive-pgd")
    by_key["convergence"].figures.append(("converge.png", "accuracy against attack steps, one line per EOT count, "
                                          "95 % intervals of each accuracy"))
    try:
        plot_convergence_differences(ev.grid, figures_dir / "converge-differences.png", defense.spec,
                                     defense.dataset.name, "adaptive-pgd")
        by_key["convergence"].figures.append((
            "converge-differences.png", "what the convergence test uses: the paired difference between successive "
            "budgets (larger − smaller) with its 95 % interval; filled red: the steps the not-converged check "
            "decides. The test is paired: every budget attacks the same images, so their sampling error cancels in "
            "the difference, and two accuracies whose intervals overlap completely can still differ significantly. "
            "Each interval here is uncorrected; the check also corrects for the page's other comparisons "
            "(Holm–Bonferroni), so an interval just left of 0 may still pass."))
    except BenchError:  # a single budget: nothing to difference
        pass
    source = (ev.ece.get("details") or {}).get("figure") if isinstance(ev.ece.get("details"), dict) else None
    if source and Path(source).is_file():
        shutil.copyfile(source, figures_dir / "reliability.png")
        by_key["calibration"].figures.append(("reliability.png", "reliability diagram: accuracy against confidence "
                                              "in 15 bins; the diagonal is perfect calibration"))
    return items


def _eps(e: float) -> str:
    from varmixup_bench.views.leaderboard import eps_label

    return eps_label(float(e))


def _header_text() -> str:
    from varmixup_bench.results.stats import TRIAL_INTERVAL_NOTE

    return ("Checklist after Carlini et al. 2019, *On Evaluating Adversarial Robustness*. Accuracies are % of the "
            f"defended predictor with 95 % intervals ({TRIAL_INTERVAL_NOTE.split(': ', 1)[1]}). Items 1–4 are "
            "decided by `bench diagnose` on exactly these records (paired tests on the same images where possible, "
            "Holm–Bonferroni across all its comparisons): an item is flagged when and only when one of its checks "
            "finds something (SPSA and the transfer attack stronger than the gradient attacks are its "
            "`blackbox-beats-whitebox`). The report's own tests (the worst case over draws below the mean, "
            "corruptions above clean, the ECE against its threshold by a bootstrap of the images) are a second "
            "family, decided together the same "
            f"way; the two families share the page's family-wise 5 %, {REPORT_ALPHA * 100:.3g} % each. Clean "
            "accuracy against chance uses the rule stated in its verdict. ✅ pass: nothing found; ⚠ flag: a problem "
            "found, said in the verdict; – n/a: the check does not apply, or (calibration) the ECE is within noise "
            "of its threshold.")


def render_markdown(defense, items: list[Item]) -> str:
    s = defense.info["settings"]
    head = [f"# Robustness report: {defense.spec} on {defense.dataset.name}", "",
            f"Model {defense.info['config_hash']}, preset `{s.name}`, ε = {_eps(s.eps_for('Linf'))} (L∞), "
            f"{'randomised' if defense.stochastic else 'deterministic'} defended predictor; "
            f"written {datetime.now(timezone.utc).isoformat(timespec='seconds')} by `bench report`.", "",
            _header_text(), "", "| # | check | verdict | found |", "| --- | --- | --- | --- |"]
    for i, it in enumerate(items, 1):
        head.append(f"| {i} | {it.key} | {it.mark} | {it.reason} |")
    body = []
    for i, it in enumerate(items, 1):
        body += ["", f"## {i}. {it.key}: {it.mark}", "", it.question, "",
                 f"| measurement | {it.header} |", "| --- | --- |"]
        body += [f"| {what} | {value} |" for what, value in it.numbers]
        body += ["", f"Verdict: **{it.mark}** — {it.reason}."]
        for name, caption in it.figures:
            body += ["", f"![{it.key}]({name})", "", f"*{caption}* ([{name}]({name}))"]
    return "\n".join(head + body) + "\n"


def render_html(defense, items: list[Item]) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>{html.escape(it.key)}</td><td class='{_css(it)}'>{html.escape(it.mark)}"
                   f"</td><td>{html.escape(it.reason)}</td></tr>" for i, it in enumerate(items, 1))
    sections = ""
    for i, it in enumerate(items, 1):
        nums = "".join(f"<tr><td>{html.escape(w)}</td><td>{html.escape(v)}</td></tr>" for w, v in it.numbers)
        figs = "".join(f"<figure><a href='{html.escape(n)}'><img src='{html.escape(n)}' alt='{html.escape(it.key)}'>"
                       f"</a><figcaption>{html.escape(c)}</figcaption></figure>" for n, c in it.figures)
        sections += (f"<h2>{i}. {html.escape(it.key)}: <span class='{_css(it)}'>{html.escape(it.mark)}</span></h2>"
                     f"<p>{html.escape(it.question)}</p><table><tr><th>measurement</th><th>{html.escape(it.header)}"
                     f"</th></tr>{nums}</table><p>Verdict: <span class='{_css(it)}'>{html.escape(it.mark)}</span> — "
                     f"{html.escape(it.reason)}.</p>{figs}")
    title = html.escape(f"Robustness report: {defense.spec} on {defense.dataset.name}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>body{{font-family:"
            "sans-serif;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
            ".pass{color:#070}.flag{color:#b00;font-weight:bold}.na{color:#777}img{max-width:100%}"
            "figcaption{font-size:90%;color:#444}</style></head><body>"
            f"<h1>{title}</h1><p>{html.escape(_header_text())}</p><table><tr><th>#</th><th>check</th><th>verdict"
            f"</th><th>found</th></tr>{rows}</table>{sections}</body></html>\n")


def _css(it: Item) -> str:
    return {"n/a": "na"}.get(it.verdict, it.verdict)


def report_folder(defense, workdir: Path, output: Path | None = None) -> Path:
    return Path(output) if output else Path(workdir) / "reports" / (
        f"{defense.spec.replace('+', '_').replace(':', '_')}-{defense.info['config_hash']}")


def write_report(defense, workdir: Path, output: Path | None = None, options: ReportOptions | None = None,
                 show_progress: bool = True) -> tuple[Path, Path, list[Item]]:
    """Write report.md and report.html (and their PNGs) into the folder `output` (default <workdir>/reports/...)."""
    from varmixup_bench.core.atomic import atomic_write_text

    check_output_folder(output)
    folder = report_folder(defense, workdir, output)
    folder.mkdir(parents=True, exist_ok=True)
    items = build_report(defense, Path(workdir), options, show_progress, figures_dir=folder)
    md, page = folder / "report.md", folder / "report.html"
    atomic_write_text(md, render_markdown(defense, items))
    atomic_write_text(page, render_html(defense, items))
    return md, page, items
