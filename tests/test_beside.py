"""views.beside: a transcribed reference's numbers beside ours (the paper's Table 2 and 4 next to a campaign's
cells), one row per defense both hold, ours with their intervals and, for a randomised defense, the adaptive
attack and its worst case beside the oblivious number the paper reports."""
from __future__ import annotations

import numpy as np
import pytest

from test_headline import _correct, _rec


def test_the_papers_numbers_sit_beside_ours_with_the_adaptive_attack_for_a_randomised_defense():
    from varmixup_bench.views.beside import beside_frame
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 100
    recs = [{**r, "dataset": "imagefolder:cifar10-jpeg"} for r in (
        _rec("varmixup+varmi", "clean", np.ones(n), eps=0.0, threat="none", stochastic=True,
             clean=_correct(n, range(30))),
        _rec("varmixup+varmi", "pgd10", _correct(n, range(32)), threat="oblivious", stochastic=True),
        _rec("varmixup+varmi", "adaptive-pgd10", _correct(n, range(97)) * 10, threat="adaptive", stochastic=True,
             draws=10, worst=_correct(n, range(99))),
        _rec("erm", "clean", np.ones(n), eps=0.0, threat="none", clean=_correct(n, range(15))),
        _rec("erm", "pgd10", np.zeros(n)),
        _rec("erm+xyz", "clean", np.ones(n), eps=0.0, threat="none"),  # not in the paper: no row
        # ERM at other epochs: a variant with fewer cells, not set beside the paper's ERM
        {**_rec("erm", "clean", np.ones(n), eps=0.0, threat="none", model="h-erm-short"),
         "train_config": {"epochs": 1}})]
    for r in recs[:3]:
        r["inference_config"] = {"lambda_mi": 1.0, "n_mi": 30}
    frame = beside_frame(wide_frame(leaderboard_frame(recs)), "paper", "cifar10")
    rows = {r["defense"]: r for r in frame.to_dict("records")}
    (erm_label,) = [k for k in rows if k.startswith("erm [")]  # one ERM row of the two variants, named as one
    assert set(rows) == {"varmixup+varmi (λ_MI = 1)", erm_label}  # ours at lambda_MI = 1, which the row says
    v = rows["varmixup+varmi (λ_MI = 1)"]
    cols = list(frame.columns)
    assert cols[cols.index("pgd10 ε=8/255: ours") + 1:][:2] == ["adaptive-pgd10 ε=8/255: ours",
                                                             "adaptive-pgd10 ε=8/255 worst-case: ours"]
    assert v["clean: paper [Table 2]"] == "82.15 ± 0.92" and v["clean: ours"].startswith("70.0 [")
    assert v["pgd10 ε=8/255: paper [Table 2]"] == "66.84 ± 1.08" and v["pgd10 ε=8/255: ours"].startswith("68.0 [")
    assert v["adaptive-pgd10 ε=8/255: ours"].startswith("3.0 [")
    assert v["adaptive-pgd10 ε=8/255 worst-case: ours"].startswith("1.0 [")
    e = rows[erm_label]  # the variant with both cells (clean, pgd10), not the 1-epoch one
    assert e["clean: paper [Table 2]"] == "94.5 ± 0.14" and e["pgd10 ε=8/255: ours"].startswith("0.0 [")
    assert e["corruptions: paper [Table 4]"] == "69.29 ± 0.21" and e["corruptions: ours"] == ""  # not measured
    assert e["adaptive-pgd10 ε=8/255: ours"] == ""  # a deterministic defense has no adaptive column of its own


def test_a_reference_is_checked_by_name_and_dataset():
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.views.beside import parse_reference

    assert parse_reference("paper:cifar100") == ("paper", "cifar100") and parse_reference("paper") == ("paper", None)
    with pytest.raises(BenchError, match="unknown reference 'papr'; valid references: paper"):
        parse_reference("papr")
    with pytest.raises(BenchError, match="has no dataset 'mnist'; it has cifar10, cifar100, svhn, tiny-imagenet"):
        parse_reference("paper:mnist")


def test_a_row_label_that_says_lambda_mi_is_not_told_it_twice():
    """One defense at two lambda_MI values: the leaderboard labels its rows with the differing lambda_mi, and the
    reference table keeps that label (it says which variant stands beside the paper) without restating
    `(λ_MI = …)` after it."""
    from varmixup_bench.views.beside import beside_frame
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 100
    recs = []
    for lam, model in ((0.5, "h-a"), (0.2, "h-a")):
        for r in (_rec("mixup+mi", "clean", np.ones(n), eps=0.0, threat="none", stochastic=True, model=model),
                  _rec("mixup+mi", "pgd10", _correct(n, range(30)), threat="oblivious", stochastic=True, model=model)):
            r.update(dataset="imagefolder:cifar10-jpeg", inference_config={"lambda_mi": lam, "n_mi": 30},
                     eval_hash=f"{r['eval_hash']}-{lam}")
            recs.append(r)
    rows = list(beside_frame(wide_frame(leaderboard_frame(recs)), "paper", "cifar10")["defense"])
    assert len(rows) == 1 and "lambda_mi=" in rows[0] and "λ_MI" not in rows[0], rows


def test_a_column_split_by_another_defense_does_not_blank_ours():
    """ERM's pgd10 on 50 images and AT's on 200 split the wide table's pgd10 column in two (n_examples=…): AT's
    number beside the paper's used to be blank; now each row shows its own cell, saying what differs."""
    from varmixup_bench.views.beside import beside_frame
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 200
    recs = [{**r, "dataset": "cifar10"} for r in [
        _rec("at", "clean", np.ones(n), eps=0.0, threat="none"), _rec("at", "pgd10", _correct(n, range(100))),
        _rec("erm", "clean", np.ones(50), eps=0.0, threat="none"), _rec("erm", "pgd10", np.zeros(50))]]
    wide = wide_frame(leaderboard_frame(recs))
    assert "pgd10 ε=8/255" not in wide.columns  # split by n_examples
    rows = {r["defense"]: r for r in beside_frame(wide, "paper", "cifar10").to_dict("records")}
    assert rows["at"]["pgd10 ε=8/255: ours"].startswith("50.0 [") and "(n_examples=200)" in rows["at"]["pgd10 ε=8/255: ours"]
    assert rows["erm"]["pgd10 ε=8/255: ours"].startswith("0.0 [") and "(n_examples=50)" in rows["erm"]["pgd10 ε=8/255: ours"]


def test_the_two_regimes_are_set_side_by_side_under_the_beside_table():
    """The columns say "pgd10 ε=8/255" on both sides, but the paper's PGD-10 steps 8/255 and ours 2/255 (and its
    ± is over 10 trials): the page sets the reference's preset beside ours, read from the presets, so a reader
    sees it under the table; a reference with no preset of its name gets no such table, and says nothing of one."""
    from dataclasses import replace

    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.views.beside import regime_table, render_beside
    from varmixup_bench.views.leaderboard import leaderboard_frame, wide_frame

    n = 50
    recs = [{**_rec("erm", "clean", np.ones(n), eps=0.0, threat="none"), "dataset": "cifar10"},
            {**_rec("erm", "pgd10", np.zeros(n)), "dataset": "cifar10"}]
    ours = replace(get_preset("cifar-regime"), trials=3)  # a campaign's `set` shows in its column
    text = render_beside(wide_frame(leaderboard_frame(recs)), "paper", "cifar10", ours)
    assert "| PGD step of the evaluation at ε = 8/255 | 8/255 | 2/255 |" in text
    assert "| trials per evaluation | 10 | 3 |" in text and "| network | resnet34 | fast-cnn-half |" in text
    assert "as the table below sets out" in text
    assert regime_table("no-such-preset", ours) == ""
    bare = render_beside(wide_frame(leaderboard_frame(recs)), "paper", "cifar10")
    assert "| setting |" not in bare and "table below" not in bare
