"""Figures quoted in the README, the reference pages under docs/ and the leaderboard notes match the result files
they cite."""
from __future__ import annotations

from pathlib import Path

import pytest

from varmixup_bench.results.citations import check_citations, check_claim_citations, find_citations

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "leaderboards").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_quoted_figures_match_their_sources(doc):
    assert check_citations(doc) == []
    assert check_claim_citations(doc) == []


def test_a_cited_claim_must_keep_its_number_verdict_and_note(tmp_path):
    (tmp_path / "page.md").write_text(
        "# Campaign\n\n## Claims\n\ntext\n\n| # | a | b | verdict |\n| --- | --- | --- | --- |\n"
        "| 1 | x | y | **holds** (VarERM within 6 points of ERM) |\n| 2 | x | y | **within noise** (VarMixup within 6) |"
        "\n\n## Flags\n")
    doc = tmp_path / "doc.md"
    doc.write_text('Within 6 (claim 1<!-- claim: page.md holds "VarERM within 6" -->); claim 2<!-- claim: page.md '
                   'holds "VarMixup" -->; claim 1<!-- claim: page.md holds "Mixup within 1" -->;\n'
                   'claim 3<!-- claim: page.md holds "x" -->, claim 1<!-- claim: gone.md holds "x" -->, '
                   'claim 1<!-- claim: page.md holds -->, claim 1<!-- claim: page.md holds "within 6" -->, '
                   'claim 1<!-- claim: page.md holds "" -->, claim 2<!-- claim: page.md "within noise" "VarMixup" -->.\n')
    assert check_claim_citations(doc) == [
        "doc.md:1: the text says claim 2 holds but page.md says within noise",
        'doc.md:1: claim 1 of page.md is "VarERM within 6 points of ERM", not about "Mixup within 1"',
        "doc.md:2: page.md has no claim 3", "doc.md:2: cited page gone.md does not exist",
        "doc.md:2: a claim citation is PAGE VERDICT \"words of its note\", got ['page.md', 'holds']",
        'doc.md:2: "within 6" is in the notes of claims 1, 2 of page.md: quote words of claim 1\'s alone',
        'doc.md:2: claim 1 of page.md is "VarERM within 6 points of ERM", not about ""']


def test_the_readme_cites_its_leaderboard_figures():
    assert len(find_citations((ROOT / "README.md").read_text())) >= 5


def test_a_drifted_figure_and_an_ambiguous_citation_are_reported(tmp_path):
    (tmp_path / "r.csv").write_text("defense,attack,eps,robust_acc\nat,pgd10,0.0313725490196,27.004\n"
                                    "at,pgd10,0.0156862745098,31.0\n")
    doc = tmp_path / "doc.md"
    doc.write_text("AT keeps 28 %<!-- cite: r.csv defense=at attack=pgd10 eps=8/255 -->.\n"
                   "It keeps 27.00 %<!-- cite: r.csv defense=at attack=pgd10 eps=8/255 field=robust_acc -->.\n"
                   "Then 31 %<!-- cite: r.csv defense=at -->, 5 %<!-- cite: missing.csv defense=at -->.\n")
    problems = check_citations(doc)
    assert problems[0] == "doc.md:1: the text says 28 but r.csv has robust_acc = 27.00"
    assert len(problems) == 3  # line 2 matches; line 3: two records match, and a missing file
    assert "2 records of r.csv match" in problems[1] and "missing.csv does not exist" in problems[2]


def test_a_dotted_filter_reads_inside_a_json_field_and_tells_one_models_settings_apart(tmp_path):
    """One model's PGD-10 under VarMI at lambda_MI 0.5 and 0.2, and a model trained at eta 2: the fields alone
    match several records; a dotted path into inference_config / train_config selects one, numbers as numbers."""
    import json

    import pandas as pd

    def row(lam, eta, acc):
        return {"defense": "varmixup+varmi", "attack": "pgd10", "eps": 8 / 255, "robust_acc": acc,
                "inference_config": json.dumps({"lambda_mi": lam, "n_mi": 30}),
                "train_config": json.dumps({"recipe_config": {"eta": eta}})}
    pd.DataFrame([row(0.5, 1.0, 68.23), row(0.2, 1.0, 40.1), row(0.5, 2.0, 61.0)]).to_csv(tmp_path / "r.csv")
    base = "r.csv defense=varmixup+varmi attack=pgd10 eps=8/255"
    doc = tmp_path / "doc.md"
    doc.write_text(f"68.2 %<!-- cite: {base} inference_config.lambda_mi=0.5 train_config.recipe_config.eta=1 -->,\n"
                   f"40.1 %<!-- cite: {base} inference_config.lambda_mi=1/5 -->, 61 %<!-- cite: {base} "
                   f"train_config.recipe_config.eta=2.0 -->.\n"
                   f"68.2 %<!-- cite: {base} inference_config.lambda_mi=0.5 -->, 1 %<!-- cite: {base} "
                   f"inference_config.n_mi=30 inference_config.vae.width=32 -->, 2 %<!-- cite: {base} "
                   f"attack_config.steps=10 -->.\n")
    assert check_citations(doc) == [
        "doc.md:3: 2 records of r.csv match {'defense': 'varmixup+varmi', 'attack': 'pgd10', 'eps': '8/255', "
        "'inference_config.lambda_mi': '0.5'} (need exactly one)",
        "doc.md:3: 0 records of r.csv match {'defense': 'varmixup+varmi', 'attack': 'pgd10', 'eps': '8/255', "
        "'inference_config.n_mi': '30', 'inference_config.vae.width': '32'} (need exactly one)",
        "doc.md:3: no column 'attack_config.steps' in r.csv"]


def test_a_dotted_filter_reads_json_true_false_null_and_a_word_against_a_number(tmp_path):
    import json

    import pandas as pd

    rows = [{"defense": d, "value": v, "inference_config": json.dumps({"vae": {"adversarial": adv, "from": src, "width": 32}})}
            for d, v, adv, src in (("varmi", 1.0, False, None), ("adv-varmi", 2.0, True, None),
                                   ("varmi", 3.0, False, "digits"))]
    pd.DataFrame(rows).to_csv(tmp_path / "r.csv")
    doc = tmp_path / "doc.md"
    doc.write_text("2.0<!-- cite: r.csv inference_config.vae.adversarial=true field=value -->, "
                   "1.0<!-- cite: r.csv defense=varmi inference_config.vae.from=null field=value -->, "
                   "3.0<!-- cite: r.csv inference_config.vae.from=digits field=value -->.\n"
                   "1.0<!-- cite: r.csv defense=varmi inference_config.vae.width=abc field=value -->.\n")
    assert check_citations(doc) == [  # a word against a number matches nothing (and is no crash)
        "doc.md:2: 0 records of r.csv match {'defense': 'varmi', 'inference_config.vae.width': 'abc'} "
        "(need exactly one)"]
