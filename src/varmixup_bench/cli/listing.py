"""`bench list KIND`: the registered names of one kind."""
from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from varmixup_bench.cli import console
from varmixup_bench.cli.common import app
from varmixup_bench.core.errors import BenchError

LIST_KINDS = ("defenses", "attacks", "datasets", "models", "presets")


def _preset_value(field: str, value) -> str:
    """Radii and steps as k/255, dicts as `key value` lists."""
    from varmixup_bench.views.leaderboard import eps_label

    if value is None and field in ("eps", "eps_l2"):
        return "dataset default"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "-"
    if isinstance(value, float) and field.endswith(("eps", "step")):
        return eps_label(value)
    return str(value)


@app.command("list")
def list_(kind: str = typer.Argument(..., help="defenses | attacks | datasets | models | presets"),
          all_: Annotated[bool, typer.Option("--all", help="attacks: also every class of the torchattacks and ART "
                                             "catalogs, with kind and norms")] = False) -> None:
    """List the registered names of one kind."""
    from varmixup_bench.core.registry import unknown_name_message

    if kind not in LIST_KINDS:
        raise BenchError(unknown_name_message("list kind", kind, list(LIST_KINDS)))
    if all_ and kind != "attacks":
        raise BenchError("--all applies to `bench list attacks` only")
    table = Table()
    table.add_column("name")
    table.add_column("description")
    if kind == "defenses":
        from varmixup_bench.defenses import INFERENCE, RECIPES
        from varmixup_bench.defenses.spec import keywords

        def _kw(cls, positional: int) -> str:  # the keywords a spec may set: NAME(key=value)
            kw = keywords(cls, positional)
            return f" (keywords: {', '.join(f'{k}={v!r}' for k, v in sorted(kw.items()))})" if kw else ""

        for n in RECIPES.names():
            table.add_row(f"recipe  {n}", RECIPES.help(n) + _kw(RECIPES.get(n), 1))
        for n in INFERENCE.names():
            table.add_row(f"+infer  {n}", INFERENCE.help(n) + _kw(INFERENCE.get(n), 2))
        table.caption = ("a defense is RECIPE[+INFERENCE], e.g. erm, mixup+mi, or robustbench:NAME[+INFERENCE] "
                         "for a RobustBench model-zoo classifier (--model-dir)")
    elif kind == "presets":
        from dataclasses import fields

        from varmixup_bench.config.presets import PRESETS

        presets = [PRESETS.get(n) for n in PRESETS.names()]
        table = Table(title="presets (override any field with --set FIELD=VALUE, or write your own with --preset-file)")
        table.add_column("field")
        for p in presets:
            table.add_column(p.name)
        for f in fields(presets[0]):
            table.add_row(f.name, *[_preset_value(f.name, getattr(p, f.name)) for p in presets])
    elif kind == "attacks":
        from varmixup_bench.attacks import ATTACKS
        from varmixup_bench.attacks.spec import FAMILIES

        table.add_column("keywords")
        for n in ATTACKS.names():
            cls = ATTACKS.get(n)
            defaults = sorted((k, getattr(cls, k, v[1])) for k, v in cls.parameters().items())
            table.add_row(n, ATTACKS.help(n), ", ".join(f"{k}={'preset' if d is None else d}" for k, d in defaults))
        for n in FAMILIES.names():
            table.add_row(f"{n}:…", FAMILIES.help(n), "")
        if all_:
            from varmixup_bench.attacks.catalog import catalog_table

            console.out.print(table)
            table = catalog_table()
    else:
        if kind == "datasets":
            from varmixup_bench.training.data import DATASETS as reg
        else:
            from varmixup_bench.training.models import MODELS as reg
        for n in reg.names():
            table.add_row(n, reg.help(n))
    console.out.print(table)

