"""Sweeps: defenses x attacks x datasets x seeds (x eps), resumable, on a local or a Ray executor.

A sweep is a list of jobs, one per (dataset, seed, defense): train (or load from the cache), then run the
defense's cells, one per (attack, eps). A cell already in the store (same `sweep_key`) is skipped, so an
interrupted sweep resumes where it stopped; records are appended under the store's lock, so concurrent
workers lose and duplicate nothing.

"Already done" is decided by the evaluation key (results.record.evaluation_key), as stored_or_evaluate does, in
two steps. `sweep_key` (SweepSpec.cell_key) is the cell's identity tag: it hashes the cell itself (defense spec,
attack, eps, seed, variant) besides everything the evaluation key hashes (the model's training key, the attack's
spec and config, the inference rule, the test data, trials, seed, draws), so a stored sweep_key implies a stored
record of the cell's evaluation key, and `pending` can skip the cell without loading data or the model. A cell
whose tag is not stored runs through `evaluate(..., reuse=True)`: a stored record of the same evaluation key (from
`bench run`, `bench converge`, `bench report`, another variant of the sweep that does not change this defense,
or a named attack preset that runs the same attack) is reused, not evaluated again, and stored again with the
cell's tag and 0 seconds, so that the cell counts as done for `pending`, `bench campaign status` and `compose`.
sweep_key values are kept as they were so that stores and committed CSVs tagged by older sweeps stay done.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from varmixup_bench.training.cache import config_hash
from varmixup_bench.core.registry import Registry


@dataclass(frozen=True)
class Cell:
    dataset: str
    seed: int
    defense: str
    attack: str
    eps: float
    variant: tuple = ()  # swept preset values, e.g. (("lambda_mi_default", 0.3),)


@dataclass
class Job:
    dataset: str
    seed: int
    defense: str
    variant: tuple = ()
    cells: list[Cell] = field(default_factory=list)


def variants(lambda_mi: list[float] | None = None, eta: list[float] | None = None) -> list[tuple]:
    """The grid of swept preset values (paper Fig. 6): lambda_MI of the inference rule, eta of the mixup."""
    out: list[tuple] = [()]
    if lambda_mi:
        out = [v + (("lambda_mi", ()), ("lambda_mi_default", float(x))) for v in out for x in lambda_mi]
    if eta:
        out = [v + (("eta", float(x)),) for v in out for x in eta]
    return out


@dataclass
class SweepSpec:
    defenses: list[str]
    attacks: list[str]
    datasets: list[str]
    seeds: list[int]
    eps: list[float] | None
    preset: Any  # a preset name, or a Preset (e.g. from --preset-file)
    workdir: Path
    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    show_progress: bool = True
    epochs: int | None = None  # every recipe's epochs (None: the preset's per-recipe values)
    grid: list[tuple] = field(default_factory=lambda: [()])  # variants(), one job per value
    # loaded datasets by what selects their images (name, folders, subsets): specs that share this dict (a campaign's
    # passes and steps) share one copy of each dataset, however many contexts they make
    loaded_data: dict = field(default_factory=dict, repr=False, compare=False)

    def context(self, dataset: str, seed: int, variant: tuple):
        """The training context (resolved settings, loaded data) of one (dataset, seed, variant), memoised."""
        memo = self.__dict__.setdefault("_contexts", {})
        key = (dataset, seed, variant)
        if key not in memo:
            from varmixup_bench.training.runner import make_context, resolve_settings

            overrides = {**self.overrides, **_variant_overrides(variant)}
            s = resolve_settings(self.preset, **{k: v for k, v in overrides.items() if k != "epochs"})
            data_key = (dataset, str(self.data_dir), str(self.workdir), s.train_subset, s.test_subset, s.subset_seed)
            memo[key] = make_context(self.loaded_data.get(data_key, dataset), workdir=self.workdir, preset=self.preset,
                                     device=self.device, data_dir=self.data_dir, show_progress=False, seed=seed,
                                     **overrides)
            self.loaded_data[data_key] = memo[key].dataset
        return memo[key]

    def cell_key(self, cell: Cell) -> str:
        """A hash of everything that determines the cell's result: the model's training key (data fingerprint,
        training-code version, recipe settings, epochs), the evaluation (test data, trials, inference-rule
        settings) and the attack's own configuration (eps, step, subset rule, N_A, SPSA settings, …). A change to
        any of them reruns the cell; a change that cannot affect it (N_A for a non-adaptive attack) does not."""
        from varmixup_bench.training.data import split_fingerprint

        from varmixup_bench.attacks.spec import build_attack
        from varmixup_bench.training.runner import defense_key

        from varmixup_bench.defenses import parse_defense_spec

        ctx = self.context(cell.dataset, cell.seed, cell.variant)
        settings = ctx.settings
        atk = build_attack(cell.attack, cell.eps, settings.step, settings)
        rule = parse_defense_spec(cell.defense).build_rule(settings).config()
        evaluation = {"trials": settings.trials, "test_subset": settings.test_subset, "inference": rule,
                      "draws": settings.worst_case_draws,
                      "test_data": self.__dict__.setdefault("_test_fp", {}).setdefault(
                          cell.dataset, split_fingerprint(ctx.dataset.test))}
        return config_hash({"cell": asdict(cell), "model": defense_key(cell.defense, ctx, self.epochs),
                            "evaluation": evaluation, "attack": atk.config()})

    def jobs(self) -> list[Job]:
        from varmixup_bench.attacks.spec import attack_class
        from varmixup_bench.training.runner import resolve_settings

        settings = resolve_settings(self.preset, **self.overrides)
        jobs = []
        for dataset in self.datasets:
            default_eps = settings.eps_for(None, dataset)  # the preset's radius, else this dataset's default
            for seed in self.seeds:
                for defense in self.defenses:
                    for variant in self.grid:
                        job = Job(dataset, seed, defense, variant)
                        for attack in self.attacks:
                            grid = (self.eps or [default_eps]) if attack_class(attack).uses_eps else [0.0]
                            job.cells += [Cell(dataset, seed, defense, attack, float(e), variant) for e in grid]
                        jobs.append(job)
        return jobs

    def done_keys(self) -> set[str]:
        from varmixup_bench.results.store import ResultStore

        return {r["sweep_key"] for r in ResultStore(self.workdir).records() if "sweep_key" in r}

    def pending(self) -> list[Job]:
        done = self.done_keys()
        out = []
        for job in self.jobs():
            cells = [c for c in job.cells if self.cell_key(c) not in done]
            if cells:
                out.append(Job(job.dataset, job.seed, job.defense, job.variant, cells))
        return out


def _variant_overrides(variant: tuple) -> dict:
    return {k: (dict(v) if isinstance(v, tuple) else v) for k, v in variant}


def _defense(spec: SweepSpec, defense: str, dataset: str, seed: int, variant: tuple):
    from varmixup_bench.training.runner import resolve_settings, train

    overrides = {**spec.overrides, **_variant_overrides(variant)}
    # the preset's per-recipe `epochs` table (--set 'epochs={...}') is a preset field; train()'s `epochs` is the
    # one-number override (--epochs): apply the table to the preset so the two never collide
    preset = resolve_settings(spec.preset, epochs=overrides.pop("epochs")) if "epochs" in overrides else spec.preset
    return train(defense, dataset, workdir=spec.workdir, preset=preset, device=spec.device, data_dir=spec.data_dir,
                 show_progress=spec.show_progress, seed=seed, epochs=spec.epochs, **overrides)


def train_job(spec: SweepSpec, job: Job) -> dict:
    """Train (or load) the job's defense; returns its training key. A model trained now while the store holds
    its clean cell (the cache was lost, or the store was restored from a CSV) must reproduce that cell."""
    d = _defense(spec, job.defense, job.dataset, job.seed, job.variant)
    if d.info["trained"]:
        check_reproduced(spec, job, d)
    return {"config_hash": d.info["config_hash"], "trained": d.info["trained"]}


def check_reproduced(spec: SweepSpec, job: Job, defense) -> int | None:
    """Re-run the job's stored clean cell on `defense` (unrecorded) and compare image by image: the stored cells
    of a model must all come from the weights attacked now, so a retrained model that classifies any test image
    differently raises instead of adding its cells to another model's row. Returns the images compared (None
    where the store holds no clean cell for the job)."""
    import numpy as np

    import varmixup_bench as bench
    from varmixup_bench.core.errors import BenchError
    from varmixup_bench.results.stats import decode_per_image
    from varmixup_bench.results.store import ResultStore

    key = spec.cell_key(Cell(job.dataset, job.seed, job.defense, "clean", 0.0, job.variant))
    stored = [r for r in ResultStore(spec.workdir).records() if r.get("sweep_key") == key]
    old = decode_per_image(stored[-1].get("per_image")) if stored else None
    if old is None:
        return None
    fresh = decode_per_image(bench.evaluate(defense, "clean", eps=0.0, workdir=spec.workdir, record=False,
                                            show_progress=False)["per_image"])
    differ = (int((fresh["clean"] != old["clean"]).sum()) if np.array_equal(fresh["idx"], old["idx"])
              else len(old["idx"]))  # other test images: nothing comparable
    if differ:
        raise BenchError(
            f"{job.defense} (seed {job.seed}) was trained again, and the new weights classify {differ} of "
            f"{len(old['idx'])} test images differently from the stored clean cell ({stored[-1].get('timestamp')}): "
            f"the store's cells of this model came from other weights. Retire them (`bench retire`) or sweep into "
            f"a fresh workdir; training is reproducible only on the same hardware, threads and library versions")
    return len(old["idx"])


def run_cell(spec: SweepSpec, cell: Cell) -> dict:
    """Evaluate one cell (the defense comes from the cache) and append its record with the cell's key; a stored
    record of the same evaluation key is reused instead (stored again with the cell's key)."""
    import varmixup_bench as bench
    from varmixup_bench.attacks.spec import attack_class

    d = _defense(spec, cell.defense, cell.dataset, cell.seed, cell.variant)
    tags = {"sweep_key": spec.cell_key(cell)}
    if not spec.eps and attack_class(cell.attack).uses_eps:  # no --eps: the preset's radius or the dataset's default
        tags["eps_source"] = d.info["settings"].eps_source(None, d.dataset.name)
    return bench.evaluate(d, cell.attack, eps=cell.eps, workdir=spec.workdir, show_progress=spec.show_progress,
                          tags=tags, reuse=True)  # the same evaluation stored already: reused (module docstring)


def _with_threads(threads: int, fn, *args):
    """Run fn with torch's intra-op threads set to this worker's share of the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


Executor = Callable[[SweepSpec, list[Job], Any], list[dict]]
EXECUTORS: Registry[Executor] = Registry("executor", group="varmixup_bench.executors")


@EXECUTORS.register("local", help="in this process, one job after another (default)")
def local_executor(spec: SweepSpec, jobs: list[Job], options: Any = None) -> list[dict]:
    records = []
    for job in jobs:
        train_job(spec, job)
        records += [run_cell(spec, c) for c in job.cells]
    return records


@EXECUTORS.register("ray", help="Ray tasks: one training task per defense, attack tasks depending on it")
def ray_executor(spec: SweepSpec, jobs: list[Job], options: Any = None) -> list[dict]:
    import os

    import ray

    opts = options or {}
    started, saved_env, link, temp = False, {}, None, None
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if opts.get("address"):
            init["address"] = opts["address"]
        else:
            # a local cluster: its files stay under the workdir (reached through a short symlink, since Ray's
            # socket paths must stay under 108 bytes), it listens on loopback only, and token auth, which would
            # write ~/.ray/auth_token, is off for it
            temp = Path(spec.workdir).resolve() / "ray"
            temp.mkdir(parents=True, exist_ok=True)
            temp.chmod(0o700)  # Ray's sessions, logs and sockets: private to the user
            link = Path(tempfile.gettempdir()) / f"vb-ray-{config_hash({'workdir': str(temp)})[:10]}"
            if not link.is_symlink():
                link.symlink_to(temp, target_is_directory=True)
            saved_env = {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE")}
            os.environ["RAY_AUTH_MODE"] = "disabled"
            init.update(num_cpus=opts.get("num_cpus") or os.cpu_count(), _temp_dir=str(link),
                        _node_ip_address="127.0.0.1")
        ray.init(**init)
        started = True
    try:
        # what the tasks get: no memoised contexts and no loaded datasets (each task loads its own, not a pickle)
        quiet = SweepSpec(**{k: v for k, v in spec.__dict__.items() if not k.startswith("_") and k != "loaded_data"})
        quiet.show_progress = False
        cpus = int(opts.get("cpus_per_task") or 1)
        res = {"num_cpus": cpus, "num_gpus": opts.get("gpus_per_task", 0)}
        # each task uses exactly its share of the cores: more OpenMP threads than cores spin and slow all down
        train_remote = ray.remote(**res)(lambda job: _with_threads(cpus, train_job, quiet, job))
        cell_remote = ray.remote(**res)(lambda _trained, cell: _with_threads(cpus, run_cell, quiet, cell))
        refs = []
        for job in jobs:
            trained = train_remote.remote(job)
            refs += [cell_remote.remote(trained, c) for c in job.cells]
        return ray.get(refs)
    finally:
        if started:
            ray.shutdown()
            if link is not None and link.is_symlink():
                link.unlink()  # no dangling vb-ray-* links left in the temp directory
            if temp is not None and temp.exists():
                temp.chmod(0o700)  # Ray may have widened it while running
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_sweep(spec: SweepSpec, executor: str = "local", options: Any = None) -> tuple[list[dict], int, float]:
    """Run the pending cells; returns (new records, cells skipped as already done, seconds)."""
    jobs = spec.jobs()
    pending = spec.pending()
    skipped = sum(len(j.cells) for j in jobs) - sum(len(j.cells) for j in pending)
    start = time.perf_counter()
    records = EXECUTORS.get(executor)(spec, pending, options) if pending else []
    return records, skipped, time.perf_counter() - start
