"""Property-based tests of the input grammars: every input parses to a valid object or fails cleanly."""
from __future__ import annotations

import math
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.parsing import parse_eps, parse_eps_list, parse_name_list, parse_step
from varmixup_bench.defenses import INFERENCE, RECIPES
from varmixup_bench.defenses.spec import DefenseSpec, parse_defense_spec
from tests_cli_helper import bench_cli

ALPHABET = string.ascii_letters + string.digits + "+-_./:, " + "é∞\t"
names = st.sampled_from(RECIPES.names())
rules = st.sampled_from(INFERENCE.names())


@given(st.text(alphabet=ALPHABET, max_size=30))
def test_defense_spec_parses_or_raises_bench_error(text):
    try:
        spec = parse_defense_spec(text)
    except BenchError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert isinstance(spec, DefenseSpec) and (spec.recipe in RECIPES or spec.zoo_model) and spec.inference in INFERENCE
        assert parse_defense_spec(str(spec)) == spec


@given(st.text(alphabet=ALPHABET, max_size=30))
def test_zoo_spec_parses_or_raises_bench_error(name):
    try:
        spec = parse_defense_spec(f"robustbench:{name}")
    except BenchError as exc:
        assert "\n" not in str(exc) and str(exc)
    else:
        assert spec.zoo_model and spec.zoo_model in name and spec.inference in INFERENCE
        assert parse_defense_spec(str(spec)) == spec


@given(names, rules)
def test_every_registered_combination_round_trips(recipe, rule):
    spec = parse_defense_spec(f"{recipe}+{rule}")
    assert (spec.recipe, spec.inference) == (recipe, rule)


@given(st.text(alphabet=string.digits + "./-+e ,inaf", max_size=20))
def test_eps_parses_to_unit_interval_or_raises(text):
    try:
        v = parse_eps(text)
    except BenchError as exc:
        assert "epsilon" in str(exc)
    else:
        assert math.isfinite(v) and 0 <= v <= 1


@given(st.integers(0, 255), st.integers(1, 1000))
def test_fractions_are_exact(num, den):
    text = f"{num}/{den}"
    if num / den <= 1:
        assert parse_eps(text) == num / den
    else:
        try:
            parse_eps(text)
        except BenchError:
            pass
        else:
            raise AssertionError("eps > 1 accepted")


@given(st.lists(st.integers(0, 64), min_size=1, max_size=6))
def test_eps_lists_keep_order_without_duplicates(nums):
    out = parse_eps_list(",".join(f"{n}/255" for n in nums))
    assert out == list(dict.fromkeys(n / 255 for n in nums))


@given(st.text(alphabet=string.digits + "./-e", max_size=12))
def test_step_parses_or_raises(text):
    try:
        v = parse_step(text)
    except BenchError:
        pass
    else:
        assert 0 < v <= 1


@given(st.text(alphabet=ALPHABET, max_size=20))
def test_name_lists_have_no_empty_entries(text):
    try:
        out = parse_name_list(text, "attack")
    except BenchError:
        pass
    else:
        assert all(out) and all(p == p.strip() for p in out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(defense=st.text(alphabet=ALPHABET, max_size=15), attack=st.text(alphabet=ALPHABET, min_size=1, max_size=12),
       eps=st.text(alphabet=string.digits + "./-", min_size=1, max_size=8))
def test_cli_never_tracebacks_on_bad_specs(tmp_path_factory, defense, attack, eps):
    wd = tmp_path_factory.mktemp("prop")
    code, out, err = bench_cli("run", "--defense", defense, "--attack", attack, "--eps", eps, "--dataset", "nope",
                               "--workdir", str(wd), "--no-progress")
    assert code == 2  # the dataset is always unknown, so no input may start work
    assert "Traceback" not in err and err.strip() and not (wd / "results.sqlite").exists()
