"""Train (or load from cache) a defense and evaluate it under an attack: the Python API behind `bench run`."""
from __future__ import annotations

import platform
from dataclasses import fields
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from varmixup_bench.attacks import check_unit_range
from varmixup_bench.attacks.spec import build_attack, named_presets
from varmixup_bench.core.clock import running_time
from varmixup_bench.attacks.evaluation import attack_accuracy  # noqa: F401  (re-exported for the Python API)
from varmixup_bench.training.cache import WeightCache, config_hash
from varmixup_bench.training.checkpoint import FILE as CHECKPOINT_FILE
from varmixup_bench.core.progress import stderr_console
from varmixup_bench.training.data import Dataset, Split, check_dataset_name, dataset_fingerprint, load_dataset, split_fingerprint
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.parsing import parse_eps, parse_number
from varmixup_bench.training.init import apply_init
from varmixup_bench.training.models import MODELS, build_model, to_channels_last
from varmixup_bench.config.presets import Preset, get_preset
from varmixup_bench.results.record import REQUIRED_FIELDS, SCHEMA_VERSION, eps_text, evaluation_key  # noqa: F401  (evaluation_key: re-exported)
from varmixup_bench.results.stats import accuracy_interval
from varmixup_bench.results.store import ResultStore
from varmixup_bench.training.loop import train_classifier
from varmixup_bench.core.workdir import check_creatable, resolve_workdir
from varmixup_bench.defenses import Defense, TrainContext, parse_defense_spec

# training-regime fields that enter a model's key only when they differ from these (older keys stay valid)
REGIME_DEFAULTS = {"weight_decay": 0.0, "lr_schedule": "constant", "label_smoothing": 0.0, "augment": "none",
                   "init": "default"}
TRAINING_CODE_VERSION = 3  # bump when the training loop changes what a key's weights are
_VERSION_PACKAGES = ("varmixup-bench", "torch", "torchvision", "torchattacks", "adversarial-robustness-toolbox", "numpy")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in _VERSION_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def choose_device(cuda_available: bool, mps_available: bool) -> str:
    """What `--device auto` picks: CUDA, then Apple MPS, then the CPU."""
    return "cuda" if cuda_available else "mps" if mps_available else "cpu"


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto' (default), 'cpu', 'cuda', 'cuda:1', 'mps' -> torch.device, failing clearly when that device is
    not available."""
    if device is None or str(device) == "auto":
        mps = getattr(torch.backends, "mps", None)
        device = choose_device(torch.cuda.is_available(), bool(mps and mps.is_available()))
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise BenchError(f"--device {device}: expected auto, cpu, cuda[:N] or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"--device {device}: CUDA is not available on this machine (use --device cpu)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BenchError(f"--device {device}: MPS is not available on this machine (use --device cpu)")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise BenchError(f"--device {device}: expected auto, cpu, cuda[:N] or mps")
    return dev


def preset_differences(settings: Preset, recipe: str | None = None, epochs: int | None = None,
                       dataset: str | None = None) -> dict[str, Any]:
    """The settings that differ from the named preset's values (CLI options, --set, subsets, epochs): records
    carry them, so a run with `--epochs 1` can never pass for the preset's own. A radius the preset leaves to the
    dataset and that holds the dataset's default (`dataset`, default the preset's) is no difference."""
    from dataclasses import asdict

    from varmixup_bench.config.presets import PRESETS, dataset_eps

    mine = asdict(settings)
    try:
        base = asdict(PRESETS.get(settings.name))
    except BenchError:
        base = {}  # a --preset-file preset: every value is its own
    for name, norm in (("eps", "Linf"), ("eps_l2", "L2")):
        if base and base.get(name) is None and mine[name] == dataset_eps(dataset or settings.dataset, norm):
            mine[name] = None  # filled in from DATASET_EPS for the data (Preset.for_dataset)
    out = {k: v for k, v in mine.items() if k not in ("name", "description") and base.get(k, object()) != v}
    if recipe is not None and epochs is not None and epochs != settings.epochs_for(recipe):
        out["epochs"] = epochs
    return out


def resolve_settings(preset: str | Preset | None, **overrides: Any) -> Preset:
    """The preset with the overrides applied, every value checked (Preset.check): bad values fail before any work."""
    base = preset if isinstance(preset, Preset) else get_preset(preset)
    return check_recipe_tables(base.with_overrides(**overrides).check())


def check_recipe_tables(settings: Preset) -> Preset:
    """Each key of a per-recipe table (epochs, lambda_mi) a registered recipe: a misspelt one would be ignored
    unseen, its recipe taking the default. Here, not in the Preset's own check: config does not import defenses."""
    from varmixup_bench.core.registry import unknown_name_message
    from varmixup_bench.defenses.base import RECIPES

    for f in fields(settings):
        table = getattr(settings, f.name)
        for key in table if isinstance(table, dict) else ():
            if key not in RECIPES:
                option = f.metadata.get("option")
                raise BenchError(f"preset field {f.name}: " + unknown_name_message("recipe", key, RECIPES.names())
                                 + (f" (option {option})" if option else ""))
    return settings


def get_dataset(
    dataset: str | Dataset | None, settings: Preset, workdir: Path, data_dir=None, download: bool = False
) -> Dataset:
    if isinstance(dataset, Dataset):
        return dataset
    name = dataset or settings.dataset
    check_dataset_name(name)
    return load_dataset(
        name,
        data_dir=data_dir,
        download=download,
        cache_dir=workdir / "data",
        train_subset=settings.train_subset,
        test_subset=settings.test_subset,
        seed=settings.subset_seed,
    )


def make_context(
    dataset: str | Dataset | None = None,
    *,
    workdir: str | Path | None = None,
    preset: str | Preset | None = None,
    device: str | torch.device | None = "auto",
    data_dir: str | Path | None = None,
    download: bool = False,
    show_progress: bool = True,
    **overrides: Any,
) -> TrainContext:
    """Resolve settings, device, workdir and dataset: what recipes, inference rules and the VAE need."""
    if dataset is not None and not isinstance(dataset, (str, Dataset)):
        raise BenchError(f"dataset must be a name (e.g. 'digits') or a Dataset (load_dataset), got "
                         f"{type(dataset).__name__}")
    settings = resolve_settings(preset, **overrides)
    dev = resolve_device(device)
    wd = check_creatable(resolve_workdir(workdir, create=False))
    ds = get_dataset(dataset, settings, wd, data_dir, download)  # a dataset that cannot load leaves no workdir behind
    resolve_workdir(wd)
    settings = settings.for_dataset(ds.name)  # radii the preset leaves to the dataset: this dataset's (DATASET_EPS)
    return TrainContext(ds, settings, wd, dev, settings.seed, show_progress=show_progress,
                        defense_provider=lambda spec: train(spec, ds, workdir=wd, preset=settings, device=dev,
                                                            show_progress=False))


def training_key_config(recipe, ctx: TrainContext, recipe_name: str, epochs: int) -> dict:
    """Everything that determines a classifier's trained weights: its cache key is the hash of this."""
    settings, ds = ctx.settings, ctx.dataset
    cfg = {
        "code": TRAINING_CODE_VERSION,
        "data": split_fingerprint(ds.train),  # the data's content: a relative and an absolute path train once
        "model": settings.model,
        "recipe": recipe_name,
        "recipe_config": recipe.config(),
        "epochs": epochs,
        "batch_size": settings.batch_size,
        "lr": settings.lr,
        "optimizer": settings.optimizer,
        "amp": settings.amp,
        "seed": settings.seed,
    }
    for field_, default in REGIME_DEFAULTS.items():  # the training regime, only where it differs (keys stay valid)
        if getattr(settings, field_) != default:
            cfg[field_] = getattr(settings, field_)
    if settings.vae_from and any(k == "vae" for k in _flat_keys(recipe.config())):
        from varmixup_bench.defenses.latent import source_dataset

        cfg["vae_data"] = split_fingerprint(source_dataset(ctx).train)  # the VAE's training data
    return cfg


def defense_key(spec: str, ctx: TrainContext, epochs: int | None = None) -> str:
    """The cache key `train` would use for `spec` in this context, without training (zoo models: their spec and
    zoo settings)."""
    dspec = parse_defense_spec(spec)
    s = ctx.settings
    if dspec.zoo_model:
        return config_hash({"zoo": str(dspec), "dir": s.zoo_model_dir, "threat": s.zoo_threat_model,
                            "zoo_dataset": s.zoo_dataset, "data": split_fingerprint(ctx.dataset.test)})
    recipe = dspec.build_recipe(s)
    n_epochs = epochs if epochs is not None else s.epochs_for(dspec.recipe)
    return config_hash(training_key_config(recipe, ctx, dspec.recipe, n_epochs))


def train(
    spec: str,
    dataset: str | Dataset | None = None,
    *,
    workdir: str | Path | None = None,
    preset: str | Preset | None = None,
    epochs: int | None = None,
    device: str | torch.device | None = "auto",
    data_dir: str | Path | None = None,
    download: bool = False,
    show_progress: bool = True,
    **overrides: Any,
) -> Defense:
    """Train the defense `spec` (or load it from the workdir cache) and return it, ready to predict and attack."""
    dspec = parse_defense_spec(spec)
    if epochs is not None:
        _count("epochs", epochs, 1)
    ctx = make_context(dataset, workdir=workdir, preset=preset, device=device, data_dir=data_dir,
                       download=download, show_progress=show_progress, **overrides)
    settings, ds, dev, wd = ctx.settings, ctx.dataset, ctx.device, ctx.workdir
    if dspec.zoo_model:
        from varmixup_bench.training.zoo import zoo_defense

        return zoo_defense(dspec, ctx, download=download)
    MODELS.get(settings.model)
    recipe = dspec.build_recipe(settings)
    rule = dspec.build_rule(settings)
    n_epochs = epochs if epochs is not None else settings.epochs_for(dspec.recipe)
    mean, std = ds.channel_stats()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)  # initial weights are determined by the seed, as the cache key says
        classifier = build_model(settings.model, ds.image_shape, ds.num_classes, mean, std)
    if settings.channels_last:  # memory order only: the same weights, faster convolutions (load_state_dict keeps it)
        to_channels_last(classifier, classifier.normalize)
    key_config = training_key_config(recipe, ctx, dspec.recipe, n_epochs)
    key = config_hash(key_config)
    cache = WeightCache(wd)
    trained, history = False, []
    with cache.lock(key):
        if cache.exists(key):
            meta = cache.load(key, classifier)
            history = meta.get("history", [])
        else:
            recipe.prepare(ctx)
            apply_init(settings.init, classifier, ds.train)  # a resumed training's checkpoint then overwrites it
            if (cache.folder(key) / CHECKPOINT_FILE).exists():
                stderr_console.print(f"resuming {dspec} from its last checkpoint in {cache.folder(key)}")
            start = running_time()
            history = train_classifier(
                recipe, classifier, ds.train, epochs=n_epochs, batch_size=settings.batch_size, lr=settings.lr,
                optimizer=settings.optimizer, device=dev, seed=settings.seed, show_progress=ctx.show_progress,
                amp=settings.amp, checkpoint_dir=cache.folder(key), device_data_limit_gb=settings.device_data_limit_gb,
                num_workers=settings.num_workers, weight_decay=settings.weight_decay,
                lr_schedule=settings.lr_schedule, augment=settings.augment,
            )
            cache.save(key, classifier, {"config": key_config, "history": history,
                                         "seconds": running_time() - start, "versions": package_versions()})
            trained = True
    classifier.to(dev).eval()
    rule.setup(classifier, ctx)
    info = {"config_hash": key, "config": key_config, "trained": trained, "history": history, "context": ctx,
            "settings": settings, "workdir": wd}
    return Defense(str(dspec), recipe, rule, classifier, ds, info)


def _flat_keys(config: dict):
    """Every key of a nested config dict."""
    for k, v in config.items():
        yield k
        if isinstance(v, dict):
            yield from _flat_keys(v)


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _evaluation(defense: Defense, attack: str, eps: float | None, step: float | None, norm: str | None,
                trials: int | None, seed: int | None, split: Split | None):
    """The attack, test split, trials and seed an evaluation runs with: given values, else the preset's (the
    radius: the preset's, else the dataset's default, DATASET_EPS)."""
    if not isinstance(defense, Defense):
        raise BenchError(f"evaluate takes a Defense (from bench.train, or Defense.from_classifier for a model of "
                         f"your own), got {type(defense).__name__}")
    if split is not None and not isinstance(split, Split):
        raise BenchError(f"split must be a training.data.Split (e.g. dataset.test), got {type(split).__name__}")
    settings: Preset = defense.info["settings"]
    norm = norm or settings.norm
    if isinstance(eps, str):  # "8/255", as on the command line
        eps = parse_eps(eps, norm)
    if isinstance(step, str):
        step = parse_number(step, "step")
    eps = settings.eps_for(norm, defense.dataset.name) if eps is None else eps
    step = settings.step if step is None else step  # None: eps/4 (attacks.base.default_step)
    trials = settings.trials if trials is None else trials
    seed = settings.seed if seed is None else seed
    _count("trials", trials, 1)
    _count("seed", seed, 0)
    atk = build_attack(attack, eps, step, settings, norm)  # refuses an eps outside the norm's range
    return atk, split or defense.dataset.test, trials, seed


def _check_extras(batch_size: Any, tags: Any) -> None:
    """evaluate's batch size (a count) and tags (extra record fields, which never overwrite what the evaluation
    measures or keys the record by)."""
    if batch_size is not None:
        _count("batch_size", batch_size, 1)
    if tags is not None and not isinstance(tags, dict):
        raise BenchError(f"tags must be a dict of extra record fields, got {type(tags).__name__}")
    measured = sorted(set(tags or {}) & set(REQUIRED_FIELDS))
    if measured:
        raise BenchError(f"tags may not set the record's own field(s) {', '.join(measured)}")


def _count(name: str, value: Any, least: int) -> None:
    """An integer argument of the Python API (trials, seed, epochs, batch_size) at least `least`, else a BenchError
    naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BenchError(f"{name} must be an integer, got {value!r}")
    if value < least:
        raise BenchError(f"{name} must be >= {least}, got {value}")


def stored_or_evaluate(defense: Defense, attack: str, *, workdir: str | Path | None = None, **kw: Any) -> dict[str, Any]:
    """The latest stored record of exactly this evaluation (same evaluation_key), else evaluate and store it:
    what `bench converge` and `bench report` use to run only what is missing. A budget spec that a named preset
    runs exactly (`adaptive-pgd(eot=8,restarts=1,steps=10)` = `adaptive-pgd10`) reuses the preset's record: it is
    stored again under the spec asked for, with `same_as` naming the preset and 0 seconds of computation."""
    atk, test, trials, seed = _evaluation(defense, attack, kw.get("eps"), kw.get("step"), kw.get("norm"),
                                          kw.get("trials"), kw.get("seed"), kw.get("split"))
    wd = resolve_workdir(workdir or defense.info["workdir"])
    rec = _stored(defense, atk, test, trials, seed, wd, kw.get("record", True))
    return rec if rec is not None else evaluate(defense, attack, workdir=wd, **kw)


CELL_TAGS = ("sweep_key",)  # what ties a record to one sweep cell (runs.sweep): never copied to another evaluation


def _stored(defense: Defense, atk, test: Split, trials: int, seed: int, wd: Path, record: bool,
            tags: dict[str, Any] | None = None) -> dict | None:
    """The latest stored record of exactly this evaluation (same evaluation_key), or of a named preset that runs it
    exactly (stored again under the spec asked for, with `same_as` and 0 seconds, when `record`); else None.
    With `tags` (a sweep cell's key), a stored record that lacks them is stored again with them (0 seconds,
    `reused_from` its timestamp): the same evaluation is reused, and the cell is recorded as done."""
    key = evaluation_key(defense, atk, test, trials, seed)
    store = ResultStore(wd)
    stored = store.latest(key)
    if stored is not None:
        if tags and any(stored.get(k) != v for k, v in tags.items()):
            copy = {k: v for k, v in stored.items() if k != "restored_from"}
            copy.update(tags, defense=defense.spec, seconds=0.0, reused_from=stored.get("timestamp"),
                        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"))
            if record:
                store.append(copy)
            return copy
        return stored
    same = {evaluation_key(defense, other, test, trials, seed) for other in named_presets(atk)}
    if not same:
        return None
    for rec in reversed(store.records()):
        if rec.get("eval_hash") in same:  # the same attack stored under its preset's name: same seeds, same result
            # the copy is another cell (its own spec) or none: it never keeps the original's sweep cell tag, which
            # would make it the newest record of that cell (a report step's budget grid took a campaign page's
            # adaptive-pgd10 cell that way, and its seed-pooled claims lost seed 0)
            rec = {k: v for k, v in rec.items() if k not in CELL_TAGS}
            copy = {**rec, "attack": atk.spec, "eval_hash": key, "seconds": 0.0, "same_as": rec["attack"],
                    "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"), **(tags or {})}
            if record:
                store.append(copy)
            return copy
    return None


def evaluate(
    defense: Defense,
    attack: str,
    *,
    eps: float | None = None,
    step: float | None = None,
    norm: str | None = None,
    trials: int | None = None,
    seed: int | None = None,
    workdir: str | Path | None = None,
    split: Split | None = None,
    batch_size: int | None = None,
    record: bool = True,
    show_progress: bool = True,
    tags: dict[str, Any] | None = None,
    reuse: bool = False,
) -> dict[str, Any]:
    """Attack the defense on its test split and return (and, with record=True, store) one result record.

    `tags` are extra fields stored with the record (a sweep stores its cell key there). With `reuse=True` (what
    `bench run` and the sweep do, `bench run` unless --rerun) a stored record of the same evaluation (same
    results.record.evaluation_key) is returned instead and stderr says so: an identical evaluation is not run
    twice (with `tags` the record lacks, it is stored again with them, 0 seconds: see _stored)."""
    atk, test, trials, seed = _evaluation(defense, attack, eps, step, norm, trials, seed, split)
    _check_extras(batch_size, tags)
    settings: Preset = defense.info["settings"]
    if reuse:
        stored = _stored(defense, atk, test, trials, seed, resolve_workdir(workdir or defense.info["workdir"]), record,
                         tags)
        if stored is not None:
            where = f" at ε {eps_text(stored['eps'], stored.get('norm'))}" if atk.uses_eps else ""
            again = "" if tags else ": `bench run --rerun` (reuse=False) evaluates again"
            stderr_console.print(f"reused stored record of {defense.spec} {atk.spec}{where} ({stored.get('timestamp')}, "
                                 f"eval {stored.get('eval_hash')}){again}", markup=False, highlight=False, soft_wrap=True)
            return stored
    batch_size = batch_size or settings.eval_batch_size
    check_unit_range(test.x, "test images")
    defense.verify_randomness(test.x[:min(len(test), 64)].to(defense.device))
    eval_hash = evaluation_key(defense, atk, test, trials, seed)
    start = running_time()
    metrics = atk.evaluate(defense, test, trials=trials, seed=seed, batch_size=batch_size,
                           show_progress=show_progress)
    seconds = running_time() - start
    clean, robust = metrics["clean"], metrics["robust"]
    n = int(metrics.get("n", len(test)))
    threat = atk.threat_model(defense.stochastic)
    clean_ci, robust_ci = accuracy_interval(clean, n), accuracy_interval(robust, n)
    rec = {  # the fields of results.record (FIELDS), version SCHEMA_VERSION
        "schema_version": SCHEMA_VERSION,
        "dataset": defense.dataset.name,
        "model": defense.info.get("architecture", settings.model),
        "defense": defense.spec,
        "attack": atk.spec,
        "threat_model": threat.value,
        "norm": atk.norm.value,
        "eps": atk.eps,
        **({"eps_source": "user" if eps is not None else settings.eps_source(norm, defense.dataset.name)}
           if atk.uses_eps else {}),
        "step": atk.step,
        "attack_config": atk.config(),
        "clean_acc": float(np.mean(clean)),
        "clean_acc_std": _std(clean),
        "clean_acc_ci_low": clean_ci[0],
        "clean_acc_ci_high": clean_ci[1],
        "robust_acc": float(np.mean(robust)),
        "robust_acc_std": _std(robust),
        "robust_acc_ci_low": robust_ci[0],
        "robust_acc_ci_high": robust_ci[1],
        "trials": trials,
        "n_examples": n,
        "seconds": round(seconds, 3),
        "seed": seed,
        "stochastic": defense.stochastic,
        "config_hash": defense.info["config_hash"],
        "eval_hash": eval_hash,
        "preset": settings.name,
        "device": str(defense.device),
        "threads": torch.get_num_threads(),
        "trained": bool(defense.info["trained"]),
        "inference_config": defense.rule.config(),
        "train_config": {k: defense.info["config"][k] for k in ("recipe_config", "epochs", "lr", "batch_size")}
        if "config" in defense.info else {},
        "train_overrides": preset_differences(settings, defense.info.get("config", {}).get("recipe")
                                              or defense.recipe.name or None,
                                              defense.info.get("config", {}).get("epochs"), defense.dataset.name),
        "data_fingerprint": dataset_fingerprint(defense.dataset),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
    }
    if "worst" in metrics:  # correct in every one of `draws` draws (= robust_acc for a deterministic defense)
        worst_ci = accuracy_interval(metrics["worst"], n)
        rec.update(robust_acc_worst=float(np.mean(metrics["worst"])), robust_acc_worst_std=_std(metrics["worst"]),
                   robust_acc_worst_ci_low=worst_ci[0], robust_acc_worst_ci_high=worst_ci[1],
                   draws=int(metrics.get("draws", 1)))
    if "per_image" in metrics:
        rec["per_image"] = metrics["per_image"]
    if "zoo" in defense.info:
        rec["zoo"] = defense.info["zoo"]  # which model-zoo checkpoint (name, section, sha256) was attacked
    if "hit" in metrics:
        rec["target_hit_rate"] = float(np.mean(metrics["hit"]))
    for key in ("details", "value", "metric"):
        if key in metrics:
            rec[key] = metrics[key]
    rec.update(tags or {})
    if record:
        ResultStore(resolve_workdir(workdir or defense.info["workdir"])).append(rec)
    return rec
