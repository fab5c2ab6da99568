"""Where the harness keeps models, data caches and results: --workdir, else $BENCH_WORKDIR, else a per-user folder."""
from __future__ import annotations

import os
from pathlib import Path

from varmixup_bench.core.errors import BenchError

ENV_VAR = "BENCH_WORKDIR"


def default_workdir() -> Path:
    """$BENCH_WORKDIR, else $XDG_DATA_HOME/varmixup-bench, else ~/.local/share/varmixup-bench (never the cwd)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "varmixup-bench"


def resolve_workdir(workdir: str | Path | None = None, create: bool = True) -> Path:
    path = (Path(workdir).expanduser() if workdir else default_workdir()).resolve()
    if path.exists() and not path.is_dir():
        raise BenchError(f"workdir {path} exists and is not a directory")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BenchError(f"cannot create workdir {path}: {exc.strerror}") from None
    return path


def existing_workdir(workdir: str | Path | None = None, lacks: str = ": nothing is stored there",
                     advice: str = "") -> Path:
    """The workdir a command reads (tables, diagnostics, plots, export, retire, a VAE to show): it must exist, since
    an empty answer from a mistyped path reads like a store with nothing in it ("no warning signs"). `lacks` and
    `advice` say what the command missed and what to do first, before the advice every such error gives."""
    path = resolve_workdir(workdir, create=False)
    if not path.exists():
        raise BenchError(f"workdir {path} does not exist{lacks}" + (f": {advice} (or give" if advice else " (give")
                         + f" the --workdir of your runs, or set ${ENV_VAR})")
    return path


def check_creatable(path: Path) -> Path:
    """A workdir a command will create once its input checks out (not before: a failing command leaves none): the
    nearest existing folder above it must be writable, else the one-line error resolve_workdir gives."""
    above = path
    while not above.exists() and above != above.parent:
        above = above.parent
    if not above.is_dir() or not os.access(above, os.W_OK | os.X_OK):
        raise BenchError(f"cannot create workdir {path}: {above} is not a writable folder")
    return path
