"""The campaign plan: a TOML file loaded into typed objects and validated before any work.

    [campaign]                       name (used in file names), dataset, preset or preset_file, description, set,
                                     reference ("paper:cifar10": its numbers beside ours on the composed page),
                                     reading ("X.md", relative to the plan: prose placed on the composed page)
    [[pass]]                         in priority order: name, defenses, attacks, seeds, eps, set
    [[step]]                         after the passes: kind = "report" | "converge" | "vae-figure" and its arguments
    [[claim]]                        better = {defense, attack[, eps, seed, metric, pass]}, worse = {...}, note;
                                     seed = "all": the mean over every training seed the passes hold for it
                                     or lower = {...}, higher = {...} (a metric value such as ECE: metric "value");
                                     margin = m: "better is at most m below worse" (lower: at most m above)

Every defense, attack, radius, preset value, step argument and claim cell is checked here, so that a typo fails
with one line (a BenchError: exit status 2) before any data is loaded or any model trained. A pass expands into
the sweep's cells (runs.sweep: one per defense x attack x eps x seed), and each claim side names one of them.
"""
from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from varmixup_bench.core.errors import BenchError
from varmixup_bench.campaigns.steps import REQUIRED, STEP_KEYS, STEPS
from varmixup_bench.core.registry import unknown_name_message

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # campaign names are part of file names
METRICS = ("robust", "clean", "worst", "value")  # what of a record a claim compares: an accuracy
# (results.stats._FIELD) or a metric attack's value (ECE, local linearity; compared with results.stats.compare_values)
TABLES = {"campaign": ("name", "dataset", "preset", "preset_file", "description", "set", "reference",
                       "reading"),
          "pass": ("name", "defenses", "attacks", "seeds", "eps", "set"),
          "claim": ("better", "worse", "lower", "higher", "note", "margin"),
          "cell": ("defense", "attack", "eps", "seed", "metric", "pass")}
NOT_SETTABLE = {"dataset": "give it as [campaign] dataset", "seed": "give the training seeds as seeds = [...]",
                "name": "a preset's name is not a setting", "description": "a preset's description is not a setting"}
_REQUIRED = object()


def _where(plan_path: Path, what: str) -> str:
    return f"{plan_path.name}: {what}" if what else plan_path.name


class Reader:
    """Typed access to one TOML table, every error one line that says where in the plan it is."""

    def __init__(self, table: Any, where: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(table, dict):
            raise BenchError(f"{where}: expected a table, got {table!r}")
        for key in table:
            if key not in allowed:
                raise BenchError(f"{where}: {unknown_name_message('key', key, list(allowed))}")
        self.table, self.where = table, where

    def error(self, message: str) -> BenchError:
        return BenchError(f"{self.where}: {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = _REQUIRED) -> Any:
        if key not in self.table:
            if default is _REQUIRED:
                raise self.error(f"missing key {key!r}")
            return default
        value = self.table[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            names = " or ".join(k.__name__ for k in _tuple(kind))
            raise self.error(f"{key} must be {names}, got {value!r}")
        return value

    def names(self, key: str, default: Any = _REQUIRED) -> list:
        values = self.get(key, list, default)
        if values is default and default is not _REQUIRED:
            return values
        if not values or not all(isinstance(v, str) and v.strip() for v in values):
            raise self.error(f"{key} must be a non-empty list of names, got {values!r}")
        if len(set(values)) != len(values):
            raise self.error(f"{key} lists a name twice: {values!r}")
        return values

    def overrides(self) -> dict[str, Any]:
        """The table's `set = { field = value }`: preset fields, each value checked against the field's type."""
        from varmixup_bench.config.preset_io import coerce

        values = self.get("set", dict, {})
        for key in values:
            if key in NOT_SETTABLE:
                raise self.error(f"set {key}: {NOT_SETTABLE[key]}")
        try:
            return {k: coerce(k, v) for k, v in values.items()}
        except BenchError as exc:
            raise self.error(f"set: {exc}") from None


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _number(value: Any, what: str, reader: Reader) -> float:
    """A radius as TOML gives it: "8/255", "0.5" or a number."""
    from varmixup_bench.core.parsing import parse_number

    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise reader.error(f"invalid {what} {value!r}: expected a number like \"8/255\" or 0.5")
    try:
        return parse_number(str(value), what)
    except BenchError as exc:
        raise reader.error(str(exc)) from None


@dataclass(frozen=True)
class Pass:
    """One sweep of the campaign: defenses x attacks x eps x seeds under the campaign's settings and its own `set`."""

    name: str
    defenses: tuple[str, ...]
    attacks: tuple[str, ...]
    seeds: tuple[int, ...]
    eps: tuple[float, ...] | None  # None: the preset's radius, else the dataset's default (as bench sweep)
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)  # the campaign's `set`, then the pass's
    settings: Any = field(default=None, hash=False, compare=False)  # the resolved Preset (checked)

    @property
    def norm(self) -> str:
        from varmixup_bench.core.norms import parse_norm

        return parse_norm(self.settings.norm).value


@dataclass(frozen=True)
class CellRef:
    """One side of a claim: a cell of a pass and what of it is compared (robust, clean or worst-case accuracy, or
    a metric evaluation's value)."""

    pass_name: str
    cell: Any  # runs.sweep.Cell
    metric: str
    norm: str
    # seed = "all": (pass name, cell) of each training seed, the mean over them compared (results.seeds.pool_seeds)
    pooled: tuple = ()

    def cells(self) -> tuple:
        """(pass name, cell) of every record this side reads: one, or one per seed of a pooled side."""
        return self.pooled or ((self.pass_name, self.cell),)

    def label(self) -> str:
        from varmixup_bench.attacks.spec import attack_class
        from varmixup_bench.results.record import eps_text

        c = self.cell
        where = f" @ {eps_text(c.eps, self.norm)}" if attack_class(c.attack).uses_eps else ""
        if self.pooled:
            seeds = ", ".join(str(cell.seed) for _, cell in self.pooled)
            passes = ", ".join(dict.fromkeys(name for name, _ in self.pooled))
            return f"{c.defense} {c.attack}{where} ({self.metric}, mean of seeds {seeds}, pass {passes})"
        return f"{c.defense} {c.attack}{where} ({self.metric}, seed {c.seed}, pass {self.pass_name})"


@dataclass(frozen=True)
class Claim:
    """`better`'s number is claimed above `worse`'s (better/worse: accuracies, higher is better); a claim written
    with lower/higher (any metric, e.g. ECE) keeps the side claimed lower in `better` with lower_is_better."""

    number: int  # 1-based, in the plan's order
    better: CellRef
    worse: CellRef
    note: str = ""
    lower_is_better: bool = False
    # a non-inferiority claim: better's number is above worse's minus `margin` (lower: below higher's plus margin),
    # in the metric's units (percentage points for accuracies), e.g. "VarERM within 6 points of ERM"
    margin: float = 0.0


@dataclass(frozen=True)
class Step:
    """An extra step after the passes (steps.py: report | converge | vae-figure), its arguments checked."""

    name: str
    kind: str
    args: dict[str, Any]
    seed: int
    overrides: dict[str, Any]
    settings: Any = field(default=None, compare=False)

    def key(self, plan: "Plan") -> str:
        """What determines the step's outputs: a step finished with the same key is not run again."""
        from varmixup_bench.training.cache import config_hash

        return config_hash({"kind": self.kind, "args": self.args, "seed": self.seed, "dataset": plan.dataset,
                            "settings": asdict(self.settings)})


@dataclass
class Plan:
    path: Path
    sha256: str
    name: str
    description: str
    dataset: str
    preset: Any  # a preset name, or a Preset from preset_file
    overrides: dict[str, Any]  # the campaign's `set`
    passes: list[Pass]
    steps: list[Step]
    claims: list[Claim]
    reference: str | None = None  # a transcribed reference shown beside the records ("paper:cifar10"; views.beside)
    reading: Path | None = None  # prose that reads the results, placed on the composed page (relative to the plan)
    # a rehearsal's toy budgets (config.presets.rehearsal_budgets), over every pass's and step's own `set`
    rehearsal: dict[str, Any] = field(default_factory=dict)
    # one copy of each dataset for all the plan's sweep specs (runs.sweep.SweepSpec.loaded_data)
    loaded_data: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def preset_name(self) -> str:
        return self.preset if isinstance(self.preset, str) else self.preset.name

    def settings(self, **overrides: Any):
        """The campaign's settings (preset + `set`) with further overrides, checked (Preset.check)."""
        from varmixup_bench.training.runner import resolve_settings

        return resolve_settings(self.preset, dataset=self.dataset, **self.toy({**self.overrides, **overrides}))

    def toy(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """`overrides` under a rehearsal's budgets (none: as they are): each budget at the rehearsal's size, or at
        the plan's own where that is smaller (a pass's worst_case_draws = 1 stays 1)."""
        from varmixup_bench.config.presets import under_budgets

        return under_budgets(overrides, self.rehearsal) if self.rehearsal else overrides

    def pass_named(self, name: str) -> Pass:
        for p in self.passes:
            if p.name == name:
                return p
        raise BenchError(unknown_name_message("pass", name, [p.name for p in self.passes]))

    def sweep_spec(self, p: Pass, workdir: Path | None = None, device: str = "auto", show_progress: bool = True,
                   data_dir: str | None = None):
        """The pass as a runs.sweep.SweepSpec (workdir None: for listing its cells only). Its preset is the pass's
        resolved settings (the preset with the `set` values; records still name the preset and carry the
        differences as train_overrides): the sweep's own overrides would clash with train()'s `epochs` argument
        when a plan sets the per-recipe `epochs` table."""
        from varmixup_bench.runs.sweep import SweepSpec

        return SweepSpec(list(p.defenses), list(p.attacks), [self.dataset], list(p.seeds),
                         list(p.eps) if p.eps else None, p.settings, workdir, device, {}, data_dir, show_progress,
                         loaded_data=self.loaded_data)

    def cells(self) -> list[tuple[Pass, Any]]:
        """(pass, runs.sweep.Cell) of every cell of every pass, in priority order."""
        return [(p, c) for p in self.passes for job in self.sweep_spec(p).jobs() for c in job.cells]

    def cell_keys(self, p: Pass, workdir: Path, device: str = "auto") -> dict[Any, str]:
        """{runs.sweep.Cell: its sweep key} of the pass's cells (computing a key loads the dataset, never trains):
        what a record of the cell carries as `sweep_key`."""
        spec = self.sweep_spec(p, Path(workdir), device=device, show_progress=False)
        return {c: spec.cell_key(c) for job in spec.jobs() for c in job.cells}

    def state_path(self, workdir: Path) -> Path:
        return Path(workdir) / f"campaign-{self.name}.jsonl"


def load_plan(path: str | Path, rehearsal: dict[str, Any] | None = None) -> Plan:
    """Read and check a plan; every problem is one BenchError line naming the table it is in. `rehearsal`: toy
    budgets (config.presets.rehearsal_budgets) over every `set` of the plan: the plan named NAME-rehearsal, without
    its reading (campaigns.rehearse)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BenchError(f"campaign plan {path} does not exist")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"{path.name}: not valid TOML ({exc})") from None
    top = Reader(data, path.name, ("campaign", "pass", "step", "claim"))
    campaign = Reader(top.get("campaign", dict), _where(path, "[campaign]"), TABLES["campaign"])
    plan = _campaign(path, campaign, rehearsal)
    plan.sha256 = hashlib.sha256(raw).hexdigest()
    pass_tables = top.get("pass", list)
    if not pass_tables:
        raise top.error("a plan needs at least one [[pass]]")
    for i, table in enumerate(pass_tables, 1):
        plan.passes.append(_pass(plan, Reader(table, _where(path, f"pass {i}"), TABLES["pass"])))
    _unique([p.name for p in plan.passes], "pass", path)
    for i, table in enumerate(top.get("step", list, []), 1):
        plan.steps.append(read_step(plan, table, _where(path, f"step {i}")))
    _unique([s.name for s in plan.steps], "step", path)
    cells = plan.cells()
    for i, table in enumerate(top.get("claim", list, []), 1):
        plan.claims.append(_claim(plan, cells, i, Reader(table, _where(path, f"claim {i}"), TABLES["claim"])))
    return plan


def _unique(names: list[str], what: str, path: Path) -> None:
    seen = [n for i, n in enumerate(names) if n in names[:i]]
    if seen:
        raise BenchError(f"{path.name}: two [[{what}]] tables named {seen[0]!r} (names must be unique)")


def _campaign(path: Path, r: Reader, rehearsal: dict[str, Any] | None = None) -> Plan:
    from varmixup_bench.config.presets import get_preset, under_budgets
    from varmixup_bench.training.data import check_dataset_name

    name = r.get("name", str)
    if not NAME.match(name):
        raise r.error(f"name {name!r} must be letters, digits, '.', '_' or '-' (it names the campaign's files)")
    if "preset" in r.table and "preset_file" in r.table:
        raise r.error("give preset or preset_file, not both (a preset file names its base with base = ...)")
    if "preset_file" in r.table:
        from varmixup_bench.config.preset_io import load_preset_file

        preset: Any = load_preset_file(path.parent / r.get("preset_file", str))  # relative to the plan
    else:
        preset = get_preset(r.get("preset", str, None)).name
    overrides = r.overrides()
    dataset = r.get("dataset", str, None) or (get_preset(preset) if isinstance(preset, str) else preset).dataset
    try:
        check_dataset_name(dataset)
    except BenchError as exc:
        raise r.error(str(exc)) from None
    reference = r.get("reference", str, None)
    if reference is not None:
        from varmixup_bench.views.beside import parse_reference

        try:
            parse_reference(reference)
        except BenchError as exc:
            raise r.error(str(exc)) from None
    reading = r.get("reading", str, None)
    if reading is not None and not reading.endswith(".md"):
        raise r.error(f"reading {reading!r} must be a Markdown file (.md), relative to the plan")
    description = r.get("description", str, "")
    if rehearsal:
        name, overrides, reading = f"{name}-rehearsal", under_budgets(overrides, rehearsal), None
        description = ("> **REHEARSAL at toy budgets** (`bench campaign rehearse`: one epoch per model, "
                       f"{rehearsal.get('test_subset')} test images, config.presets.rehearsal_budgets): it shows that "
                       "every pass, step and claim runs; its numbers mean nothing.\n\n" + description)
    plan = Plan(path, "", name, description, dataset, preset, overrides, [], [], [], reference,
                path.parent / reading if reading else None, dict(rehearsal or {}))
    try:
        plan.settings()
    except BenchError as exc:
        raise r.error(str(exc)) from None
    return plan


def _pass(plan: Plan, r: Reader) -> Pass:
    from varmixup_bench.attacks.spec import validate_attack
    from varmixup_bench.defenses import parse_defense_spec

    name = r.get("name", str)
    if not NAME.match(name):
        raise r.error(f"name {name!r} must be letters, digits, '.', '_' or '-'")
    r.where = _where(plan.path, f"pass {name!r}")
    own = r.overrides()
    try:
        settings = plan.settings(**own)
        defenses = tuple(str(parse_defense_spec(d)) for d in r.names("defenses"))
        attacks = tuple(str(validate_attack(a)) for a in r.names("attacks"))
    except BenchError as exc:
        raise r.error(str(exc)) from None
    seeds = r.get("seeds", list, [settings.seed])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) \
            or len(set(seeds)) != len(seeds):
        raise r.error(f"seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    eps = None
    if "eps" in r.table:
        eps = _radii(r, settings)
    p = Pass(name, defenses, attacks, tuple(seeds), eps, plan.toy({**plan.overrides, **own}), settings)
    try:
        _build_cells(plan, p)
    except BenchError as exc:
        raise r.error(str(exc)) from None
    return p


def _radii(r: Reader, settings) -> tuple[float, ...]:
    """The pass's `eps` list, each radius checked in the pass's norm (L-inf at most 1 on the [0,1] scale)."""
    from varmixup_bench.core.parsing import parse_eps

    values = r.get("eps", list)
    if not values:
        raise r.error("eps must be a non-empty list of radii such as [\"8/255\", \"16/255\"]")
    out: list[float] = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise r.error(f"invalid epsilon {v!r}: expected a radius like \"8/255\" or 0.5")
        try:
            e = parse_eps(str(v), settings.norm)
        except BenchError as exc:
            raise r.error(str(exc)) from None
        if e not in out:
            out.append(e)
    return tuple(out)


def _build_cells(plan: Plan, p: Pass) -> None:
    """Build each defense's recipe and rule and each attack at every radius it runs with: their own value checks
    (pgd(steps=-3), a keyword a recipe does not take) fail here, before any data loading or training."""
    from varmixup_bench.attacks.spec import attack_class, build_attack
    from varmixup_bench.defenses import parse_defense_spec

    s = p.settings
    for text in p.defenses:
        spec = parse_defense_spec(text)
        spec.trained_recipe(s)
        spec.build_rule(s)
    radii = list(p.eps) if p.eps else [s.eps_for(None, plan.dataset)]
    for attack in p.attacks:
        for e in radii if attack_class(attack).uses_eps else [0.0]:
            build_attack(attack, e, s.step, s, s.norm)


def _claim(plan: Plan, cells: list, number: int, r: Reader) -> Claim:
    pair = ("lower", "higher") if "lower" in r.table or "higher" in r.table else ("better", "worse")
    if pair[0] == "lower" and ("better" in r.table or "worse" in r.table):
        raise r.error("a claim is better/worse (accuracies) or lower/higher (any metric), not both")
    sides, explicit = [], []
    for side in pair:
        cell = Reader(r.get(side, dict), f"{r.where} {side}", TABLES["cell"])
        sides.append(_cell_ref(plan, cells, cell))
        explicit.append("eps" in cell.table)
    _same_radius(sides, pair, all(explicit), r)
    if sides[0] == sides[1]:
        raise r.error(f"{pair[0]} and {pair[1]} name the same cell and metric")
    if (sides[0].metric == "value") != (sides[1].metric == "value"):
        raise r.error("a metric value is compared with a metric value only")
    if pair[0] == "better" and sides[0].metric == "value":
        raise r.error("better/worse compare accuracies; for a metric value say which is lower: lower = {...}, "
                      "higher = {...}")
    margin = r.get("margin", (int, float), 0.0)
    if isinstance(margin, bool) or not 0 <= margin < float("inf"):
        raise r.error(f"margin must be a finite number >= 0 (how far the first side may fall short of the second), "
                      f"got {margin!r}")
    margin = float(margin)
    return Claim(number, sides[0], sides[1], r.get("note", str, ""), lower_is_better=pair[0] == "lower",
                 margin=margin)


def _same_radius(sides: list, pair: tuple, both_written: bool, r: Reader) -> None:
    """Two sides with a radius are compared at one radius, unless the plan writes eps on both: an omitted eps is
    its pass's own default, so a claim could otherwise set an L2 pass's 0.5 against 8/255 without saying so."""
    from varmixup_bench.attacks.spec import attack_class
    from varmixup_bench.results.record import eps_text

    a, b = sides
    if both_written or not (attack_class(a.cell.attack).uses_eps and attack_class(b.cell.attack).uses_eps):
        return
    if a.norm != b.norm or abs(a.cell.eps - b.cell.eps) > 1e-9:
        raise r.error(f"{pair[0]} is at {eps_text(a.cell.eps, a.norm)} and {pair[1]} at "
                      f"{eps_text(b.cell.eps, b.norm)} (a side without eps takes its pass's radius): write eps on "
                      "both sides to compare two radii")


def _cell_ref(plan: Plan, cells: list, r: Reader) -> CellRef:
    """The plan cell a claim side names: defense and attack as canonical specs; eps omitted: the pass's own radius
    (the preset's or the dataset's default); seed omitted: the lowest seed holding the cell; seed = "all": every
    seed holding it (each from the first pass holding that seed), compared as their mean; pass omitted: the first
    pass (in priority order) holding it."""
    from varmixup_bench.attacks.spec import attack_class, validate_attack
    from varmixup_bench.defenses import parse_defense_spec

    try:
        defense = str(parse_defense_spec(r.get("defense", str)))
        attack = str(validate_attack(r.get("attack", str)))
    except BenchError as exc:
        raise r.error(str(exc)) from None
    uses_eps = attack_class(attack).uses_eps
    kind = attack_class(attack).kind
    metric = r.get("metric", str, "clean" if attack == "clean" else "value" if kind == "metric" else "robust")
    if metric not in METRICS:
        raise r.error(unknown_name_message("metric", metric, list(METRICS)))
    if metric == "value" and kind != "metric":
        raise r.error(f"metric value needs a metric evaluation (ece, linearity, vae-psnr), not {attack}")
    if metric == "worst" and not uses_eps:
        raise r.error(f"metric worst (the worst case over draws of an adversarial example) needs an attack with a "
                      f"radius, not {attack}")
    if "eps" in r.table and not uses_eps:
        raise r.error(f"{attack} has no radius: leave eps out")
    eps = _number(r.table["eps"], "epsilon", r) if "eps" in r.table else None
    every_seed = r.table.get("seed") == "all"
    seed = None if every_seed else r.get("seed", int, None)
    pass_name = r.get("pass", str, None)
    if pass_name is not None:
        try:
            plan.pass_named(pass_name)
        except BenchError as exc:
            raise r.error(str(exc)) from None
    hits = [(p, c) for p, c in cells if c.defense == defense and c.attack == attack
            and (pass_name is None or p.name == pass_name)
            and (seed is None or c.seed == seed)
            and (not uses_eps or abs(c.eps - (eps if eps is not None else p.settings.eps_for(None, plan.dataset))) < 1e-9)]
    if not hits:
        from varmixup_bench.results.record import eps_text

        held = sorted({f"{c.attack}" + (f" @ {eps_text(c.eps, p.norm)}" if attack_class(c.attack).uses_eps else "")
                       + f" seed {c.seed}" for p, c in cells if c.defense == defense})
        wanted = f"{defense} {attack}" + ("" if eps is None else f" @ {r.table['eps']}") + \
                 ("" if seed is None else f" seed {seed}")
        have = f"the passes hold {defense} with: {', '.join(held)}" if held else f"no pass runs {defense}"
        raise r.error(f"missing claim cell {wanted}: {have}")
    low = min(c.seed for _, c in hits)
    p, c = next((p, c) for p, c in hits if c.seed == low)
    if not every_seed:
        return CellRef(p.name, c, metric, p.norm)
    firsts = {}
    for hp, hc in hits:  # passes in priority order: each seed from the first pass holding it
        firsts.setdefault(hc.seed, (hp.name, hc))
    if len(firsts) < 2:
        raise r.error(f'seed = "all" needs a cell recorded for several training seeds; the passes hold '
                      f"{defense} {attack} for seed {low} only")
    _same_but_seed(firsts, plan, r)
    return CellRef(p.name, c, metric, p.norm, tuple(firsts[s] for s in sorted(firsts)))


def _same_but_seed(firsts: dict, plan: Plan, r: Reader) -> None:
    """The passes a pooled side takes its seeds from must evaluate the cell alike (radius, draws, trials, subsets,
    training): only the training seed (and the VAE seed that follows it or is fixed) may differ, else the seeds'
    records are not one cell's and have no one mean."""
    def settings(name: str) -> dict:
        out = asdict(plan.pass_named(name).settings)
        return {k: v for k, v in out.items() if k not in ("seed", "vae_seed")}

    (seed0, (name0, cell0)), *rest = sorted(firsts.items())
    base = settings(name0)
    for seed, (name, cell) in rest:
        other = settings(name)
        differ = sorted(k for k in set(base) | set(other) if base.get(k) != other.get(k))
        if differ or abs(cell.eps - cell0.eps) > 1e-12:
            what = ", ".join(differ) or "the radius"
            raise r.error(f'seed = "all": seed {seed} (pass {name}) and seed {seed0} (pass {name0}) are evaluated '
                          f"differently ({what}); give pass = and seed = N instead")


def read_step(plan, table: Any, where: str):
    """One [[step]] table of the plan, checked: its kind, its arguments (defaults filled in), seed, pass and set."""
    if not isinstance(table, dict) or not isinstance(table.get("kind"), str):
        raise BenchError(f"{where}: a step needs kind = one of {', '.join(STEPS.names())}")
    try:
        kind = STEPS.get(table["kind"])
    except BenchError as exc:
        raise BenchError(f"{where}: {exc}") from None
    r = Reader(table, where, STEP_KEYS + tuple(kind.defaults))
    args = {k: table.get(k, v) for k, v in kind.defaults.items()}
    missing = [k for k, v in args.items() if v is REQUIRED]
    if missing:
        raise r.error(f"a {table['kind']} step needs {', '.join(missing)}")
    default_name = table["kind"] + (f" {args['defense']}" if "defense" in args else "")
    name = r.get("name", str, default_name)
    r.where = f"{plan.path.name}: step {name!r}"
    if not NAME.match(name.replace(" ", "-").replace("+", "-")):
        raise r.error(f"name {name!r}: letters, digits, spaces and '.', '_', '-', '+' only")
    base = {}
    if "pass" in table:
        try:
            base = dict(plan.pass_named(r.get("pass", str)).overrides)
        except BenchError as exc:
            raise r.error(str(exc)) from None
    overrides = plan.toy({**plan.overrides, **base, **r.overrides()})
    seed = r.get("seed", int, None)
    if seed is not None and seed < 0:
        raise r.error(f"seed must be >= 0, got {seed}")
    try:
        settings = plan.settings(**overrides, **({} if seed is None else {"seed": seed}))
        kind.check(args, settings)
    except BenchError as exc:
        raise r.error(str(exc)) from None
    return Step(name, table["kind"], args, settings.seed, overrides, settings)
