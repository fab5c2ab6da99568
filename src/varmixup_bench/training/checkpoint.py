"""Per-epoch training checkpoints (model + optimizer state, tensors only) so an interrupted training resumes."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from varmixup_bench.core.atomic import atomic_write
from varmixup_bench.core.errors import BenchError

FILE = "checkpoint.safetensors"


def save_checkpoint(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, epoch: int, history: list[dict],
                    rng: dict[str, torch.Tensor] | None = None) -> None:
    """Model tensors under `model.`, optimizer state tensors under `opt.<param>.<name>`, random-generator states
    (`rng`, for trainings that draw from one generator across epochs) under `rng.<name>`, the rest as JSON metadata."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"rng.{k}": v.detach().cpu().contiguous() for k, v in (rng or {}).items()})
    state = opt.state_dict()
    scalars: dict[str, dict] = {}
    for pid, pstate in state["state"].items():
        for name, value in pstate.items():
            if torch.is_tensor(value):
                tensors[f"opt.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    meta = {"epoch": str(epoch), "history": json.dumps(history), "param_groups": json.dumps(state["param_groups"]),
            "scalars": json.dumps(scalars)}
    atomic_write(Path(folder) / FILE, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_checkpoint(folder: Path, model: nn.Module, opt: torch.optim.Optimizer,
                    rng_out: dict[str, torch.Tensor] | None = None) -> tuple[int, list[dict]] | None:
    """Restore model and optimizer from the last completed epoch (and fill `rng_out` with the saved generator
    states); None when there is no checkpoint."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
        state: dict = {"state": {}, "param_groups": json.loads(meta["param_groups"])}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, pid, name = key.split(".", 2)
                state["state"].setdefault(int(pid), {})[name] = value
        for pid, values in json.loads(meta["scalars"]).items():
            state["state"].setdefault(int(pid), {}).update(values)
        opt.load_state_dict(state)
        if rng_out is not None:
            rng_out.update({k[4:]: v for k, v in tensors.items() if k.startswith("rng.")})
        return int(meta["epoch"]), json.loads(meta["history"])
    except (SafetensorError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise BenchError(f"checkpoint {path} is unreadable ({str(exc).splitlines()[0]}); delete it to restart") from None


def checkpoint_history(folder: Path) -> list[dict] | None:
    """The per-epoch history of the training checkpointed in `folder`, read from its metadata alone (no tensors:
    for progress and forecasts); None when there is no readable checkpoint."""
    from safetensors import SafetensorError, safe_open

    path = Path(folder) / FILE
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            return json.loads((fh.metadata() or {})["history"])
    except (SafetensorError, KeyError, ValueError, OSError):
        return None


def remove_checkpoint(folder: Path) -> None:
    (Path(folder) / FILE).unlink(missing_ok=True)
