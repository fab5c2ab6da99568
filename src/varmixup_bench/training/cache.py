"""Trained-weight cache keyed by a hash of everything that determines the weights (safetensors + JSON metadata)."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from torch import nn

from varmixup_bench.core.atomic import atomic_write, atomic_write_text, file_lock
from varmixup_bench.core.errors import BenchError


def config_hash(config: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-serialisable config."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


CACHE_ENV_VAR = "BENCH_CACHE_DIR"


def cache_root(workdir: Path) -> Path:
    """Where trained weights live: $BENCH_CACHE_DIR when set (shared by many workdirs), else the workdir itself."""
    shared = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(shared).expanduser() if shared else Path(workdir)


class WeightCache:
    """<cache root>/<kind>/<key>/{weights.safetensors, meta.json}; tensors only, never pickles.

    The cache root is the workdir unless $BENCH_CACHE_DIR names a shared folder (see `cache_root`)."""

    def __init__(self, workdir: Path, kind: str = "models") -> None:
        self.root = cache_root(workdir) / kind

    def folder(self, key: str) -> Path:
        return self.root / key

    def lock(self, key: str):
        """Held while training a key, so two processes never train the same network at once."""
        return file_lock(self.root / f".{key}.lock")

    def exists(self, key: str) -> bool:
        f = self.folder(key)
        return (f / "weights.safetensors").exists() and (f / "meta.json").exists()

    def save(self, key: str, module: nn.Module, meta: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        folder = self.folder(key)
        atomic_write(folder / "weights.safetensors", lambda tmp: save_file(state, tmp, metadata={"key": key}))
        atomic_write_text(folder / "meta.json", json.dumps({**meta, "key": key}, indent=2, default=str))

    def load(self, key: str, module: nn.Module) -> dict[str, Any]:
        """Load weights into `module` (strict) and return the metadata; a mismatch is a clear error."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file, safe_open

        folder = self.folder(key)
        path = folder / "weights.safetensors"
        try:
            meta = json.loads((folder / "meta.json").read_text())
            with safe_open(str(path), framework="pt") as fh:
                file_key = (fh.metadata() or {}).get("key")
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
            raise BenchError(f"cached weights in {folder} are unreadable ({exc}); delete the folder to retrain") from None
        if meta.get("key") != key or file_key != key:
            raise BenchError(f"cached weights in {folder} do not belong to key {key}; delete the folder to retrain")
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise BenchError(f"cached weights in {folder} do not fit the model: {str(exc).splitlines()[0]}") from None
        return meta
