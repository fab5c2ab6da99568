"""Presets from the user: `--set field=value` overrides and `--preset-file PATH` (TOML), both validated against
the Preset fields, so that every preset value can be changed without a dedicated CLI option."""
from __future__ import annotations

import json
import tomllib
import types
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from varmixup_bench.core.errors import BenchError
from varmixup_bench.config.presets import Preset, get_preset
from varmixup_bench.core.registry import unknown_name_message

_FIELDS = {f.name: f for f in fields(Preset)}


def _field_types(name: str) -> tuple[type, ...]:
    """The field's types without None: `int | None` -> (int,), `float` -> (float,)."""
    tp = typing.get_type_hints(Preset)[name]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(a for a in typing.get_args(tp) if a is not type(None))
    return (tp,)


def _allows_none(name: str) -> bool:
    return type(None) in typing.get_args(typing.get_type_hints(Preset)[name])


def coerce(name: str, value: Any) -> Any:
    """Check (and convert from text) one preset value against the field's type; a bad value is a BenchError."""
    if name not in _FIELDS:
        raise BenchError(unknown_name_message("preset field", name, sorted(_FIELDS)))
    if name == "name":
        return str(value)
    hint = typing.get_type_hints(Preset)[name]
    origin = typing.get_origin(hint)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        if _allows_none(name):
            return None
        raise BenchError(f"preset field {name} cannot be none")
    if origin is dict or hint is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise BenchError(f"preset field {name} takes a JSON object, e.g. {name}='{{\"erm\": 5}}'") from None
        if not isinstance(value, dict):
            raise BenchError(f"preset field {name} takes a table / JSON object, got {value!r}")
        return dict(value)
    kinds = _field_types(name)
    if bool in kinds:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise BenchError(f"preset field {name} takes true or false, got {value!r}")
    if int in kinds:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError  # TOML's `true` is no count (int(True) would read it as 1)
            return int(value)
        except (TypeError, ValueError):
            raise BenchError(f"preset field {name} takes an integer, got {value!r}") from None
    if float in kinds:
        if isinstance(value, str):
            from varmixup_bench.core.parsing import parse_number

            return parse_number(value, f"preset field {name}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise BenchError(f"preset field {name} takes a number, got {value!r}")
    return str(value)


def parse_set_options(items: list[str] | None) -> dict[str, Any]:
    """`--set field=value` (repeatable) -> {field: typed value}."""
    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise BenchError(f"--set {item!r}: expected FIELD=VALUE, e.g. --set n_adaptive=16")
        out[name.strip()] = coerce(name.strip(), value.strip())
    return out


def load_preset_file(path: Path) -> Preset:
    """A TOML preset: optional `base = "quick"` (default the default preset), optional `name`/`description`,
    and any Preset field; unknown fields and ill-typed values are errors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise BenchError(f"--preset-file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BenchError(f"--preset-file {path}: not valid TOML ({exc})") from None
    base_name = data.pop("base", None)
    if base_name is not None and not isinstance(base_name, str):
        raise BenchError(f'--preset-file {path}: base must be a preset\'s name in quotes, e.g. base = "quick"; '
                         f"got {base_name!r}")
    base = get_preset(base_name)
    values = {k: coerce(k, v) for k, v in data.items()}
    values.setdefault("name", path.stem)
    values.setdefault("description", f"from {path.name}, based on {base.name}")
    return replace(base, **values)
