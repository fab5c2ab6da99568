"""A campaign's forecast, for sizing a plan before it runs: the models and VAEs its missing cells still need
trained, and the evaluations still to run, each estimated from what the workdir has measured.

A model still to train is estimated from the median per-epoch seconds of trained models (their `meta.json`
history) and of trainings in progress (their checkpoint's history) of the same recipe (an `adv-` recipe as its
plain one), architecture, batch size and training data, times its epochs; a VAE from VAEs of the same
architecture, latent stride, width, batch size, data and kind (adversarial or not), times its epochs (the
latent's size is not among them: it changes one 1x1 or fully connected layer each way, a small share of the
convolutions' cost, so a ladder's next latent is forecast from the VAEs already trained); a training in
progress from its own checkpoint's epoch times and the epochs left. An evaluation is estimated from the stored
records of the same attack and inference rule; else from a probe of its kind (campaigns.probe: the same evaluation
measured on a few test images of a trained model); else from records' seconds per budget unit of the same attack
family and inference rule, else of the same kind of predictor (randomised or not; views.report.estimate_seconds:
the cell's own trained model first, so that another budget on one VAE of a ladder is forecast from that VAE and
not from the median of all of them, then this defense's, then the dataset's). A model or VAE is counted once, in the first pass that needs it. What
nothing measured resembles is reported as unknown, never guessed.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from varmixup_bench.campaigns.cells import rule_of, exact_seconds, planned_cells, step_cells, untrained, without_adv
from varmixup_bench.campaigns.plan import Plan


@dataclass
class PassEstimate:
    name: str
    train: dict[str, float | None] = field(default_factory=dict)  # model or VAE key -> seconds (None: unknown)
    evaluate: list[float | None] = field(default_factory=list)  # one per missing cell
    probed: int = 0  # how many of them come from a probe (campaigns.probe) rather than stored records

    @staticmethod
    def _sum(values) -> tuple[float, int]:
        known = [v for v in values if v is not None]
        return float(sum(known)), len(values) - len(known)

    def train_seconds(self) -> tuple[float, int]:
        """(estimated seconds of the known ones, how many are unknown)."""
        return self._sum(list(self.train.values()))

    def evaluate_seconds(self) -> tuple[float, int]:
        return self._sum(self.evaluate)


def _metas(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.glob("*/meta.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # a damaged meta.json is the cache's problem to report, not the forecast's
    return out


def _per_epoch(metas: list[dict]) -> float | None:
    rates = [statistics.median(h["seconds"] for h in m["history"]) for m in metas
             if m.get("history") and all("seconds" in h for h in m["history"])]
    return statistics.median(rates) if rates else None


_SAME_MODEL = ("recipe", "model", "batch_size", "data")
# what sets a VAE's cost per epoch: not the latent's size (latent_dim, latent_channels; see the module docstring)
_SAME_VAE = ("arch", "latent_stride", "width", "batch_size", "adversarial", "from")


def remaining_seconds(folder: Path, epochs: int) -> float | None:
    """A training in progress (a per-epoch checkpoint in `folder`): its own median epoch time (an epoch that
    waited through a pause does not move it) times the epochs left; None when there is no checkpoint."""
    from varmixup_bench.training.checkpoint import checkpoint_history

    history = checkpoint_history(folder)
    try:
        rate = statistics.median(h["seconds"] for h in history) if history is not None else None
    except (KeyError, TypeError, statistics.StatisticsError):
        return None
    return None if rate is None else rate * max(epochs - len(history), 0)


def _cost_alike(config: dict) -> dict:
    """The fields of a training config that set its cost per epoch; an `adv-` Var* recipe costs what its plain
    one does (the same VAE architecture, only trained differently, and the same classifier steps)."""
    out = {k: config.get(k) for k in _SAME_MODEL}
    out["recipe"] = without_adv(out["recipe"])
    return out


def model_seconds(config: dict, metas: list[dict]) -> float | None:
    """Per-epoch seconds of trained models like `config` (a training key config; _cost_alike) times its
    epochs."""
    want = _cost_alike(config)
    like = [m for m in metas if _cost_alike(m.get("config") or {}) == want]
    rate = _per_epoch(like)
    return None if rate is None else rate * int(config["epochs"])


def vae_seconds(config: dict, dataset: str, metas: list[dict]) -> float | None:
    """Per-epoch seconds of trained VAEs like `config` (a vae_config) on `dataset` times its epochs."""
    like = [m for m in metas if m.get("dataset") == dataset
            and all((m.get("config") or {}).get(k) == config.get(k) for k in _SAME_VAE)]
    rate = _per_epoch(like)
    return None if rate is None else rate * int(config["epochs"])


def alike_records(records: list[dict], rule: str, stochastic: bool) -> list[dict]:
    """The records whose cost per attack step resembles a cell's: those of defenses with the same inference rule
    (VarMI decodes N_MI mixes per prediction, MI only mixes them; `adv-varmi` as `varmi`), else of the same kind
    of predictor (randomised or not)."""
    same_rule = [r for r in records if rule_of(r.get("defense")) == without_adv(rule)]
    return same_rule or [r for r in records if bool(r.get("stochastic")) == stochastic]


def estimate(plan: Plan, workdir: Path, statuses: list, device: str = "auto",
             steps: list | None = None) -> list[PassEstimate]:
    """One PassEstimate per pass, for its missing cells (campaigns.status.pass_status's `missing`), then (given
    `steps`, campaigns.status.step_status) one per step still to run that evaluates (step_cells). An evaluation
    is estimated from stored records of the same attack and inference rule, else from a probe of its kind
    (campaigns.probe), else from records of the same attack family."""
    from varmixup_bench.campaigns.probe import Probes, probe_seconds
    from varmixup_bench.defenses.latent import source_dataset
    from varmixup_bench.results.store import ResultStore
    from varmixup_bench.training.cache import WeightCache
    from varmixup_bench.training.checkpoint import checkpoint_history
    from varmixup_bench.training.runner import defense_key
    from varmixup_bench.views.report import estimate_seconds

    models, vaes = WeightCache(workdir), WeightCache(workdir, "vaes")
    model_metas, vae_metas = _metas(models.root), _metas(vaes.root)
    records = ResultStore(workdir).records()
    probes = Probes.of(workdir)
    counted: set[str] = set()
    out = {p.name: PassEstimate(p.name) for p in plan.passes}
    cells = list(planned_cells(plan, workdir, statuses, device))
    if steps is not None:
        cells += step_cells(plan, workdir, statuses, steps, device)
    needs = [(pc, untrained(pc, models, vaes)) for pc in cells]
    in_progress: set[str] = set()
    for pc, missing in needs:  # a training in progress is evidence for the ones like it, as a finished one is
        for key, (kind, cfg) in missing.items():
            if key in in_progress:
                continue  # once, however many cells need it
            in_progress.add(key)
            history = checkpoint_history((models if kind == "model" else vaes).folder(key))
            if history:
                (model_metas if kind == "model" else vae_metas).append(
                    {"config": cfg, "history": history, "dataset": source_dataset(pc.ctx).name})
    for pc, missing in needs:
        est = out.setdefault(pc.pass_name, PassEstimate(pc.pass_name))
        for key, (kind, cfg) in missing.items():
            if key in counted:
                continue
            counted.add(key)
            cache = models if kind == "model" else vaes
            left = remaining_seconds(cache.folder(key), int(cfg["epochs"]))
            if left is None:
                left = (model_seconds(cfg, model_metas) if kind == "model"
                        else vae_seconds(cfg, source_dataset(pc.ctx).name, vae_metas))
            est.train[key] = left
        seconds = exact_seconds(pc, records)
        if seconds is None:
            seconds = probe_seconds(pc, probes)
            est.probed += seconds is not None
        if seconds is None:
            stochastic = bool(pc.rule.stochastic)
            seconds = estimate_seconds(pc.cell.attack, pc.attack.config(), stochastic,
                                       alike_records(records, pc.dspec.inference, stochastic),
                                       defense_key(pc.cell.defense, pc.ctx), pc.cell.defense, pc.ctx.dataset.name)
        est.evaluate.append(seconds)
    return list(out.values())
