"""`robustbench:NAME` defenses: a RobustBench model-zoo classifier as F_w, loaded from --model-dir, never trained.

Offline first: the checkpoint is looked up where robustbench keeps it (MODEL_DIR/DATASET/THREAT/NAME.pt); it is
downloaded only with --download. robustbench loads it with torch.load, whose default in torch >= 2.6 is
weights_only=True, so a checkpoint carrying pickled code is refused, never executed.
"""
from __future__ import annotations

import hashlib
import pickle
from importlib import metadata
from pathlib import Path
from typing import Any

from torch import nn

from varmixup_bench.training.cache import config_hash
from varmixup_bench.training.data import Dataset
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import close_names
from varmixup_bench.training.robustbench_compat import import_robustbench

ZOO_DATASETS = ("cifar10", "cifar100", "imagenet")
_SHAPES = {(10, (3, 32, 32)): "cifar10", (100, (3, 32, 32)): "cifar100", (1000, (3, 224, 224)): "imagenet"}


def zoo_dataset_for(dataset: Dataset, override: str | None = None) -> str:
    """The RobustBench dataset a model for `dataset` comes from: the override, the data's own name, or (image
    folders only) its shape."""
    if override is not None:
        if override not in ZOO_DATASETS:
            raise BenchError(f"--zoo-dataset {override!r}: RobustBench datasets are {', '.join(ZOO_DATASETS)}")
        return override
    if dataset.name in ZOO_DATASETS:
        return dataset.name
    # a folder of images (e.g. the CIFAR-10 tarball) is taken for the zoo dataset of its shape; named datasets
    # that are not zoo datasets (svhn, digits, ...) have no zoo counterpart even when their shape matches
    guess = _SHAPES.get((dataset.num_classes, tuple(dataset.image_shape))) if dataset.name.startswith("imagefolder:") else None
    if guess is None:
        raise BenchError(
            f"dataset {dataset.name} ({dataset.num_classes} classes, images {tuple(dataset.image_shape)}) matches no "
            f"RobustBench dataset ({', '.join(ZOO_DATASETS)}); name one with --zoo-dataset")
    return guess


def checkpoint_paths(model_dir: Path, dataset: str, threat_model: str, name: str, n_files: int) -> list[Path]:
    """Where robustbench.utils.load_model reads a model's weights (ensembles: NAME.pt_m0.pt, NAME.pt_m1.pt, ...)."""
    base = model_dir / dataset / threat_model / f"{name}.pt"
    return [base] if n_files == 1 else [Path(f"{base}_m{i}.pt") for i in range(n_files)]


def _fingerprint(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def load_zoo_classifier(name: str, dataset: Dataset, model_dir: Path, *, threat_model: str = "Linf",
                        zoo_dataset: str | None = None, download: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """The zoo model (eval mode, [0,1] images -> logits) and a description of what was loaded (hashed into records)."""
    rb = import_robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    ds_name = zoo_dataset_for(dataset, zoo_dataset)
    valid_threats = [t.value for t in ThreatModel]
    if threat_model not in valid_threats:
        raise BenchError(f"--zoo-threat-model {threat_model!r}: valid RobustBench threat models are {', '.join(valid_threats)}")
    entries = model_dicts[BenchmarkDataset(ds_name)][ThreatModel(threat_model)]
    if name not in entries:
        close = close_names(name, entries)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise BenchError(f"unknown RobustBench model {name!r} for {ds_name}/{threat_model}.{hint} "
                         f"({len(entries)} models listed by robustbench.model_zoo for this section)")
    gdrive = entries[name].get("gdrive_id")
    n_files = len(gdrive) if isinstance(gdrive, list) else 1
    # robustbench builds ImageNet `Standard*` models from torchvision's own pretrained weights: no zoo file
    torchvision_weights = ds_name == "imagenet" and "Standard" in name
    paths = [] if torchvision_weights else checkpoint_paths(model_dir, ds_name, threat_model, name, n_files)
    missing = [p for p in paths if not p.is_file()]
    if missing and not download:
        raise BenchError(f"RobustBench model {name} is not in --model-dir: expected {missing[0]}; "
                         "place the checkpoint there or rerun with --download (needs network)")
    try:
        model = rb.utils.load_model(name, model_dir=str(model_dir), dataset=ds_name, threat_model=threat_model)
    except pickle.UnpicklingError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BenchError(f"RobustBench checkpoint for {name} refused: it holds more than weights ({first})") from None
    except (RuntimeError, ValueError, KeyError, EOFError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BenchError(f"RobustBench model {name} could not be loaded from {model_dir}: {first}") from None
    info = {"source": "robustbench", "robustbench": metadata.version("robustbench"), "name": name,
            "dataset": ds_name, "threat_model": threat_model,
            "weights_sha256": "torchvision-pretrained" if torchvision_weights else _fingerprint(paths)}
    return model.eval(), info


def zoo_defense(spec, ctx, download: bool = False):
    """The Defense for `robustbench:NAME[+INFERENCE]`: the zoo classifier under the spec's inference rule."""
    from varmixup_bench.defenses import Defense

    settings = ctx.settings
    model_dir = Path(settings.zoo_model_dir) if settings.zoo_model_dir else ctx.workdir / "robustbench-models"
    classifier, info = load_zoo_classifier(spec.zoo_model, ctx.dataset, model_dir, threat_model=settings.zoo_threat_model,
                                           zoo_dataset=settings.zoo_dataset, download=download)
    classifier.to(ctx.device).eval()
    rule = spec.build_rule(settings)
    defense = Defense.from_classifier(classifier, ctx.dataset, settings, spec=str(spec), rule=rule)
    defense.info.update({"config_hash": config_hash(info), "zoo": info, "architecture": type(classifier).__name__,
                         "workdir": ctx.workdir, "context": ctx})
    rule.setup(classifier, ctx)
    return defense
