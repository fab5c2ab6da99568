"""A campaign's cells as the forecast and the probes see them: each missing cell of a pass (and each evaluation a
step still has to run) with its training context, parsed defense, recipe, rule and built attack; the models and
VAEs it needs that the workdir lacks; and its seconds from stored records of the same attack, rule and draws."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from varmixup_bench.campaigns.plan import Plan


def without_adv(name: str | None) -> str | None:
    """An `adv-` Var* recipe or rule costs what its plain one does (the same VAE architecture, trained otherwise)."""
    return name[len("adv-"):] if isinstance(name, str) and name.startswith("adv-") else name


@functools.lru_cache(maxsize=None)
def _parts(defense: Any) -> tuple[str | None, str | None]:
    """(recipe, inference rule) of a recorded defense spec, adv- stripped, parsed once per spec (every missing cell
    scans every record); (None, None) for a spec this version cannot parse."""
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.defenses import parse_defense_spec

    try:
        spec = parse_defense_spec(str(defense))
    except (BenchError, ValueError):
        return None, None
    return without_adv(spec.recipe), without_adv(spec.inference)


def rule_of(defense: Any) -> str | None:
    return _parts(defense)[1]


def recipe_of(defense: Any) -> str | None:
    return _parts(defense)[0]


@dataclass
class PlannedCell:
    """One cell of a plan with what its cost depends on: the pass's sweep, the training context (settings, data),
    the parsed defense, its recipe and rule, and the attack as the sweep would build it."""

    pass_name: str
    spec: Any  # runs.sweep.SweepSpec of the pass
    cell: Any  # runs.sweep.Cell
    ctx: Any
    dspec: Any
    recipe: Any
    rule: Any
    attack: Any
    norm: str | None = None  # a step's cell names its norm; a pass's cells take the pass's

    @property
    def test_images(self) -> int:
        return len(self.ctx.dataset.test)

    def evaluation_keys(self) -> set[str]:
        """The evaluation keys (results.record.evaluation_key) a stored record of this cell would have: its attack's
        and those of the named attacks that run it exactly (attacks.spec.named_presets), as `bench report` reuses."""
        from varmixup_bench.attacks.spec import named_presets
        from varmixup_bench.results.record import evaluation_key_of
        from varmixup_bench.training.data import split_fingerprint
        from varmixup_bench.training.runner import defense_key

        s = self.ctx.settings
        train, rule = defense_key(self.cell.defense, self.ctx), self.rule.config()
        test = split_fingerprint(self.ctx.dataset.test)
        return {evaluation_key_of(train, a, rule, test, s.trials, s.seed, s.worst_case_draws)
                for a in [self.attack, *named_presets(self.attack)]}


def planned_cells(plan: Plan, workdir: Path, statuses: list, device: str = "auto",
                  missing_only: bool = True) -> Iterator[PlannedCell]:
    """The plan's missing cells (or all its cells), pass by pass (statuses: campaigns.status.pass_status)."""
    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.defenses import parse_defense_spec

    for p, st in zip(plan.passes, statuses):
        spec = plan.sweep_spec(p, Path(workdir), device=device, show_progress=False)
        for cell in (st.missing if missing_only else st.cells):
            ctx = spec.context(cell.dataset, cell.seed, cell.variant)
            s = ctx.settings
            dspec = parse_defense_spec(cell.defense)
            yield PlannedCell(p.name, spec, cell, ctx, dspec, dspec.trained_recipe(s), dspec.build_rule(s),
                              build_attack(cell.attack, cell.eps, s.step, s))


def step_cells(plan: Plan, workdir: Path, statuses: list, steps: list, device: str = "auto") -> Iterator[PlannedCell]:
    """The evaluations of the plan's steps still to run (steps: campaigns.status.step_status; a step done with the
    current settings runs nothing), each as a PlannedCell named `step NAME`: those whose record neither the store
    nor an earlier missing cell of a pass or step will hold."""
    from varmixup_bench.attacks.spec import build_attack
    from varmixup_bench.campaigns.steps import STEPS
    from varmixup_bench.defenses import parse_defense_spec
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.runs.sweep import Cell, SweepSpec

    todo = [step for step, st in zip(plan.steps, steps) if st.done is None and STEPS.get(step.kind).cells]
    if not todo:
        return
    planned = {r.get("eval_hash") for r in ResultStore(workdir).records()}
    for pc in planned_cells(plan, workdir, statuses, device):
        planned |= pc.evaluation_keys()
    for step in todo:
        spec = SweepSpec([step.args["defense"]], [], [plan.dataset], [step.seed], None, step.settings, Path(workdir),
                         device, {}, None, False, loaded_data=plan.loaded_data)
        ctx = spec.context(plan.dataset, step.seed, ())
        s = ctx.settings
        dspec = parse_defense_spec(step.args["defense"])
        recipe, rule = dspec.trained_recipe(s), dspec.build_rule(s)
        for attack, eps, norm in STEPS.get(step.kind).cells(step.args, s, bool(rule.stochastic)):
            atk = build_attack(attack, s.eps_for(norm) if eps is None else eps, s.step, s, norm)
            cell = Cell(plan.dataset, step.seed, str(dspec), attack, float(atk.eps), ())
            pc = PlannedCell(f"step {step.name}", spec, cell, ctx, dspec, recipe, rule, atk, norm)
            keys = pc.evaluation_keys()
            if not keys & planned:
                planned |= keys
                yield pc


def untrained(pc: PlannedCell, models, vaes) -> dict[str, tuple[str, dict]]:
    """The models and VAEs the cell needs that the workdir's caches (training.cache.WeightCache) lack, its attack's
    other defenses included: key -> ("model" | "vae", its training config)."""
    from varmixup_bench.defenses.latent import source_dataset, vae_config, vae_key
    from varmixup_bench.training.cache import config_hash
    from varmixup_bench.training.runner import training_key_config

    from varmixup_bench.defenses import parse_defense_spec

    s = pc.ctx.settings
    out: dict[str, tuple[str, dict]] = {}
    # the cell's own defense, then those its attack loads (a transfer attack's source, KID's features)
    for dspec in [pc.dspec, *(parse_defense_spec(o) for o in pc.attack.other_defenses())]:
        if dspec.zoo_model:
            continue  # a model-zoo classifier is loaded, never trained (its rule, e.g. +mi, has no VAE)
        recipe, rule = dspec.build_recipe(s), dspec.build_rule(s)
        cfg = training_key_config(recipe, pc.ctx, dspec.recipe, s.epochs_for(dspec.recipe))
        key = config_hash(cfg)
        if not models.exists(key):
            out[key] = ("model", cfg)
        for part in (recipe, rule):  # the Var* recipes' and rules' MMD-VAE
            if hasattr(part, "adversarial_vae"):
                vkey = vae_key(pc.ctx, part.adversarial_vae, source_dataset(pc.ctx))
                if not vaes.exists(vkey):
                    out[vkey] = ("vae", vae_config(s, part.adversarial_vae))
    return out


def _draws(record: dict) -> int:
    """How many draws of a randomised predictor classified each adversarial example (per_image's count; 1 for a
    deterministic one): a VarMI evaluation's cost is mostly these."""
    from varmixup_bench.results.record import field_value

    per_image = field_value(record.get("per_image"))
    return int(per_image.get("draws", 1)) if isinstance(per_image, dict) else 1


def exact_seconds(pc: PlannedCell, records: list[dict]) -> float | None:
    """The cell's seconds from stored records of the same attack on the same inference rule with as many draws, of
    the same architecture, trials and images (a radius of 0 apart: the attack returns its input; KID: the same
    recipe); None without."""
    from varmixup_bench.views.report import estimate_seconds

    s = pc.ctx.settings
    rule = without_adv(pc.dspec.inference)
    draws = int(s.worst_case_draws) if pc.rule.stochastic else 1
    images = pc.test_images if not isinstance(pc.attack.config().get("subset"), int) else min(
        int(pc.attack.config()["subset"]), pc.test_images)
    exact = [r for r in records if r.get("attack") == pc.attack.spec and rule_of(r.get("defense")) == rule
             and _draws(r) == draws and r.get("model") == s.model and r.get("trials") == s.trials
             and r.get("n_examples") == images and bool(r.get("eps") == 0) == bool(pc.attack.eps == 0)
             and (not pc.attack.uses_recipe or recipe_of(r.get("defense")) == without_adv(pc.dspec.recipe))]
    return estimate_seconds(pc.cell.attack, pc.attack.config(), bool(pc.rule.stochastic), exact, None,
                            pc.cell.defense, pc.ctx.dataset.name)
