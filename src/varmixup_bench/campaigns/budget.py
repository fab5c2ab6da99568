"""What a campaign cost, measured: its wall time from the state file's spans (time_section) and each trained model's
and VAE's seconds from its meta.json (training_rows, training_section), for campaigns.compose's page."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from varmixup_bench.campaigns.state import CampaignState


def _hours(seconds: float) -> str:
    return f"{seconds:.1f} s ({seconds / 3600:.2f} h)"


def time_section(state: CampaignState, n_runs: int, train_s: float, eval_s: float,
                  train_median_s: float | None = None) -> str:
    """The page's measured wall time (the state file's spans: a killed run's pass counts until its last beat, a
    pause with SIGSTOP not at all) beside its computation (the models' and records' own seconds)."""
    spans = state.spans()
    wall, bound, unbounded = state.wall_seconds()
    stopped = sum(float(e.get("stopped_seconds") or 0.0) for e in spans)
    unclocked = sum("stopped_seconds" not in e for e in spans)  # timed before core.clock: pauses inside
    killed = [e for e in spans if e.get("status") == "cut short"]
    blind = [e for e in killed if not e.get("beats")]  # killed before beats were written: no measure of its time
    running = [e for e in spans if e.get("status") == "running"]
    notes = []
    if unclocked:
        notes.append(f"{unclocked} of {len(spans)} pass(es) and step(s) were timed before the stop-aware clock, and "
                     "their seconds include any pause")
    text = (f"## Time (measured)\n\nWall time: **{_hours(wall)}**, the sum of every pass's and step's seconds in "
            f"`{state.path.name}` over {n_runs} run(s) (loading, training and evaluation; a run killed outright "
            f"counts until its last heartbeat, written every {state.beat_seconds:g} s; time the process was stopped, "
            f"e.g. paused with SIGSTOP while tests ran, is not counted" + (f": {_hours(stopped)} of it" if stopped
                                                                            else "")
            + "".join(f"; {n}" for n in notes) + ").")
    if killed:
        text += f" {len(killed)} pass(es) or step(s) were killed before they ended"
        if blind:
            text += (f"; {len(blind)} of them before heartbeats were written, and their time is **not in the wall "
                     f"time** above: they ran at most {_hours(bound)} more in all, the time from each one's start to "
                     "the next run's (which also holds any pause and any time nothing ran)")
            if unbounded:
                text += ", and the last one has no later run to bound it"
        text += "."
    if running:
        names = ", ".join(f"`{e.get('step')}`" for e in running)
        text += f" Running now: {names}, counted until its last heartbeat."
    median = (f"; at each model's median epoch {_hours(train_median_s)}, as some were timed with pauses inside (†)"
              if train_median_s is not None and train_median_s < train_s else "")
    return text + (f" Computation: **{_hours(train_s + eval_s)}**: training {_hours(train_s)} (the models below, "
                   f"their per-epoch seconds{median}) and evaluating the passes' cells {_hours(eval_s)} (the records' "
                   "`seconds`). Computation counts every model and record on this page, whichever run made it: "
                   "those another plan in this workdir trained or recorded, and this one reused, cost this "
                   "campaign's wall time nothing.\n")


def _model_seconds(meta: dict) -> float:
    """Training seconds: the per-epoch seconds of the history (kept across a resume from a checkpoint), else the
    meta's seconds of the run that saved the model."""
    hist = meta.get("history") or []
    if hist and all("seconds" in h for h in hist):
        return float(sum(h["seconds"] for h in hist))
    return float(meta.get("seconds") or 0.0)


def _unclocked(meta: dict) -> bool:
    """Whether some epoch of the history was timed before the stop-aware clock (core.clock): its seconds include
    any time the process was stopped (a SIGSTOP while tests ran), so they can read far above the training's."""
    hist = meta.get("history") or []
    return any("seconds" in h and "stopped_seconds" not in h for h in hist)


def _median_epoch(meta: dict) -> float | None:
    """The median of the history's per-epoch seconds (a few epochs with a pause inside do not move it)."""
    secs = [float(h["seconds"]) for h in meta.get("history") or [] if "seconds" in h]
    return float(np.median(secs)) if secs else None


def training_rows(workdir: Path, records: list[dict], vae_keys: set[str]) -> list[dict[str, Any]]:
    """One row per trained classifier the records evaluated and per VAE its recipe used (or a step drew), read
    from the models' meta.json."""
    from varmixup_bench.training.cache import WeightCache

    used: dict[str, set[str]] = {}
    for r in records:
        used.setdefault(str(r.get("config_hash")), set()).add(r["defense"])
    rows, vae_configs = [], []
    models = WeightCache(workdir)
    for key, defenses in sorted(used.items()):
        path = models.folder(key) / "meta.json"
        if not path.exists():
            continue  # a zoo model, or weights no longer in the cache
        meta = json.loads(path.read_text())
        cfg = meta.get("config", {})
        if isinstance(cfg.get("recipe_config", {}).get("vae"), dict):
            vae_configs.append(cfg["recipe_config"]["vae"])
        rows.append({"model": cfg.get("recipe", "?"), "used by": ", ".join(sorted(defenses)), "seed": cfg.get("seed"),
                     "epochs": len(meta.get("history") or []) or cfg.get("epochs"), "seconds": _model_seconds(meta),
                     "median": _median_epoch(meta), "unclocked": _unclocked(meta), "key": key, "config": cfg})
    vaes = WeightCache(workdir, "vaes")
    for path in sorted(vaes.root.glob("*/meta.json")) if vaes.root.exists() else []:
        meta = json.loads(path.read_text())
        cfg = meta.get("config", {})
        if path.parent.name in vae_keys or cfg in vae_configs:
            kind = "adversarial MMD-VAE" if cfg.get("adversarial") else "MMD-VAE"
            rows.append({"model": kind, "used by": "Var* recipes" if cfg in vae_configs else "vae-figure step",
                         "seed": cfg.get("seed"), "epochs": len(meta.get("history") or []) or cfg.get("epochs"),
                         "seconds": _model_seconds(meta), "median": _median_epoch(meta), "unclocked": _unclocked(meta),
                         "key": path.parent.name, "config": cfg})
    return _named_apart(rows)


def _cost_config(cfg: dict) -> dict:
    """A model's or VAE's config as its training-budget row tells it apart: no seed at any depth (a Var*
    classifier's MMD-VAE is seeded from the training seed), no epochs (a column), a Var* classifier's VAE epochs
    as `vae_epochs`."""
    from varmixup_bench.results.record import _without_seeds

    out = {k: v for k, v in _without_seeds(cfg).items() if k != "epochs"}
    vae = (out.get("recipe_config") or {}).get("vae")
    if isinstance(vae, dict) and "epochs" in vae:
        vae = {("vae_epochs" if k == "epochs" else k): v for k, v in vae.items()}
        out["recipe_config"] = {**out["recipe_config"], "vae": vae}
    return out


def _named_apart(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one model name trained in several ways (a VAE ladder's latents, Mixup at another eta, the Var*
    classifiers of each VAE) get what differs in their configs beside the name; the seed and the epochs have
    their own columns."""
    from varmixup_bench.results.record import differing_fields

    by_name: dict[str, list[dict]] = {}
    for r in rows:
        by_name.setdefault(r["model"], []).append(r)
    for group in by_name.values():
        configs = [_cost_config(r.pop("config")) for r in group]
        if len({json.dumps(c, sort_keys=True, default=str) for c in configs}) > 1:
            for r, d in zip(group, differing_fields([{"c": c} for c in configs], ["c"])):
                r["model"] = f"{r['model']} ({d})" if d else r["model"]
    return rows


def training_section(rows: list[dict[str, Any]]) -> str:
    """The page's training-budget table, one row per model (training_rows), † on epochs timed with pauses inside."""
    if not rows:
        return "(no trained model recorded yet)\n"
    lines = ["| model | used by | seed | epochs | seconds | s / epoch (mean) | s / epoch (median) | key |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["seed"] if r["seed"] is not None else -1, r["model"])):
        per = f"{r['seconds'] / r['epochs']:.1f}" if r["epochs"] else "—"
        median = f"{r['median']:.1f}" if r.get("median") is not None else "—"
        mark = "†" if r.get("unclocked") else ""
        lines.append(f"| {r['model']} | {r['used by']} | {r['seed']} | {r['epochs']} | {r['seconds']:.1f}{mark} | {per} | "
                     f"{median} | `{r['key']}` |")
    note = ""
    if any(r.get("unclocked") for r in rows):
        note = ("\n† timed (in part) before the stop-aware clock: those epochs' seconds include any time the process "
                "was stopped (paused with SIGSTOP while tests ran), so the mean per epoch can read far above the "
                "training's; the median per epoch is not moved by a few such epochs.\n")
    return "\n".join(lines) + "\n" + note

