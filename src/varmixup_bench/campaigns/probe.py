"""`bench campaign probe`: measure, before a plan runs, what its forecast cannot estimate from stored records.

A probe runs one kind of evaluation (what its cost depends on: the inference rule, the classifier architecture,
the VAE architecture of Var* rules, the attack and its budget, draws, trials, batch size; see `cost_fields`) on a
few stratified test images of a model the workdir has already trained, unrecorded, and stores the seconds per
image in <workdir>/probes.jsonl. The forecast (campaigns.estimate) scales a probe by the images a cell evaluates
(`images_of`: the test subset, SPSA's and the corruptions' subsets, KID's samples). Per-image cost measured on
fewer images overstates the cost a little (smaller batches, fixed costs spread over fewer images): a forecast from
probes errs long. Probes never train: a kind whose models are all untrained stays unknown until one is trained.
"""
from __future__ import annotations

import dataclasses
import functools
import statistics
from pathlib import Path
from typing import Any, Callable

from varmixup_bench.campaigns.cells import PlannedCell, exact_seconds, planned_cells, untrained, without_adv
from varmixup_bench.campaigns.plan import Plan
from varmixup_bench.campaigns.state import JsonLines, git_commit, machine
from varmixup_bench.core.errors import BenchError

PROBE_FILE = "probes.jsonl"
_SCALED = ("eps", "step", "subset", "samples")  # attack config keys that change a cell's result, not its cost per image
_VAE_COST = ("vae_arch", "vae_latent_dim", "vae_latent_channels", "vae_latent_stride", "vae_width")
MIN_IMAGES = 20


def cost_fields(pc: PlannedCell) -> dict[str, Any]:
    """What the cost per image of a cell's evaluation depends on (an `adv-` rule costs what its plain one does)."""
    s = pc.ctx.settings
    fields: dict[str, Any] = {
        "rule": without_adv(pc.dspec.inference), "model": s.model, "channels_last": s.channels_last,
        "attack": pc.cell.attack, "norm": str(pc.attack.norm.value),
        "zero_radius": bool(pc.attack.uses_eps and pc.attack.eps == 0),  # an attack at eps 0 returns its input
        "attack_config": {k: v for k, v in pc.attack.config().items() if k not in _SCALED},
        "draws": s.worst_case_draws if pc.rule.stochastic else 1, "trials": s.trials,
        "batch_size": s.eval_batch_size, "n_mi": s.n_mi,
        "image_shape": list(pc.ctx.dataset.image_shape), "device": str(pc.ctx.device),
    }
    if pc.attack.uses_recipe:
        fields["recipe"] = without_adv(pc.dspec.recipe)
    if hasattr(pc.rule, "adversarial_vae") or (pc.attack.uses_recipe and hasattr(pc.recipe, "adversarial_vae")):
        fields["vae"] = {k: getattr(s, k) for k in _VAE_COST}  # a Var* recipe's VAE costs nothing at inference
    return fields


def signature(pc: PlannedCell) -> str:
    from varmixup_bench.training.cache import config_hash

    return config_hash(cost_fields(pc))


def images_of(config: dict, test_images: int) -> int:
    """How many images (KID: samples) an evaluation with this attack config runs on, given the test split's size."""
    if config.get("samples"):
        return int(config["samples"])
    subset = config.get("subset")
    return min(int(subset), test_images) if subset else test_images


class Probes(JsonLines):
    """The workdir's probes, one JSON line each: signature, fields, stand_in, images, seconds, time, machine."""

    @classmethod
    def of(cls, workdir: Path) -> "Probes":
        return cls(Path(workdir) / PROBE_FILE)

    @functools.cached_property
    def rates(self) -> dict[str, float]:
        """signature -> seconds per image, the median of its probes (read once per Probes object)."""
        rates: dict[str, list[float]] = {}
        for e in self.events():
            try:
                rates.setdefault(str(e["signature"]), []).append(float(e["seconds"]) / int(e["images"]))
            except (KeyError, TypeError, ValueError, ZeroDivisionError):
                continue  # a line from another version, or damaged: not evidence
        return {k: statistics.median(v) for k, v in rates.items()}


def probe_seconds(pc: PlannedCell, probes: Probes) -> float | None:
    """The cell's seconds from a probe of its kind (None without one)."""
    per = probes.rates.get(signature(pc))
    return None if per is None else per * images_of(pc.attack.config(), pc.test_images)


def probe_overrides(settings, images: int) -> dict[str, int]:
    """The settings of a probe: `images` stratified test images, and no subset larger than that."""
    return {"test_subset": images, "spsa_subset": min(int(settings.spsa_subset or images), images),
            "corruption_subset": min(int(settings.corruption_subset or images), images),
            "kid_samples": min(int(settings.kid_samples), images)}


@dataclasses.dataclass
class Kind:
    """One kind of evaluation among a plan's missing cells: its cells and the trained cells that can stand in."""

    signature: str
    fields: dict
    missing: list[PlannedCell]
    stand_ins: list[PlannedCell] = dataclasses.field(default_factory=list)


def kinds(plan: Plan, workdir: Path, statuses: list, device: str = "auto", steps: list | None = None) -> list[Kind]:
    """The kinds of the plan's missing cells (and, given `steps` (campaigns.status.step_status), of the evaluations
    of its steps still to run), in plan order, each with the plan's cells of that kind whose model and VAEs are
    trained (missing cells first)."""
    from varmixup_bench.campaigns.cells import step_cells
    from varmixup_bench.training.cache import WeightCache

    models, vaes = WeightCache(workdir), WeightCache(workdir, "vaes")
    from_steps = list(step_cells(plan, workdir, statuses, steps, device)) if steps is not None else []
    missing = {(st.name, c) for st in statuses for c in st.missing} | {(pc.pass_name, pc.cell) for pc in from_steps}
    cells = [(pc, signature(pc)) for pc in [*planned_cells(plan, workdir, statuses, device, missing_only=False),
                                            *from_steps]]
    out: dict[str, Kind] = {}
    for pc, sig in cells:
        if (pc.pass_name, pc.cell) in missing:
            out.setdefault(sig, Kind(sig, cost_fields(pc), [])).missing.append(pc)
    for pc, sig in sorted(cells, key=lambda c: (c[0].pass_name, c[0].cell) not in missing):
        if sig in out and not untrained(pc, models, vaes):
            out[sig].stand_ins.append(pc)
    return list(out.values())


def run_probe(kind: Kind, workdir: Path, images: int, show_progress: bool = False) -> dict[str, Any]:
    """Evaluate the kind's first trained stand-in on `images` test images (unrecorded) and store the probe."""
    import varmixup_bench as bench
    from varmixup_bench.runs.sweep import _defense

    if not kind.stand_ins:
        raise BenchError("no trained model of this kind: train one first (a probe never trains)")
    pc = kind.stand_ins[0]  # run_probes checked `images` against it before any probe ran
    overrides = probe_overrides(pc.ctx.settings, images)
    spec = dataclasses.replace(pc.spec, overrides={**pc.spec.overrides, **overrides}, show_progress=False)
    c = pc.cell
    defense = _defense(spec, c.defense, c.dataset, c.seed, c.variant)
    if defense.info["trained"]:  # untrained() said it was cached: a cache that changed under us
        raise BenchError(f"{c.defense} was trained by the probe: the weight cache changed while probing")
    rec = bench.evaluate(defense, c.attack, eps=c.eps, norm=pc.norm, workdir=workdir, record=False,
                         show_progress=show_progress)
    probed = images_of(rec.get("attack_config") or {}, len(defense.dataset.test))
    entry = {"signature": kind.signature, "fields": kind.fields, "stand_in": c.defense, "seed": c.seed,
             "variant": [list(v) for v in c.variant], "images": probed, "seconds": float(rec["seconds"]),
             "commit": git_commit(), **machine()}
    return Probes.of(workdir).append(event="probe", **entry)


def run_probes(plan: Plan, workdir: Path, *, images: int = 50, device: str = "auto", redo: bool = False,
               show_progress: bool = True, log: Callable[[str], None] = lambda message: None) -> list[dict]:
    """Probe every kind of the plan's missing cells and of its steps' evaluations still to run that neither a probe
    nor a stored record of the same attack, rule and draws estimates (`redo`: every kind); one row per kind: what
    was probed and its forecast, or why not. A probe that fails is a row (`failed`, its error), not the end of the
    run: the campaign would stop at those cells, and the other kinds still get measured."""
    from varmixup_bench.campaigns.status import pass_status, step_status
    from varmixup_bench.core.progress import progress
    from varmixup_bench.results.store import ResultStore

    if images < MIN_IMAGES:
        raise BenchError(f"--images {images}: a probe needs at least {MIN_IMAGES} stratified test images")
    workdir = Path(workdir)
    statuses = pass_status(plan, workdir, device)
    todo = kinds(plan, workdir, statuses, device, step_status(plan, workdir))
    if not redo:
        records, known = ResultStore(workdir).records(), Probes.of(workdir).rates
        todo = [k for k in todo if k.signature not in known
                and any(exact_seconds(pc, records) is None for pc in k.missing)]
    for kind in todo:  # a bad --images is the user's mistake, before any work: not a failing probe
        for pc in kind.stand_ins[:1]:
            low = max(MIN_IMAGES, pc.ctx.dataset.num_classes)  # a stratified subset takes every class
            if not low <= images <= pc.test_images:
                raise BenchError(f"--images {images}: give {low} to {pc.test_images} (the plan's test images; at "
                                 f"least one per class)")
    rows = []
    with progress(show_progress) as bar:
        task = bar.add_task("probes", total=len(todo), info="")
        for kind in todo:
            first = kind.missing[0]
            row = {"kind": f"{kind.fields['attack']} on {first.cell.defense} ({first.pass_name})",
                   "cells": len(kind.missing), "stand_in": kind.stand_ins[0].cell.defense if kind.stand_ins else None}
            if not kind.stand_ins:
                row["error"] = "no trained model of this kind yet"
            else:
                try:
                    entry = run_probe(kind, workdir, images)
                except Exception as exc:  # noqa: BLE001 (a cell that fails is what a probe is for: say so, go on)
                    row["error"] = row["failed"] = f"failed: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
                    log(f"probe {row['kind']} (on {row['stand_in']}) {row['error']}")
                else:
                    row.update(images=entry["images"], seconds=entry["seconds"])
                    log(f"probe {row['kind']} (on {row['stand_in']}): {entry['seconds']:.1f} s for {entry['images']} "
                        f"images")
            rows.append(row)
            bar.advance(task)
    probes = Probes.of(workdir)
    for row, kind in zip(rows, todo):
        if "seconds" in row:
            row["forecast"] = sum(probe_seconds(pc, probes) or 0.0 for pc in kind.missing)
    return rows
