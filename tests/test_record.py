"""The evaluation record's schema and its identity live in one module (results.record): the store, the runner and
the views agree on its fields, new records carry its schema version, every lookup of "the same evaluation" uses
its one evaluation key, and the package's modules import each other without a cycle."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from varmixup_bench.results import record as schema

PACKAGE_DIR = Path(schema.__file__).resolve().parents[1]


def test_the_former_field_lists_are_the_record_modules():
    from varmixup_bench.results.store import RECORD_FIELDS
    from varmixup_bench.views import leaderboard

    assert RECORD_FIELDS == schema.REQUIRED_FIELDS and set(RECORD_FIELDS) <= set(schema.COLUMNS)
    assert leaderboard.COLUMNS is schema.COLUMNS and leaderboard.ROW_KEY is schema.ROW_KEY
    assert leaderboard.VARIANT_KEY is schema.VARIANT_KEY and leaderboard.TRAINING_FIELDS is schema.TRAINING_FIELDS
    assert set(schema.ROW_KEY) <= set(schema.COLUMNS)
    assert len(schema.FIELDS) == len(set(schema.FIELDS))


def test_old_records_read_as_schema_version_1():
    assert schema.record_schema_version({"dataset": "digits"}) == 1
    assert schema.record_schema_version({"schema_version": schema.SCHEMA_VERSION}) == schema.SCHEMA_VERSION
    assert schema.record_norm({"threat_model": "none"}) == "none" and schema.record_norm({}) == "Linf"


def test_a_record_is_within_the_schema_and_its_key_is_the_stores_and_the_sweeps(erm, tmp_path):
    import varmixup_bench as bench
    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.training.runner import stored_or_evaluate
    from varmixup_bench.views.leaderboard import leaderboard_frame

    rec = bench.evaluate(erm, "clean", workdir=tmp_path, show_progress=False)
    assert set(rec) <= set(schema.FIELDS), set(rec) - set(schema.FIELDS)
    assert set(schema.REQUIRED_FIELDS) <= set(rec)
    assert rec["schema_version"] == schema.SCHEMA_VERSION
    frame = leaderboard_frame([rec])
    assert set(frame.columns) <= set(schema.FIELDS) | {"flags"}

    settings = erm.info["settings"]
    atk = build_attack("clean", 0.0, settings.step, settings, settings.norm)
    key = schema.evaluation_key(erm, atk, erm.dataset.test, settings.trials, settings.seed)
    assert key == rec["eval_hash"]
    store = ResultStore(tmp_path)
    assert store.latest(key) == rec  # the store's lookup
    assert stored_or_evaluate(erm, "clean", workdir=tmp_path) == rec  # converge and report: reused, not re-run
    assert len(store.records()) == 1

    # the sweep's run_cell: evaluate(reuse=True) with the cell's tag reuses the same evaluation and tags a copy
    tagged = bench.evaluate(erm, "clean", workdir=tmp_path, show_progress=False, reuse=True,
                            tags={"sweep_key": "cell"})
    assert tagged["eval_hash"] == key and tagged["sweep_key"] == "cell" and tagged["seconds"] == 0.0
    assert tagged["reused_from"] == rec["timestamp"] and tagged["clean_acc"] == rec["clean_acc"]
    assert set(tagged) <= set(schema.FIELDS)
    again = bench.evaluate(erm, "clean", workdir=tmp_path, show_progress=False, reuse=True,
                           tags={"sweep_key": "cell"})
    assert again == tagged and len(store.records()) == 2  # the tagged cell is done: nothing stored again


def test_a_sweep_cell_reuses_a_stored_evaluation_of_the_same_key(tmp_path):
    """A cell evaluated by `bench run` before the sweep is not evaluated again by the sweep: it is decided by the
    same evaluation key as stored_or_evaluate, stored with the cell's sweep_key, and then no longer pending."""
    import varmixup_bench as bench
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.runs.sweep import Cell, SweepSpec, _defense, run_cell

    spec = SweepSpec(defenses=["erm"], attacks=["clean"], datasets=["digits"], seeds=[0], eps=None, preset="quick",
                     workdir=tmp_path, show_progress=False, epochs=2, overrides={"test_subset": 60})
    cell = Cell("digits", 0, "erm", "clean", 0.0)
    first = bench.evaluate(_defense(spec, "erm", "digits", 0, ()), "clean", eps=0.0, workdir=tmp_path,
                           show_progress=False)
    assert [len(j.cells) for j in spec.pending()] == [1]
    rec = run_cell(spec, cell)
    assert rec["eval_hash"] == first["eval_hash"] and rec["seconds"] == 0.0 and rec["sweep_key"] == spec.cell_key(cell)
    assert spec.pending() == [] and len(ResultStore(tmp_path).records()) == 2


# ---- import cycles ----

def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(function_level: bool = True) -> dict[str, set[str]]:
    """module -> the package's modules it imports (top-level imports, and with `function_level` also the imports
    inside functions), from the source's `import` / `from` statements."""
    files = {_module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        def visit(node: ast.AST, in_function: bool) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and getattr(child.test, "id", None) == "TYPE_CHECKING":
                    continue  # annotations only: never imported when the program runs
                inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
                targets: list[str] = []
                if isinstance(child, ast.Import):
                    targets = [a.name for a in child.names]
                elif isinstance(child, ast.ImportFrom):
                    src = child.module or ""
                    if child.level:
                        base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                        src = ".".join(base[:len(base) - child.level + 1] + ([child.module] if child.module else []))
                    targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in files else src for a in child.names]
                if targets and (function_level or not in_function):
                    graph[mod].update(t for t in map(resolve, targets) if t and t != mod)
                visit(child, inner)
        visit(ast.parse(path.read_text(encoding="utf-8")), False)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each holds at least one cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


# Cycles through imports inside functions remain only around attacks/, which issue 29 item 3 reworks (a transfer
# attack gets its defense through the context instead of importing the runner; attacks choose defaults by kind):
# at the time of writing attacks <-> attacks.adaptive <-> training.runner, attacks.base <-> attacks.evaluation, and
# attacks.base <-> config.presets. Any cycle that involves no attacks/ module fails; tighten this to "no cycle at
# all" once those are gone.


def test_the_graph_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "varmixup_bench.results.record" in import_graph()["varmixup_bench.results.store"]


def test_no_import_cycle_among_the_packages_modules():
    assert cycles(import_graph(function_level=False)) == []
    assert cycles(import_graph(function_level=True)) == [], "an import cycle (imports inside functions counted)"


@pytest.mark.parametrize("module", ["results.seeds", "views.diagnostics", "views.plots", "views.leaderboard"])
def test_the_views_get_the_schema_from_the_record_module(module):
    """seeds, diagnostics and plots needed the leaderboard only for the schema: they import the record module and
    none of the others (the leaderboard itself uses seeds' pooling and diagnostics' findings)."""
    graph = import_graph()
    assert "varmixup_bench.results.record" in graph[f"varmixup_bench.{module}"]
    views = {f"varmixup_bench.{m}" for m in ("results.seeds", "views.diagnostics", "views.plots",
                                             "views.leaderboard", "views.headline")}
    if module != "views.leaderboard":
        assert not graph[f"varmixup_bench.{module}"] & views
