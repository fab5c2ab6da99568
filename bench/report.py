"""`bench report`: one page per defense with the checks of Carlini et al. 2019, "On Evaluating Adversarial
Robustness" — each item's numbers with 95 % intervals, a pass/flag verdict decided by the harness's noise rules
(bench.stats), and the plots. Evaluations already in the store are read, missing ones are run."""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.stats import compare_records, format_interval

CHECKLIST = (
    "eps-curve", "convergence", "adaptive-vs-oblivious", "blackbox-transfer-vs-whitebox", "worst-case-draws",
    "clean-and-corruptions", "calibration",
)
LARGE_EPS = 0.5  # where a working attack should leave ~0 % (half the pixel range)


@dataclass
class Item:
    """One checklist entry: what it asks, the measured numbers, the verdict and why."""

    key: str
    question: str
    numbers: list[tuple[str, str]] = field(default_factory=list)  # (what, "mean [lo, hi]")
    verdict: str = "pass"  # pass | flag
    reason: str = ""
    figure: str | None = None


def _ci(rec: dict, which: str = "robust") -> str:
    if which == "worst":
        return format_interval(rec["robust_acc_worst"], rec["robust_acc_worst_ci_low"], rec["robust_acc_worst_ci_high"])
    return format_interval(rec[f"{which}_acc"], rec[f"{which}_acc_ci_low"], rec[f"{which}_acc_ci_high"])


def _below(a: dict, b: dict, which=("robust", "robust")) -> bool:
    """a significantly below b (more than 2 SE of the paired difference)."""
    return compare_records(b, a, (which[1], which[0])).a_above_b()


@dataclass
class ReportOptions:
    eps_grid: tuple[float, ...] = (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255, LARGE_EPS)
    steps: tuple[int, ...] = (10, 20, 50)
    eot: tuple[int, ...] = (1, 8)
    restarts: tuple[int, ...] = (1,)
    transfer_from: str = "erm"
    ece_threshold: float = 10.0


def build_report(defense, workdir: Path, options: ReportOptions | None = None, show_progress: bool = True,
                 figures_dir: Path | None = None) -> list[Item]:
    """Run what is missing and return the checklist items for this defense at the preset's eps."""
    from bench.converge import plot_convergence, run_convergence, unconverged
    from bench.plots import plot
    from bench.runner import stored_or_evaluate
    from bench.store import ResultStore

    opt = options or ReportOptions()
    settings = defense.info["settings"]
    eps = float(settings.eps)
    test = defense.dataset.test
    stochastic = defense.verify_randomness(test.x[:min(len(test), 64)].to(defense.device))
    strong = "adaptive-pgd10" if stochastic else "pgd10"
    figures_dir = Path(figures_dir or workdir)

    def own_records() -> list[dict]:  # this model's records: other training seeds of the defense are other models
        return [r for r in ResultStore(workdir).records() if r.get("config_hash") == defense.info["config_hash"]]

    def ev(attack: str, e: float | None = eps) -> dict[str, Any]:
        return stored_or_evaluate(defense, attack, eps=e, norm="Linf", workdir=workdir, show_progress=show_progress)

    items = []
    # 1. the eps curve falls and reaches ~0 at a large eps
    curve = [ev(strong, e) for e in sorted(set(opt.eps_grid) | {eps})]
    item = Item("eps-curve", f"Does {strong} accuracy fall as ε grows and reach ~0 % at ε = {LARGE_EPS}?",
                [(f"{strong} ε={_eps(r['eps'])}", _ci(r)) for r in curve])
    rises = [(a, b) for a, b in zip(curve, curve[1:]) if _below(a, b)]
    large = [r for r in curve if r["eps"] >= LARGE_EPS]
    if rises:
        a, b = rises[0]
        item.verdict, item.reason = "flag", (f"accuracy rises from {a['robust_acc']:.1f} % at ε={_eps(a['eps'])} to "
                                             f"{b['robust_acc']:.1f} % at ε={_eps(b['eps'])} beyond noise")
    elif large and large[-1]["robust_acc_ci_low"] > 5.0:
        item.verdict, item.reason = "flag", (f"at ε={_eps(large[-1]['eps'])} the 95 % interval stays above 5 % "
                                             f"({_ci(large[-1])}): gradients may be masked")
    else:
        item.reason = "no rise beyond noise; ~0 % at the largest ε" if large else "no rise beyond noise"
    item.figure = str(plot(own_records(), "eps", figures_dir / "eps.png", strong,
                           defense.dataset.name, defense.spec).name)
    items.append(item)

    # 2. convergence: more steps, EOT draws and restarts do not lower accuracy further
    grid = run_convergence(defense, "adaptive-pgd", steps=opt.steps, eot=opt.eot, restarts=opt.restarts,
                           workdir=workdir, show_progress=show_progress)
    bad = unconverged(grid)
    item = Item("convergence", "Do more steps, EOT draws and restarts stop lowering accuracy (adaptive PGD)?",
                [(r["attack"], _ci(r)) for r in grid])
    if bad:
        prev, last, axis = bad[0]
        item.verdict, item.reason = "flag", (f"{last['attack']} is significantly below {prev['attack']}: more "
                                             f"{axis} still helps, the attack has not converged")
    else:
        item.reason = "the largest budget on each axis is within noise of the one before it"
    item.figure = str(plot_convergence(own_records(), figures_dir / "converge.png", defense.spec,
                                       defense.dataset.name, "adaptive-pgd").name)
    items.append(item)

    # 3. adaptive <= oblivious
    item = Item("adaptive-vs-oblivious", "Is the adaptive attack at least as strong as the oblivious one?")
    if stochastic:
        obl, ada = ev("pgd10"), ev("adaptive-pgd10")
        item.numbers = [("pgd10 (oblivious, F_w only)", _ci(obl)), ("adaptive-pgd10", _ci(ada))]
        if _below(obl, ada):
            item.verdict, item.reason = "flag", "the adaptive attack is significantly weaker than the oblivious one"
        elif _below(ada, obl):
            item.reason = ("adaptive is significantly below oblivious: the oblivious number overstates robustness "
                           "and must not be reported as such")
        else:
            item.reason = "adaptive and oblivious agree within noise"
    else:
        pgd = ev("pgd10")
        item.numbers = [("pgd10 (white-box = adaptive)", _ci(pgd))]
        item.reason = "deterministic defense: the white-box attack already sees the whole defended predictor"
    items.append(item)

    # 4. black-box and transfer attacks are not stronger than white-box / adaptive ones
    white = [ev(strong), ev("adaptive-apgd" if stochastic else "pgd50"), ev("surrogate-pgd50")]
    best = min(white, key=lambda r: r["robust_acc"])
    spsa, transfer = ev("spsa"), ev(f"transfer:{opt.transfer_from}")
    item = Item("blackbox-transfer-vs-whitebox", "Are gradient-free (SPSA) and transfer attacks no stronger than "
                "the strongest gradient attack?",
                [(r["attack"], _ci(r)) for r in white] + [(f"spsa (n={spsa['n_examples']})", _ci(spsa)),
                                                          (transfer["attack"], _ci(transfer))])
    beaten = [r for r in (spsa, transfer) if _below(r, best)]
    if beaten:
        item.verdict, item.reason = "flag", (f"{beaten[0]['attack']} ({beaten[0]['robust_acc']:.1f} %) is "
                                             f"significantly below {best['attack']} ({best['robust_acc']:.1f} %): "
                                             "gradients are not reaching the adversary")
    else:
        item.reason = f"neither is significantly below the strongest gradient attack ({best['attack']})"
    items.append(item)

    # 5. worst case over the defense's randomness
    strongest = min(white + [r for r in grid if r.get("robust_acc_worst") is not None],
                    key=lambda r: r.get("robust_acc_worst", r["robust_acc"]))
    item = Item("worst-case-draws", "How many images survive every draw of the defense's randomness?",
                [(f"{strongest['attack']} mean over draws", _ci(strongest)),
                 (f"{strongest['attack']} correct in all {strongest.get('draws', 1)} draws", _ci(strongest, "worst"))])
    if stochastic and _below(strongest, strongest, ("worst", "robust")):
        item.verdict, item.reason = "flag", ("the worst case over draws is significantly below the mean: part of the "
                                             "reported robustness is the luck of the draw; report both")
    else:
        item.reason = "deterministic defense: worst case = mean" if not stochastic else "worst case within noise of the mean"
    items.append(item)

    # 6. clean and corruption accuracy
    clean, corr = ev("clean", None), ev("corruptions", None)
    chance = 100.0 / defense.dataset.num_classes
    item = Item("clean-and-corruptions", "Clean accuracy above chance, and corruption accuracy no higher than clean?",
                [("clean", _ci(clean, "clean")), (f"corruptions (15 × 5, n={corr['n_examples']})", _ci(corr))])
    if clean["clean_acc_ci_low"] <= chance:
        item.verdict, item.reason = "flag", f"clean accuracy is not above chance ({chance:.0f} %)"
    elif _below(clean, corr, ("clean", "robust")):
        item.verdict, item.reason = "flag", "corrupted images are classified better than clean ones"
    else:
        item.reason = f"clean accuracy above chance ({chance:.0f} %); corruptions cost {clean['clean_acc'] - corr['robust_acc']:.1f} points"
    items.append(item)

    # 7. calibration
    ece = ev("ece", None)
    item = Item("calibration", f"Is the defended predictor calibrated (ECE ≤ {opt.ece_threshold:g} %)?",
                [("ECE (15 bins, %)", f"{ece['value']:.2f}"), ("accuracy", _ci(ece, "clean"))])
    if ece["value"] > opt.ece_threshold:
        item.verdict, item.reason = "flag", f"ECE {ece['value']:.2f} % exceeds {opt.ece_threshold:g} %"
    else:
        item.reason = f"ECE {ece['value']:.2f} % ≤ {opt.ece_threshold:g} %"
    items.append(item)
    return items


def _eps(e: float) -> str:
    from bench.leaderboard import eps_label

    return eps_label(float(e))


def render_markdown(defense, items: list[Item]) -> str:
    from bench.stats import TRIAL_INTERVAL_NOTE

    s = defense.info["settings"]
    head = [f"# Robustness report: {defense.spec} on {defense.dataset.name}", "",
            f"Model {defense.info['config_hash']}, preset `{s.name}`, ε = {_eps(s.eps)} (L∞), "
            f"{'randomised' if defense.stochastic else 'deterministic'} defended predictor; "
            f"written {datetime.now(timezone.utc).isoformat(timespec='seconds')} by `bench report`.", "",
            "Checklist after Carlini et al. 2019, *On Evaluating Adversarial Robustness*. Accuracies are % of the "
            f"defended predictor with 95 % intervals ({TRIAL_INTERVAL_NOTE.split(': ', 1)[1]}); a verdict flags only "
            "differences beyond noise (2 standard errors, paired on the same images where possible).", "",
            "| # | check | verdict | why |", "| --- | --- | --- | --- |"]
    for i, it in enumerate(items, 1):
        head.append(f"| {i} | {it.key} | {'✅ pass' if it.verdict == 'pass' else '⚠ flag'} | {it.reason} |")
    body = []
    for i, it in enumerate(items, 1):
        body += ["", f"## {i}. {it.key}: {'pass' if it.verdict == 'pass' else 'FLAG'}", "", it.question, "",
                 "| measurement | accuracy % [95 % CI] |", "| --- | --- |"]
        body += [f"| {what} | {value} |" for what, value in it.numbers]
        body += ["", f"Verdict: **{it.verdict}** — {it.reason}."]
        if it.figure:
            body += ["", f"![{it.key}]({it.figure})"]
    return "\n".join(head + body) + "\n"


def render_html(defense, items: list[Item]) -> str:
    rows = "".join(f"<tr><td>{i}</td><td>{html.escape(it.key)}</td><td class='{it.verdict}'>{it.verdict}</td>"
                   f"<td>{html.escape(it.reason)}</td></tr>" for i, it in enumerate(items, 1))
    sections = ""
    for i, it in enumerate(items, 1):
        nums = "".join(f"<tr><td>{html.escape(w)}</td><td>{html.escape(v)}</td></tr>" for w, v in it.numbers)
        fig = f"<img src='{html.escape(it.figure)}' alt='{it.key}'>" if it.figure else ""
        sections += (f"<h2>{i}. {html.escape(it.key)}: <span class='{it.verdict}'>{it.verdict}</span></h2>"
                     f"<p>{html.escape(it.question)}</p><table><tr><th>measurement</th><th>accuracy % [95 % CI]</th>"
                     f"</tr>{nums}</table><p>{html.escape(it.reason)}</p>{fig}")
    title = html.escape(f"Robustness report: {defense.spec} on {defense.dataset.name}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>body{{font-family:"
            "sans-serif;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
            ".pass{color:#070}.flag{color:#b00;font-weight:bold}img{max-width:100%}</style></head><body>"
            f"<h1>{title}</h1><table><tr><th>#</th><th>check</th><th>verdict</th><th>why</th></tr>{rows}</table>"
            f"{sections}</body></html>\n")


def write_report(defense, workdir: Path, output: Path | None = None, options: ReportOptions | None = None,
                 show_progress: bool = True) -> tuple[Path, Path, list[Item]]:
    """Write report.md and report.html (and their PNGs) into `output` (default <workdir>/reports/...)."""
    from bench.atomic import atomic_write_text

    folder = Path(output) if output else Path(workdir) / "reports" / (
        f"{defense.spec.replace('+', '_').replace(':', '_')}-{defense.info['config_hash']}")
    folder.mkdir(parents=True, exist_ok=True)
    items = build_report(defense, Path(workdir), options, show_progress, figures_dir=folder)
    md, page = folder / "report.md", folder / "report.html"
    atomic_write_text(md, render_markdown(defense, items))
    atomic_write_text(page, render_html(defense, items))
    return md, page, items
