"""Attack specs: `NAME`, `NAME(key=value,…)` and `FAMILY:REST` (e.g. `transfer:erm`), resolved to an Attack.

Built-in attacks declare the keywords they take (`params`); a family prefix (`transfer:`, …) is a registered
factory, so new families need no change here. The canonical text of a spec (keywords sorted) is the record's
`attack` name, so `adaptive-pgd(steps=20,eot=8)` and `adaptive-pgd(eot=8,steps=20)` are one result."""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Callable

from varmixup_bench.attacks.base import ATTACKS, Attack, reject_unknown_keywords
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry

_SPEC = re.compile(r"^\s*(?P<name>[A-Za-z0-9_.+:\-]+?)\s*(?:\((?P<args>.*)\))?\s*$", re.S)

# FAMILY -> factory(rest_of_name, args) returning an Attack class configured for that name; the modules that
# register the families are imported on first use, as ATTACKS' are (else a fresh process's first family spec,
# `bench run --attack transfer:erm`, was an unknown attack)
FAMILIES: Registry[Callable[[str, dict], type[Attack]]] = Registry("attack family", builtins=(
    "varmixup_bench.attacks.adaptive", "varmixup_bench.attacks.catalog"))


@dataclass(frozen=True)
class AttackSpec:
    name: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def __str__(self) -> str:
        if not self.args:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={_fmt(v)}" for k, v in self.args) + ")"


def _fmt(v: Any) -> str:
    return repr(v) if isinstance(v, str) else str(v)


def _value(text: str, where: str) -> Any:
    raw = text.strip()
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", raw):
            return raw  # a bare word: a string such as loss=ce
        if re.fullmatch(r"\s*[0-9.]+\s*/\s*[0-9.]+\s*", raw):
            from varmixup_bench.core.parsing import parse_number

            return parse_number(raw, where)
        raise BenchError(f"attack {where}: cannot read the value {raw!r}") from None


def _split_args(text: str) -> list[str]:
    from varmixup_bench.core.parsing import split_top_level

    return [p for p in split_top_level(text) if p.strip()]


def parse_attack_spec(text: str) -> AttackSpec:
    """`pgd10`, `adaptive-pgd(steps=20,eot=8)`, `transfer:erm` -> AttackSpec; malformed text is a BenchError."""
    m = _SPEC.match(text or "")
    if not m:
        raise BenchError(f"invalid attack {text!r}: expected NAME or NAME(key=value,...)")
    from varmixup_bench.core.parsing import parse_keywords

    args: dict[str, Any] = parse_keywords(_split_args(m.group("args") or ""), f"invalid attack {text!r}", "arguments",
                                          lambda key, value: _value(value, f"{m.group('name')} {key}"))
    return AttackSpec(m.group("name"), tuple(sorted(args.items())))


def attack_class(spec: str | AttackSpec) -> type[Attack]:
    """The Attack class a spec names (a family prefix builds one); unknown names give the closest matches."""
    spec = parse_attack_spec(spec) if isinstance(spec, str) else spec
    family, sep, rest = spec.name.partition(":")
    if sep and family in FAMILIES.names():
        return FAMILIES.get(family)(rest, spec.kwargs)
    if sep and spec.name not in ATTACKS.names():
        FAMILIES.get(family)  # an unknown family: the error lists the known ones
    return ATTACKS.get(spec.name)


def check_params(cls: type[Attack], spec: AttackSpec) -> None:
    """Every keyword is one the attack takes, with a value of the declared type."""
    params = cls.parameters()
    reject_unknown_keywords(spec.name, params, spec.kwargs)
    for key, value in spec.args:
        kind = params[key][0]
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool)):
            raise BenchError(f"attack {spec.name}: {key} must be an integer, got {value!r}")
        if kind is float and not isinstance(value, (int, float)):
            raise BenchError(f"attack {spec.name}: {key} must be a number, got {value!r}")


def build_attack(spec: str | AttackSpec, eps: float, step: float | None, settings: Any,
                 norm: str | None = None) -> Attack:
    """An Attack instance for `spec` at radius eps in `norm` (default: the preset's; attacks without a radius
    ignore both)."""
    spec = parse_attack_spec(spec) if isinstance(spec, str) else spec
    cls = attack_class(spec)
    check_params(cls, spec)
    kwargs = spec.kwargs
    norm = norm if norm is not None else settings.norm if settings is not None else None
    atk = cls(eps, step, settings, norm=norm, **kwargs) if cls.uses_eps else cls(settings=settings, **kwargs)
    atk.spec = str(canonical(spec, cls))
    return atk


def canonical(spec: AttackSpec, cls: type[Attack]) -> AttackSpec:
    """A family spec under its class's own spelling (`torchattacks:pgd` -> `torchattacks:PGD`): one result, one
    name in the store and the leaderboard."""
    return AttackSpec(cls.name, spec.args) if ":" in spec.name and cls.name else spec


def validate_attack(text: str) -> AttackSpec:
    """Parse and resolve a spec without building it (CLI validation before any work)."""
    spec = parse_attack_spec(text)
    cls = attack_class(spec)
    check_params(cls, spec)
    return canonical(spec, cls)


def preset_family(cls: type[Attack]) -> str | None:
    """The registered family that `cls` is a named preset of (`adaptive-pgd` for adaptive-pgd10's class: the
    nearest registered class in its MRO of which it fixes only parameters); None when it is no preset."""
    families = {ATTACKS.get(n): n for n in ATTACKS.names() if _fixes_parameters_only(cls, ATTACKS.get(n))}
    return next((families[k] for k in cls.__mro__ if k in families), None)


def _fixes_parameters_only(preset: type[Attack], base: type[Attack]) -> bool:
    """`preset` is `base` with some parameter defaults fixed and a name of its own (adaptive-pgd10 is
    adaptive-pgd with steps=10): it overrides no method and adds no attribute that is not a parameter."""
    if preset is base or not issubclass(preset, base):
        return False
    params = base.parameters()
    for klass in preset.__mro__[:preset.__mro__.index(base)]:
        own = {k for k in vars(klass) if not k.startswith("_")} - {"name"}
        if not own <= set(params):
            return False
    return True


def named_presets(atk: Attack) -> list[Attack]:
    """The registered attacks that run exactly `atk`: presets of its class with the same configuration, built at
    its radius, step and norm. A budget spec such as `adaptive-pgd(eot=8,restarts=1,steps=10)` is the preset
    `adaptive-pgd10` under the preset's N_A = 8, so a stored result of either answers for both."""
    out = []
    for name in ATTACKS.names():
        cls = ATTACKS.get(name)
        if not _fixes_parameters_only(cls, type(atk)):
            continue
        other = cls(atk.eps, atk.step, atk.settings, norm=atk.norm) if cls.uses_eps else cls(settings=atk.settings)
        if other.config() == atk.config():
            out.append(other)
    return out
