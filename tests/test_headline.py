"""The headline view of `bench leaderboard --format md|html` (issue 28, item 3): one row per defense with clean,
strongest-attack and per-image ensemble accuracy, diagnostic flags beside their cells with footnotes, bold marks
corrected for every comparison of a table (Holm), and a real HTML page. Synthetic records, no training."""
from __future__ import annotations

import math

import re
import shutil
import subprocess

import numpy as np
import pytest

from varmixup_bench.results.stats import encode_per_image, wilson_interval

EPS = 8 / 255


def _rec(defense, attack, correct, *, eps=EPS, threat="white-box", stochastic=False, draws=1, worst=None,
         model=None, clean=None, seed=0, t="2026-01-01T00:00:00"):
    """One record on images 0..n-1; `correct` per image: 0/1, or correct draws out of `draws`."""
    correct = np.asarray(correct)
    n = len(correct)
    clean_c = np.ones(n, np.uint8) if clean is None else np.asarray(clean, np.uint8)
    acc = 100.0 * float(correct.mean()) / draws
    r = {"dataset": "d", "defense": defense, "attack": attack, "threat_model": threat, "eps": eps,
         "norm": "none" if threat == "none" else "Linf", "step": None if eps == 0 else 2 / 255,
         "clean_acc": 100.0 * float(clean_c.mean()), "clean_acc_std": 0.0,
         "robust_acc": acc if attack != "clean" else 100.0 * float(clean_c.mean()), "robust_acc_std": 0.0,
         "trials": 1, "n_examples": n, "seconds": 1, "seed": seed, "model": "m", "preset": "p", "device": "cpu",
         "config_hash": model or f"h-{defense}-{seed}", "eval_hash": f"e-{defense}-{attack}-{eps}-{seed}",
         "stochastic": stochastic, "draws": draws, "timestamp": t, "versions": {},
         "per_image": encode_per_image(np.arange(n), clean_c, correct, 1, draws=draws,
                                       worst_correct=worst if draws > 1 else None)}
    if draws > 1 and worst is not None:
        r["robust_acc_worst"] = 100.0 * float(np.mean(worst))
        r["robust_acc_worst_ci_low"], r["robust_acc_worst_ci_high"] = wilson_interval(float(np.sum(worst)), n)
    return r


def _correct(n, wrong):
    c = np.ones(n, np.uint8)
    c[list(wrong)] = 0
    return c


def _overstated(n=200):
    """A randomised defense whose oblivious PGD-10 reads 60 % and adaptive PGD-10 20 % on the same 200 images."""
    obl = _correct(n, range(int(0.4 * n)))
    ada = _correct(n, range(int(0.8 * n)))
    return [_rec("mixup+mi", "clean", np.ones(n), eps=0.0, threat="none", stochastic=True),
            _rec("mixup+mi", "pgd10", obl, threat="oblivious", stochastic=True),
            _rec("mixup+mi", "adaptive-pgd10", ada, threat="adaptive", stochastic=True)]


def _tables(records):
    from varmixup_bench.views.headline import headline_tables
    from varmixup_bench.views.leaderboard import leaderboard_frame

    return headline_tables(leaderboard_frame(records))


def _render(records, fmt, plots=()):
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import leaderboard_frame

    return render_headline(leaderboard_frame(records), fmt, plots)


def _md_row(md, defense):
    return [c.strip() for c in next(l for l in md.splitlines() if l.startswith(f"| {defense}")).strip("|").split("|")]


def test_flagged_cell_gets_a_warning_and_a_footnote_in_md_and_html():
    from varmixup_bench.views.leaderboard import leaderboard_frame, render_wide, wide_frame

    recs = _overstated()
    md = _render(recs, "md")
    defense, clean, strongest, ensemble = _md_row(md, "mixup+mi")  # one draw: no worst case
    # the number that reads too high (oblivious PGD-10) is not in the headline: the ⚠ stands beside the defense,
    # not beside the adaptive number shown, which is the trustworthy one
    assert "adaptive-pgd10" in strongest and "⚠" not in strongest and defense == "mixup+mi ⚠1"
    note = next(l for l in md.splitlines() if l.startswith("⚠1 "))
    assert "oblivious-overstates" in note and "overstates robustness" in note
    html = _render(recs, "html")
    assert 'href="#fn1"' in html and 'id="fn1"' in html and "oblivious-overstates" in html
    wide = render_wide(wide_frame(leaderboard_frame(recs)), "md")  # the wide table marks it too
    assert re.search(r"20\.0 \[[^]]+\]ᵃ ⚠1", wide) and "⚠1 oblivious-overstates" in wide


def test_findings_decided_once_are_the_ones_each_view_decides_on_its_own():
    """flagged_frame's findings, handed to the headline and the wide table (as compose and `bench leaderboard`
    do), give the same pages as the views deciding them again, and name the same flags as the frame's."""
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.headline import render_headline
    from varmixup_bench.views.leaderboard import flagged_frame, leaderboard_frame, render_wide, wide_frame

    recs = _overstated() + _overstated()[:1] + [_rec("at", "pgd10", _correct(200, range(120)))]
    frame, findings = flagged_frame(recs, alpha=0.02)
    assert [f.check for f in findings] == ["oblivious-overstates"]
    assert findings == diagnose(leaderboard_frame(recs, alpha=0.02), 0.02)
    assert frame.equals(leaderboard_frame(recs, alpha=0.02))
    assert "oblivious-overstates" in set(frame["flags"])
    assert (render_headline(frame, "md", alpha=0.02, findings=findings)
            == render_headline(frame, "md", alpha=0.02))
    assert (render_wide(wide_frame(frame, alpha=0.02, findings=findings), "md")
            == render_wide(wide_frame(frame, alpha=0.02), "md"))
    empty, none = flagged_frame([])
    assert empty.empty and "flags" in empty.columns and none == []


def test_one_row_per_defense_and_the_strongest_attack_is_the_lowest_and_named():
    n = 100
    recs = []
    for d, (p10, p50, spsa) in {"erm": (30, 25, 40), "at": (50, 45, 55), "trades": (52, 48, 60)}.items():
        recs += [_rec(d, "clean", np.ones(n), eps=0.0, threat="none"),
                 _rec(d, "pgd10", _correct(n, range(100 - p10))), _rec(d, "pgd50", _correct(n, range(100 - p50))),
                 _rec(d, "spsa", _correct(n, range(100 - spsa)), threat="black-box"),
                 _rec(d, "pgd10", _correct(n, range(5)), eps=2 / 255),  # the ε curve: not the main ε
                 _rec(d, "adaptive-pgd10", _correct(n, range(1)), eps=0.0, threat="adaptive"),  # ε = 0: no attack
                 _rec(d, "corruptions", _correct(n, range(3)), eps=0.0, threat="none")]
    (table,) = _tables(recs)
    assert table.eps == pytest.approx(EPS) and len(table.rows) == 3  # one row per defense
    erm = next(r for r in table.rows if r.label == "erm")
    assert erm.cells["strongest"].mean == 25.0 and erm.cells["strongest"].note == "pgd50"
    md = _render(recs, "md")
    assert "strongest @ 8/255 (attack)" in md and "ensemble @ 8/255" in md and "n_examples" not in md
    assert "25.0 [" in _md_row(md, "erm")[2] and "pgd50" in _md_row(md, "erm")[2]
    assert len([l for l in md.splitlines() if l.startswith("| ")]) == 1 + 3  # header + one row per defense


def test_ensemble_is_per_image_over_every_attack_and_not_above_the_strongest():
    n = 100
    recs = [_rec("erm", "clean", np.ones(n), eps=0.0, threat="none"),
            _rec("erm", "pgd10", _correct(n, range(0, 10))),  # A wrong on 0-9
            _rec("erm", "pgd50", _correct(n, range(5, 15)))]  # B wrong on 5-14
    cell = _tables(recs)[0].rows[0].cells
    ens = cell["ensemble"]
    assert ens.mean == 85.0 and ens.n == n  # wrong on 0-14
    assert np.array_equal(np.flatnonzero(ens.outcomes[1] == 0), np.arange(15))
    assert (ens.lo, ens.hi) == pytest.approx(wilson_interval(85, n))
    assert ens.mean <= cell["strongest"].mean == 90.0
    assert "worst" not in cell  # a deterministic defense has no worst case over draws


def test_randomised_ensemble_is_the_expected_autoattack_rule_and_the_worst_case():
    """For a randomised defense the ensemble is per image the product of the attacks' rates (the expected outcome
    of "robust only if every attack, tried once, fails"), the worst case an image correct in every draw of every
    attack; a record without its per-image worst case is left out of that column, said, not a crash."""
    rng = np.random.default_rng(0)
    n, draws = 300, 4
    a, b = rng.integers(0, draws + 1, n), rng.integers(0, draws + 1, n)  # correct draws per image
    wa, wb = (a == draws).astype(np.uint8), (b == draws).astype(np.uint8)
    recs = [_rec("mixup+mi", "adaptive-pgd10", a, threat="adaptive", stochastic=True, draws=draws, worst=wa),
            _rec("mixup+mi", "adaptive-apgd", b, threat="adaptive", stochastic=True, draws=draws, worst=wb)]
    cells = _tables(recs)[0].rows[0].cells
    assert cells["ensemble"].mean == pytest.approx(100 * (a / draws * b / draws).mean())
    assert cells["worst"].mean == pytest.approx(100 * (wa & wb).mean())
    assert cells["ensemble"].mean <= cells["strongest"].mean
    assert cells["strongest"].mean == pytest.approx(100 * min(a.mean(), b.mean()) / draws)
    old = _rec("mixup+mi", "pgd10", a, threat="white-box", stochastic=True, draws=draws, worst=None)
    cells = _tables(recs + [old])[0].rows[0].cells
    assert cells["worst"].mean == pytest.approx(100 * (wa & wb).mean())
    assert cells["worst"].note == "2 attacks of 3; the others keep no per-image worst case"
    assert cells["ensemble"].note == "3 attacks"
    # a budget spec's same_as copy of adaptive-pgd10 is the same draws: one attack, not its rates squared
    copy = dict(recs[0], attack="adaptive-pgd(eot=4,restarts=1,steps=10)", same_as="adaptive-pgd10",
                eval_hash="copy")
    cells = _tables(recs + [copy])[0].rows[0].cells
    assert cells["ensemble"].mean == pytest.approx(100 * (a / draws * b / draws).mean())


def test_the_randomised_ensemble_is_unbiased_where_the_lowest_rate_read_low():
    """k attacks of equal strength, every image correct with probability 1/2 per draw, 10 draws each: the
    ensemble estimates 2^-k, the chance an image survives one try of each (the lowest rate per image read 41 %
    for k = 2, where one try of the single best attack survives 50 %, and the truth of the rule is 25 %)."""
    from varmixup_bench.views.headline import _ensemble

    rng = np.random.default_rng(7)
    n, draws = 4000, 10
    for k in (1, 2, 5):
        recs = [_rec("mixup+mi", f"adaptive-pgd{10 + j}", rng.binomial(draws, 0.5, n), threat="adaptive",
                     stochastic=True, draws=draws, worst=None) for j in range(k)]
        _, v = _ensemble(recs, "robust")
        assert v.mean() == pytest.approx(0.5 ** k, abs=4 * math.sqrt(0.25 / n))


def test_html_is_a_page_without_backticks_and_with_the_plots(tmp_path):
    from PIL import Image

    from varmixup_bench.views.leaderboard import leaderboard_frame, render_wide, wide_frame

    png = tmp_path / "eps.png"
    Image.new("RGB", (4, 4), "red").save(png)
    html = _render(_overstated(), "html", [png])
    assert html.startswith("<!doctype html>") and "<title>" in html and "</html>" in html
    assert "`" not in html and "n_examples" not in html and "<code>" in html
    assert "data:image/png;base64," in html and 'id="headline-d"' in html and "<script>" in html
    assert "`" not in render_wide(wide_frame(leaderboard_frame(_overstated())), "html")


def _pair(up=15, down=5, n=100):
    """Outcomes of two defenses on n images: a correct where b is not on `up` images, the reverse on `down`."""
    a = _correct(n, range(60, n))  # 60 %
    b = a.copy()
    b[:up] = 0
    b[60:60 + down] = 1
    return a, b


def test_bold_needs_significance_across_every_comparison_of_the_table():
    from varmixup_bench.views.headline import _best_p
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, wide_frame

    a, b = _pair()  # exact McNemar on 15 vs 5 discordant images: p = 0.041, significant on its own
    recs = [_rec(d, atk, o) for d, o in (("a", a), ("b", b)) for atk in ("pgd10", "pgd50")]
    assert 0.025 < _best_p(*(_tables(recs)[0].rows[i].cells["strongest"] for i in (0, 1))) < 0.05
    assert best_cells(wide_frame(leaderboard_frame(recs))) == set()  # two such columns: Holm keeps neither
    assert "**" not in _render(recs, "md")
    a, b = _pair(up=30, down=0)
    recs = [_rec(d, atk, o) for d, o in (("a", a), ("b", b)) for atk in ("pgd10", "pgd50")]
    assert {c for _, c in best_cells(wide_frame(leaderboard_frame(recs)))} == {"pgd10 ε=8/255", "pgd50 ε=8/255"}
    assert "**" in _render(recs, "md")


def test_bold_compares_cells_of_one_dataset_and_decides_every_datasets_marks_as_one_family():
    """Two datasets in one table: each column's best is found among its own dataset's rows (a strong defense on an
    easy dataset does not hide the best on a hard one), and the marks of every dataset and column are one Holm
    family: a gap significant on its own (p = 0.041) in each of two datasets is bold in neither."""
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, wide_frame

    strong, weak = _pair(up=30, down=0)
    easy = [{**_rec(d, "pgd10", o), "dataset": "easy"} for d, o in (("a", strong), ("b", weak))]
    hard_strong = _correct(100, range(40, 100))  # 40 % and 10 %: both below the easy rows' 60 % and 30 %
    hard_weak = hard_strong.copy()
    hard_weak[:30] = 0
    hard = [{**_rec(d, "pgd10", o), "dataset": "hard"} for d, o in (("c", hard_strong), ("d", hard_weak))]
    wide = wide_frame(leaderboard_frame(easy + hard))
    marked = {(wide.iloc[i]["dataset"], wide.iloc[i]["defense"]) for i, c in best_cells(wide) if c == "pgd10 ε=8/255"}
    assert marked == {("easy", "a"), ("hard", "c")}
    a, b = _pair()  # p = 0.041 in each dataset: two tests of one family, Holm keeps neither
    recs = [{**_rec(d, "pgd10", o), "dataset": ds} for ds in ("x", "y") for d, o in ((f"a{ds}", a), (f"b{ds}", b))]
    assert {c for _, c in best_cells(wide_frame(leaderboard_frame(recs)))} == set()
    assert "**" not in _render(recs, "md")


def test_headline_is_the_md_and_html_default(tmp_path):
    from varmixup_bench.results.store import ResultStore
    from tests_cli_helper import bench_cli

    ResultStore(tmp_path).extend(_overstated())
    code, out, err = bench_cli("leaderboard", "--workdir", str(tmp_path), "--format", "md")
    assert code == 0, err
    assert "strongest @ 8/255 (attack)" in out and "pgd10 ε=8/255" not in out and "⚠1" in out
    code, out, _ = bench_cli("leaderboard", "--workdir", str(tmp_path), "--format", "md", "--layout", "wide")
    assert code == 0 and "adaptive-pgd10 ε=8/255" in out
    code, out, _ = bench_cli("leaderboard", "--workdir", str(tmp_path), "--format", "csv")  # csv: long, as before
    assert code == 0 and out.splitlines()[0].startswith("dataset,defense,attack")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium (Debian package `chromium`)")
def test_page_loads_in_headless_chromium_with_one_row_per_defense(tmp_path):
    n = 100
    recs = _overstated() + [_rec(d, atk, _correct(n, range(k))) for d, k in (("erm", 90), ("at", 50))
                            for atk in ("clean", "pgd10")]
    page = tmp_path / "leaderboard.html"
    page.write_text(_render(recs, "html"), encoding="utf-8")
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    table = re.search(r'<table[^>]*id="headline-d"[^>]*>(.*?)</table>', dom, re.S)
    assert table is not None and 'data-sortable="ready"' in table.group(0)  # loaded, and its script ran
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), re.S).group(1)
    assert len(re.findall(r"<tr[ >]", body)) == 3  # mixup+mi, erm, at


def test_an_ece_record_without_a_step_replaces_an_older_one_with_step_zero():
    """Evaluations without a radius once recorded step 0.0 and now record none: the two are one result (the
    newer shown), not two variants of it."""
    from varmixup_bench.views.leaderboard import leaderboard_frame

    old = _rec("erm", "ece", [1, 0, 1, 1], eps=0.0, threat="none", t="2026-01-01T00:00:00")
    new = _rec("erm", "ece", [1, 1, 1, 1], eps=0.0, threat="none", t="2026-02-01T00:00:00")
    old["step"] = 0.0
    frame = leaderboard_frame([old, new])
    assert len(frame) == 1 and frame.iloc[0]["robust_acc"] == 100.0
    pgd = [_rec("erm", "pgd10", [0, 0, 1, 1]), {**_rec("erm", "pgd10", [0, 1, 1, 1]), "step": 1 / 255}]
    assert len(leaderboard_frame(pgd)) == 2  # with a radius, another step is another result


def test_metric_records_show_their_value_in_the_wide_table_not_an_accuracy():
    """A VAE's PSNR, local linearity and KID carry the clean accuracy in robust_acc (as ECE does); the wide table
    shows their value under a column that names the unit, never the accuracy, and bolds none of them."""
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, render_wide, wide_frame

    n = 10
    recs = [_rec("varerm", "clean", np.ones(n), eps=0.0, threat="none", clean=_correct(n, [0]))]
    for attack, eps, metric, value in (("vae-psnr", 0.0, "psnr_db", 34.418), ("linearity", EPS, "local_linearity",
                                                                              0.0123), ("kid", 0.0, "kid_x1000", 4.5),
                                       ("ece", 0.0, "ece_percent", 3.25)):
        recs.append({**_rec("varerm", attack, _correct(n, [0]), eps=eps, threat="none"), "metric": metric,
                     "value": value})
    wide = wide_frame(leaderboard_frame(recs))
    cells = {c: v["mean"] for c, v in wide.iloc[0].items() if isinstance(v, dict)}
    assert cells == {"clean": 90.0, "vae-psnr (dB)": 34.418, "linearity ε=8/255 (γ)": 0.0123,
                     "kid (KID ×1000)": 4.5, "ECE (%)": 3.25}
    md = render_wide(wide, "md")
    assert "34.42" in md and "0.0123" in md and "90.0 [" in md and md.count("90.0 [") == 1  # the accuracy once: clean
    assert best_cells(wide) == set()


def test_two_ece_results_of_one_row_are_two_columns_not_the_later_one():
    """ECE on the page's 1,000 images and again on a 500-image subset: both values show, each under a column that
    says what differs (the column had been "ECE (%)" for both, and the later record took it unseen)."""
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 10
    recs = [_rec("erm", "clean", np.ones(n), eps=0.0, threat="none")]
    for size, value, t in ((1000, 3.25, "2026-01-01T00:00:00"), (500, 4.75, "2026-02-01T00:00:00")):
        recs.append({**_rec("erm", "ece", np.ones(n), eps=0.0, threat="none", t=t), "metric": "ece_percent",
                     "value": value, "n_examples": size})
    wide = wide_frame(leaderboard_frame(recs))
    cells = {c: v["mean"] for c, v in wide.iloc[0].items() if isinstance(v, dict) and c != "clean"}
    assert sorted(cells.values()) == [3.25, 4.75]
    assert all(c.startswith("ECE (%) (") and "n" in c for c in cells), cells
    assert list(wide.columns)[-2:] == sorted(cells, key=list(wide.columns).index)  # both in ECE's place


def test_one_model_under_two_lambda_mi_is_two_predictors_never_merged_or_compared():
    """The lambda_MI sweep evaluates the headline's model again at other lambda_MI: those records are another
    predictor (a row of their own, labelled by what differs), not newer versions of the headline's cells, and
    diagnose never sets one lambda's oblivious number against another's adaptive one."""
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 200

    def at(lam, recs):
        cfg = {"lambda_mi": lam, "n_mi": 30, "vae": {"seed": 0, "arch": "conv"}}
        return [{**r, "inference_config": cfg, "config_hash": "h-varmi"} for r in recs]

    half = at(0.5, [_rec("varmixup+varmi", "pgd10", _correct(n, range(20)), threat="oblivious", stochastic=True),
                    _rec("varmixup+varmi", "adaptive-pgd10", _correct(n, range(23)), threat="adaptive",
                         stochastic=True)])
    # at lambda_MI = 0.2 the oblivious number is low and the adaptive one, newer, lower still
    low = at(0.2, [{**_rec("varmixup+varmi", "adaptive-pgd10", _correct(n, range(190)), threat="adaptive",
                           stochastic=True), "timestamp": "2026-03-01T00:00:00"}])
    frame = leaderboard_frame(half + low)
    assert len(frame) == 3  # nothing replaced by the newer lambda_MI = 0.2 record
    assert diagnose(frame) == []  # 90 % oblivious vs 88.5 % adaptive at 0.5: no finding; 0.2's 5 % is not paired
    wide = wide_frame(frame)
    labels = sorted(wide["defense"])
    assert labels == ["varmixup+varmi [lambda_mi=0.2]", "varmixup+varmi [lambda_mi=0.5]"]
    cell = {r["defense"]: r["adaptive-pgd10 ε=8/255"]["mean"] for _, r in wide.iterrows()}
    assert cell == {"varmixup+varmi [lambda_mi=0.5]": 88.5, "varmixup+varmi [lambda_mi=0.2]": 5.0}


def test_row_labels_say_what_a_row_has_once():
    """Two VAEs of the fidelity ladder: the label names the VAE's latent once (not also the override that set it)
    and never an unset override as 'None'."""
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    def vae(stride, channels, overrides, h):
        r = _rec("varmixup+varmi", "clean", _correct(100, range(70)), stochastic=True)
        return {**r, "config_hash": h, "train_overrides": overrides,
                "train_config": {"recipe_config": {"vae": {"arch": "conv", "latent_stride": stride,
                                                           "latent_channels": channels}}}}

    frame = leaderboard_frame([vae(2, 8, {}, "h-s2c8"),
                               vae(4, 16, {"vae_latent_stride": 4, "vae_latent_channels": 16}, "h-s4c16")])
    assert sorted(wide_frame(frame)["defense"]) == ["varmixup+varmi [latent_channels=16, latent_stride=4]",
                                                   "varmixup+varmi [latent_channels=8, latent_stride=2]"]


def test_bold_needs_the_best_above_every_other_row_not_only_the_runner_up():
    """A 60 % on 1,000 images, B 50 % (far below: p ~ 1e-30), C 47.5 % on 40 images (p = 0.06 against A): the
    best was bolded against the runner-up B although C is within noise of it; now it is bold only when A is
    significantly above every row, in the headline and in the wide table."""
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, wide_frame

    i = np.arange(1000)
    a = (i % 5 >= 2).astype(np.uint8)  # 60 %
    b = a.copy()
    b[np.flatnonzero(a == 1)[:100]] = 0  # 50 %, nested in A
    c = a[:40].copy()
    c[np.flatnonzero(c == 1)[:5]] = 0  # 19 of 40
    recs = [_rec("A", "pgd10", a), _rec("B", "pgd10", b), _rec("C", "pgd10", c)]
    strongest = {r.label: r.cells["strongest"] for r in _tables(recs)[0].rows}
    assert strongest["A"].mean == 60.0 and not strongest["A"].bold
    far = [_rec("A", "pgd10", a), _rec("B", "pgd10", b)]  # without C: A is above every other row
    assert {r.label: r.cells["strongest"] for r in _tables(far)[0].rows}["A"].bold
    # the wide table: C the mean of three seeds (30, 48, 66 %) on the same 1,000 images, below B but within its
    # seeds' spread of A
    seeds = [_rec("C", "pgd10", (i % 50 < k).astype(np.uint8), seed=s) for s, k in enumerate((15, 24, 33))]
    wide = wide_frame(leaderboard_frame(far + seeds))
    assert not [col for _, col in best_cells(wide) if col.startswith("pgd10")]
    assert [col for _, col in best_cells(wide_frame(leaderboard_frame(far))) if col.startswith("pgd10")]


def test_two_results_of_one_row_under_one_column_are_both_shown_and_told_apart():
    """One model's pgd10 at 8/255 once (50 %) and with three trials (90 %): the wide table showed only the later
    one under the plain label while the headline showed the other; now each has its column, saying what
    differs (trials), and a row's worst-case column never pairs with another model's mean."""
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 200
    once = _rec("det", "pgd10", _correct(n, range(100)), t="2026-01-01T00:00:00")
    thrice = dict(_rec("det", "pgd10", _correct(n, range(20)), t="2026-01-02T00:00:00"), trials=3,
                  eval_hash="other")
    wide = wide_frame(leaderboard_frame([_rec("det", "clean", np.ones(n), eps=0.0, threat="none"), once, thrice]))
    cols = {c: wide.iloc[0][c]["mean"] for c in wide.columns if str(c).startswith("pgd10")}
    assert cols == {"pgd10 ε=8/255 (trials=1)": 50.0, "pgd10 ε=8/255 (trials=3)": 90.0}
    # different defenses sharing a column are not split: ERM and another defense both under the plain label
    other = _rec("at", "pgd10", _correct(n, range(50)))
    wide = wide_frame(leaderboard_frame([once, other]))
    assert [c for c in wide.columns if str(c).startswith("pgd10")] == ["pgd10 ε=8/255"]


def test_a_finding_marks_the_headline_number_it_says_reads_too_high():
    """PGD-10 reads 50 % at 8/255 and 30 % at 4/255 (accuracy rises with eps): the 8/255 number, the headline's
    strongest, is the one said to read too high, so its ⚠ stands beside it."""
    n = 200
    recs = [_rec("at", "clean", np.ones(n), eps=0.0, threat="none"),
            _rec("at", "pgd10", _correct(n, range(140)), eps=4 / 255), _rec("at", "pgd10", _correct(n, range(100))),
            _rec("at", "fgsm", _correct(n, range(80)))]
    md = _render(recs, "md")
    defense, clean, strongest, *_ = _md_row(md, "at")
    notes = [l for l in md.splitlines() if l.startswith("⚠")]
    assert "pgd10" in strongest and strongest.endswith("⚠1") and defense == "at", (defense, strongest, notes)
    assert "accuracy-rises-with-eps" in notes[0]


def test_worst_case_column_ranks_deterministic_rows_and_needs_several_draws():
    """A deterministic defense's worst case over draws is its ensemble: the column shows it and ranks it, so a
    randomised rule far below it is not bold as the best worst case (it had been: AT and TRADES at 38 % showed
    "–" and IAT+MI's 24 % was bold). A randomised rule evaluated with one draw per example has no worst case
    (it would be its ensemble again, ranked against worst cases over ten draws)."""
    n = 1000
    rng = np.random.default_rng(1)
    at = (rng.random(n) < 0.38).astype(np.uint8)
    draws = 10
    rate = rng.integers(0, draws + 1, n)
    mi_worst = (rate == draws).astype(np.uint8)
    single = (rng.random(n) < 0.5).astype(np.uint8)
    recs = [_rec("at", "pgd10", at),
            _rec("iat+mi", "adaptive-pgd10", rate, threat="adaptive", stochastic=True, draws=draws,
                 worst=mi_worst),
            _rec("mixup+mi", "adaptive-pgd10", single, threat="adaptive", stochastic=True, draws=1)]
    table, = _tables(recs)
    rows = {r.label: r for r in table.rows}
    assert rows["at"].cells["worst"].mean == pytest.approx(rows["at"].cells["ensemble"].mean)
    assert "deterministic: its ensemble" in rows["at"].cells["worst"].note
    assert "worst" not in rows["mixup+mi"].cells and "worst" in rows["iat+mi"].cells
    assert rows["at"].cells["worst"].bold and not rows["iat+mi"].cells["worst"].bold
    md = _render(recs, "md")
    assert _md_row(md, "mixup+mi")[-1] == "–"


def test_the_ensemble_leaves_out_an_attack_run_on_a_subset_and_says_so():
    """SPSA on 200 of the 1,000 images would cut the ensemble (and every test of it) to those 200: it is left
    out and named; the strongest column still shows it if it is the lowest."""
    n = 1000
    pgd = _correct(n, range(600))
    spsa = _rec("at", "spsa", _correct(200, range(130)), threat="black-box")
    recs = [_rec("at", "clean", np.ones(n), eps=0.0, threat="none"), _rec("at", "pgd10", pgd), spsa,
            _rec("erm", "clean", np.ones(n), eps=0.0, threat="none"), _rec("erm", "pgd10", _correct(n, range(900)))]
    table, = _tables(recs)
    at = next(r for r in table.rows if r.label == "at")
    assert at.cells["ensemble"].n == n and at.cells["ensemble"].mean == pytest.approx(40.0)
    assert "spsa on 200 images left out" in at.cells["ensemble"].note
    assert at.cells["strongest"].note == "spsa" and at.cells["strongest"].n == 200


def test_a_p_value_that_underflowed_reads_below_1e300_not_zero():
    """Oblivious 100 % against adaptive 0 % on 1,200 images: McNemar's p underflows to 0.0 in double precision;
    the finding says p < 1e-300 (a p is never 0), and the report quotes it as it is written."""
    from varmixup_bench.results.stats import p_figure, p_text
    from varmixup_bench.views.diagnostics import diagnose
    from varmixup_bench.views.leaderboard import leaderboard_frame
    from varmixup_bench.views.report import _p

    assert (p_text(0.0), p_text(5.5e-23), p_figure(0.0)) == ("p < 1e-300", "p = 5.5e-23", "< 1e-300")
    n = 1200  # exact McNemar: 2 * 2^-1200 is below the smallest double
    recs = [_rec("mixup+mi", "pgd10", np.ones(n), threat="oblivious", stochastic=True),
            _rec("mixup+mi", "adaptive-pgd10", np.zeros(n), threat="adaptive", stochastic=True)]
    found, = diagnose(leaderboard_frame(recs))
    assert found.message.endswith("(p < 1e-300)") and _p(found) == " (p < 1e-300)"


def test_an_oblivious_cell_is_never_bold_as_the_best_of_its_column():
    """VarMI's oblivious PGD-10 at 69 % and AT's white-box PGD-10 at 38 % share the column "pgd10 ε=8/255": the
    oblivious number is not ranked (the page flags it as overstating), so AT's is the best, against the other
    ranked rows only."""
    from varmixup_bench.views.leaderboard import best_cells, leaderboard_frame, wide_frame

    n = 1000
    recs = [_rec("varmixup+varmi", "pgd10", _correct(n, range(310)), threat="oblivious", stochastic=True),
            _rec("at", "pgd10", _correct(n, range(620))), _rec("erm", "pgd10", _correct(n, range(1000)))]
    wide = wide_frame(leaderboard_frame(recs))
    marked = {wide.iloc[i]["defense"] for i, c in best_cells(wide) if c == "pgd10 ε=8/255"}
    assert marked == {"at"}


def test_the_ensemble_keeps_an_attack_on_more_images_than_most_records_and_unknown_counts():
    """An ε curve on 200 images makes 200 the table's usual count; ERM's PGD-10 on all 1,000 at 0 % must stay in
    its ensemble (it had been left out, and SPSA alone read 30 %, 30 points above the strongest attack); a record
    without an image count is kept, not named "on 0 images"."""
    n = 1000
    recs = [_rec("erm", "pgd10", np.zeros(n, np.uint8)),
            _rec("erm", "spsa", _correct(200, range(140)), threat="black-box")]
    recs += [_rec("erm", "pgd10", np.zeros(200, np.uint8), eps=e) for e in (2 / 255, 4 / 255, 16 / 255)]
    row = next(r for r in _tables(recs)[0].rows if r.label == "erm")
    assert row.cells["ensemble"].mean == 0.0 and row.cells["ensemble"].n == n
    assert "spsa on 200 images left out" in row.cells["ensemble"].note
    unknown = {**_rec("erm", "fgsm", np.zeros(200, np.uint8)), "n_examples": None}
    row = next(r for r in _tables([recs[1], unknown])[0].rows if r.label == "erm")
    assert row.cells["ensemble"].mean == 0.0 and "left out" not in row.cells["ensemble"].note


def test_a_randomised_rule_under_oblivious_attacks_only_is_not_bold_in_the_headline():
    """Before its adaptive attacks have run, VarMixup+VarMI's only number is the oblivious PGD-10 (69 %): it is not
    ranked, so it is not bold above AT's white-box 38 %."""
    n = 1000
    recs = [_rec("varmixup+varmi", "pgd10", _correct(n, range(310)), threat="oblivious", stochastic=True),
            _rec("at", "pgd10", _correct(n, range(620))), _rec("erm", "pgd10", np.zeros(n, np.uint8))]
    table, = _tables(recs)
    rows = {r.label: r for r in table.rows}
    assert not any(c.bold for c in rows["varmixup+varmi"].cells.values())
    assert rows["at"].cells["strongest"].bold and rows["at"].cells["ensemble"].bold
