"""The CLI's layout (one module per command group), the Preset field metadata behind `bench run`'s options and
the one preset check, attack kinds, and no restated defaults (`getattr(settings, "x", default)`) in the source."""
from __future__ import annotations

import importlib
import re
from dataclasses import fields
from pathlib import Path

import pytest

from tests_cli_helper import bench_cli

SRC = Path(__file__).resolve().parents[1] / "src" / "varmixup_bench"

# command group module -> the commands it defines
GROUPS = {
    "run": ["run"],
    "listing": ["list"],
    "views": ["leaderboard", "diagnose", "plot"],
    "sweep": ["sweep", "campaign"],
    "report": ["report", "converge"],
    "vae": ["vae", "samples", "fid"],
    "records": ["retire", "restore", "export", "import"],
    "perf": ["perf"],
}


def test_every_command_group_has_its_module_and_help_lists_every_command():
    import varmixup_bench.cli as cli

    assert (SRC / "cli" / "__init__.py").is_file() and (SRC / "cli" / "__main__.py").is_file()
    assert not (SRC / "cli.py").exists()
    for module in GROUPS:
        assert (SRC / "cli" / f"{module}.py").is_file(), module
        importlib.import_module(f"varmixup_bench.cli.{module}")
    assert callable(cli.main) and cli.app is not None and cli.out is not None and cli.err is not None
    code, out, err = bench_cli("--help")
    assert code == 0, err
    for command in (c for commands in GROUPS.values() for c in commands):
        assert re.search(rf"│ {re.escape(command)}\s", out), (command, out)


def _commands(group, path=()):
    """Every leaf command's argument path under a click group (typer's), for `--help` on each."""
    if hasattr(group, "commands"):
        for name, sub in group.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield list(path)


def test_no_help_text_loses_a_bracketed_word_to_rich_markup():
    """rich reads `[campaign]` in a help string as a style tag and drops it ('TOML: , [], [], []' was what
    `bench campaign run --help` said): every command's help keeps its bracketed words."""
    import typer.main

    from varmixup_bench.cli import app

    leaves = list(_commands(typer.main.get_command(app)))
    assert ["campaign", "run"] in leaves and len(leaves) > 15
    for path in leaves:
        code, out, err = bench_cli(*path, "--help")
        assert code == 0, (path, err)
        assert not re.search(r"\(\s*,|: ,|\[\]", out), (path, out)
    code, out, _ = bench_cli("campaign", "run", "--help")
    assert "[campaign], [[pass]], [[step]], [[claim]]" in re.sub(r"[\s│]+", " ", out)


def test_each_command_lives_in_its_group_module():
    from varmixup_bench.cli import app

    where = {(c.name or c.callback.__name__): c.callback.__module__ for c in app.registered_commands}
    where.update({g.name: "varmixup_bench.cli.sweep" for g in app.registered_groups})
    for module, commands in GROUPS.items():
        for command in commands:
            assert where.get(command) == f"varmixup_bench.cli.{module}", (command, where.get(command))


def _run_options() -> dict:
    """{option: its click parameter} of `bench run`."""
    import typer

    from varmixup_bench.cli import app

    return {o: p for p in typer.main.get_command(app).commands["run"].params for o in p.opts}


def _run_aliases() -> dict[str, str]:
    """{Preset field: option} of every `bench run` option that aliases a Preset field."""
    from varmixup_bench.config.presets import option_fields

    return {f: o for f, o in option_fields().items() if o in _run_options()}


def test_every_run_alias_has_help_and_range_metadata_and_its_help_comes_from_it():
    from varmixup_bench.config.presets import PRESET_FIELDS, field_help

    aliases = _run_aliases()
    assert len(aliases) >= 22, aliases
    code, out, _ = bench_cli("run", "--help")
    assert code == 0
    flat = re.sub(r"[│\s]+", " ", out)
    params = _run_options()
    for name, option in aliases.items():
        meta = PRESET_FIELDS[name].metadata
        assert meta["help"] and meta["group"], name
        numeric = PRESET_FIELDS[name].type.split(" |")[0] in ("int", "float")
        if numeric and name != "seed":
            assert meta["range"] is not None, name  # every numeric alias has its valid range
        assert option in flat, option
        assert field_help(name) in params[option].help, (name, params[option].help)  # generated from the field


@pytest.mark.parametrize("field, option, value", [
    ("n_mi", "--n-mi", "0"),
    ("lambda_mi_default", "--lambda-mi", "2"),
    ("eta", "--eta", "0"),
    ("trades_beta", "--trades-beta", "-1"),
    ("vae_gamma", "--vae-gamma", "0"),
    ("n_adaptive", "--n-adaptive", "0"),
])
def test_a_bad_value_gives_one_message_via_set_preset_file_and_the_option(tmp_path, field, option, value):
    toml = tmp_path / "bad.toml"
    toml.write_text(f"{field} = {value}\n")
    errors = []
    for args in (["--set", f"{field}={value}"], ["--preset-file", str(toml)], [option, value]):
        wd = tmp_path / "wd"
        code, out, err = bench_cli("run", "--defense", "erm", *args, "--workdir", str(wd), "--no-progress")
        assert code == 2, out + err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert not wd.exists()  # refused before any work
        errors.append(err.strip())
    assert len(set(errors)) == 1, errors
    assert f"preset field {field} must be" in errors[0] and f"(option {option})" in errors[0], errors[0]


def test_the_cli_restates_no_range_check():
    text = "\n".join(p.read_text() for p in (SRC / "cli").glob("*.py"))
    for pattern in (r"lambda_mi is not None and", r"<= lambda_mi <=", r"trades_beta < 0", r"--eta values must",
                    r"--lambda-mi values must", r"\(\"eta\", eta\)"):
        assert not re.search(pattern, text), pattern


def test_every_registered_attack_has_a_kind_and_diagnostics_select_by_it():
    from varmixup_bench.attacks import ATTACKS
    from varmixup_bench.attacks.base import ATTACK_KINDS, attacks_of_kind
    from varmixup_bench.attacks.spec import attack_class
    from varmixup_bench.views.diagnostics import GRADIENT_ATTACKS

    for name in ATTACKS.names():
        assert ATTACKS.get(name).kind in ATTACK_KINDS, name
    for spec, kind in (("transfer:erm", "transfer"), ("torchattacks:PGD", "gradient"),
                       ("adaptive:torchattacks:PGD", "adaptive-gradient"), ("surrogate-pgd50", "surrogate")):
        assert attack_class(spec).kind == kind, spec
    assert {"adaptive-apgd", "adaptive-pgd10", "adaptive-pgd50", "pgd10", "pgd50", "fgsm"} <= set(GRADIENT_ATTACKS)
    assert "tpgd10" not in GRADIENT_ATTACKS and "spsa" not in GRADIENT_ATTACKS
    assert attacks_of_kind("gradient", steps=10) == ("pgd10",)
    assert attacks_of_kind("adaptive-gradient", steps=10) == ("adaptive-pgd10",)


def test_no_getattr_with_a_default_on_settings_remains():
    pattern = re.compile(r"getattr\(\s*[\w.]*settings\w*\s*,\s*[\"'][^\"']+[\"']\s*,")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == [], hits


def test_attacks_import_no_training_runner():
    for p in (SRC / "attacks").glob("*.py"):
        assert not re.search(r"(from|import) varmixup_bench\.training\.runner", p.read_text()), p.name


def test_an_attack_without_settings_reads_the_default_preset():
    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.config.presets import get_preset

    quick = get_preset(None)
    assert build_attack("adaptive-pgd10", 8 / 255, None, None).eot == quick.n_adaptive
    assert build_attack("spsa", 8 / 255, None, None).nb_iter == quick.spsa_iters
    assert {f.name for f in fields(quick)} >= {"n_adaptive", "worst_case_draws", "spsa_iters"}


def test_transfer_gets_its_source_defense_from_the_evaluation_context():
    from types import SimpleNamespace

    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.core.errors import BenchError

    asked = []
    source = SimpleNamespace(classifier="F_w of erm")
    ctx = SimpleNamespace(defense_provider=lambda spec: asked.append(spec) or source)
    atk = build_attack("transfer:erm", 8 / 255, None, None)
    assert atk.attacked_model(SimpleNamespace(info={"context": ctx}), None) == "F_w of erm"
    assert atk.attacked_model(SimpleNamespace(info={"context": ctx}), None) == "F_w of erm" and asked == ["erm"]
    with pytest.raises(BenchError, match="needs defense erm"):
        build_attack("transfer:erm", 8 / 255, None, None).attacked_model(SimpleNamespace(info={}), None)
