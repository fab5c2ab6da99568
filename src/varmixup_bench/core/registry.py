"""Decorator registries (defenses, attacks, datasets, models) with closest-match errors and entry-point plug-ins."""
from __future__ import annotations

import difflib
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from varmixup_bench.core.errors import BenchError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> factory map. Third-party packages add entries via the entry point group `group`."""

    def __init__(self, kind: str, group: str | None = None, accept: Callable[[object], bool] | None = None,
                 builtins: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.group = group
        self.accept = accept  # for a shared group: which plug-in objects belong to this registry
        # the package's own modules that register entries, imported on first use (not by the package's
        # __init__: a submodule importing its package then never runs into a half-initialised registration)
        self.builtins = builtins
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}
        self._plugins_loaded = False

    def register(self, name: str, help: str | None = None) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()
            self._help[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")
            return obj

        return deco

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib import import_module

        for module in self.builtins:
            import_module(module)
        if self.group is None:
            return
        for ep in metadata.entry_points(group=self.group):
            if ep.name in self._items:
                continue
            obj = ep.load()
            if self.accept is None or self.accept(obj):
                self.register(ep.name)(obj)

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._items)

    def help(self, name: str) -> str:
        self._load_plugins()
        return self._help.get(name, "")

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise BenchError(unknown_name_message(self.kind, name, self.names())) from None


def close_names(name: str, valid, n: int = 1, cutoff: float = 0.5) -> list[str]:
    """The valid names closest to a mistyped one, case aside (`PGD10` is `pgd10`), best first: every "Did you
    mean" of the package (registries, stored datasets, zoo models, library attack classes) comes from here."""
    folded = {str(v).lower(): str(v) for v in valid}
    return [folded[c] for c in difflib.get_close_matches(str(name).lower(), list(folded), n=n, cutoff=cutoff)]


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    """One line: the unknown name, the closest valid one (case aside: `PGD10` is `pgd10`), and all valid names."""
    close = close_names(name, valid)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}"
