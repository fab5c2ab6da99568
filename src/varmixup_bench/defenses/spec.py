"""The defense spec grammar `recipe[(key=value,…)][+inference[(key=value,…)]]`, e.g. `erm`, `mixup+mi`,
`adv-varmixup+adv-varmi`, `noisy-training(sigma=0.2)+random-smoothing(sigma=0.25,n=16)`, and
`robustbench:NAME[+inference]` for a RobustBench model-zoo classifier (loaded, not trained).

Keywords set the constructor parameters a recipe or inference rule declares (`__init__(self, settings, sigma=0.1)`,
`__init__(self, settings, recipe, sigma=0.1, n=8)`); each must come back in the object's `config()`, so that it
enters the model's cache key (recipes) or the evaluation key (rules). The canonical text (keywords sorted, values
typed as the defaults) is the record's `defense`."""
from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass
from typing import Any

from varmixup_bench.core.errors import BenchError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ZOO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # RobustBench names: Carmon2019Unlabeled, Liu2023Comprehensive_Swin-B
_PART = re.compile(r"^(?P<name>[^()]*)(?:\((?P<args>.*)\))?$", re.S)
ZOO_PREFIX = "robustbench:"
DEFAULT_INFERENCE = "plain"

Args = tuple[tuple[str, Any], ...]


def _fmt(name: str, args: Args) -> str:
    if not args:
        return name
    return f"{name}(" + ",".join(f"{k}={v!r}" for k, v in args) + ")"


@dataclass(frozen=True)
class DefenseSpec:
    recipe: str
    inference: str = DEFAULT_INFERENCE
    recipe_args: Args = ()  # keywords of the recipe's constructor, sorted
    inference_args: Args = ()  # keywords of the inference rule's constructor, sorted

    def __str__(self) -> str:
        recipe = _fmt(self.recipe, self.recipe_args)
        if self.inference == DEFAULT_INFERENCE and not self.inference_args:
            return recipe
        return f"{recipe}+{_fmt(self.inference, self.inference_args)}"

    @property
    def zoo_model(self) -> str | None:
        """The RobustBench model name when F_w comes from its model zoo, else None."""
        return self.recipe[len(ZOO_PREFIX):] if self.recipe.startswith(ZOO_PREFIX) else None

    def build_recipe(self, settings: Any):
        """The recipe object with the spec's keywords (a BenchError for a keyword it does not take)."""
        from varmixup_bench.defenses.base import RECIPES

        return _build("recipe", self.recipe, RECIPES.get(self.recipe), (settings,), self.recipe_args)

    def trained_recipe(self, settings: Any):
        """The recipe that trains F_w; None for a model-zoo classifier (`robustbench:NAME`), which is loaded."""
        return None if self.zoo_model else self.build_recipe(settings)

    def build_rule(self, settings: Any):
        """The inference rule object with the spec's keywords."""
        from varmixup_bench.defenses.base import INFERENCE

        return _build("inference rule", self.inference, INFERENCE.get(self.inference), (settings, self.recipe),
                      self.inference_args)


def keywords(cls: type, positional: int) -> dict[str, Any]:
    """The keywords a recipe (positional=1: settings) or rule (2: settings, recipe) takes: {name: default}."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + positional:]  # after self and those
    return {p.name: p.default for p in params
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is not inspect.Parameter.empty}


def _typed(kind: str, name: str, key: str, value: Any, default: Any) -> Any:
    """`value` in the type of the keyword's default: an int where the default is an int, a float for a float."""
    where = f"{kind} {name}: {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise BenchError(f"{where} must be true or false, got {value!r}")
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise BenchError(f"{where} must be an integer, got {value!r}")
    elif isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise BenchError(f"{where} must be a number, got {value!r}")
        return float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise BenchError(f"{where} must be a string, got {value!r}")
    return value


def _check_args(kind: str, name: str, cls: type, positional: int, args: dict[str, Any]) -> Args:
    declared = keywords(cls, positional)
    for key in args:
        if key not in declared:
            raise BenchError(f"{kind} {name} takes no keyword {key!r}; its keywords: "
                             f"{', '.join(sorted(declared)) or 'none'}")
    return tuple(sorted((k, _typed(kind, name, k, v, declared[k])) for k, v in args.items()))


def _build(kind: str, name: str, cls: type, positional: tuple, args: Args):
    try:
        obj = cls(*positional, **dict(args))
    except (TypeError, ValueError) as exc:
        raise BenchError(f"{kind} {_fmt(name, args)}: {exc}") from None
    if args:
        config = obj.config()
        missing = [k for k, v in args if k not in config or config[k] != v]
        if missing:
            raise BenchError(f"{kind} {name}: config() does not return {', '.join(missing)} with the value given, so "
                             "it would not enter the cache and evaluation keys; return every keyword from config()")
    return obj


def _literal(text: str, where: str) -> Any:
    raw = text.strip()
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_\-]*", raw):
            return raw  # a bare word: a string
        if re.fullmatch(r"[0-9.]+\s*/\s*[0-9.]+", raw):
            from varmixup_bench.core.parsing import parse_number

            return parse_number(raw, where)
        raise BenchError(f"{where}: cannot read the value {raw!r}") from None


def _part(text: str, spec: str) -> tuple[str, dict[str, Any]]:
    """`name` or `name(key=value,…)` -> (name, {key: value})."""
    from varmixup_bench.core.parsing import parse_keywords, split_top_level

    m = _PART.match(text)
    if not m:
        raise BenchError(f"malformed defense spec {spec!r}: expected NAME or NAME(key=value,...)")
    args: dict[str, Any] = parse_keywords(split_top_level(m.group("args") or ""), f"malformed defense spec {spec!r}",
                                          "keywords", lambda key, value: _literal(value, f"defense {m.group('name')} {key}"))
    if m.group("args") is not None and not args:
        raise BenchError(f"malformed defense spec {spec!r}: empty keyword list ()")
    return m.group("name"), args


def parse_defense_spec(text: str) -> DefenseSpec:
    """Split and validate the spec: names are looked up (with closest-match errors) and keywords checked against
    the constructors' parameters."""
    from varmixup_bench.core.parsing import split_top_level
    from varmixup_bench.defenses.base import INFERENCE, RECIPES

    raw = text.strip() if isinstance(text, str) else ""
    if raw.startswith(ZOO_PREFIX):
        parts = split_top_level(raw[len(ZOO_PREFIX):], "+")
        name = parts[0]
        inference, inf_args = _part(parts[1], text) if len(parts) == 2 else (DEFAULT_INFERENCE, {})
        if len(parts) > 2 or not _ZOO_NAME.match(name) or (len(parts) == 2 and not _NAME.match(inference)):
            raise BenchError(f"malformed defense spec {text!r}: expected robustbench:NAME or robustbench:NAME+INFERENCE, "
                             "e.g. robustbench:Carmon2019Unlabeled")
        rule = INFERENCE.get(inference)
        return DefenseSpec(ZOO_PREFIX + name, inference, (),
                           _check_args("inference rule", inference, rule, 2, inf_args))
    parts = split_top_level(raw, "+") if raw else []
    named = [_part(p, text) for p in parts] if 1 <= len(parts) <= 2 else []
    if not named or not all(_NAME.match(n) for n, _ in named):
        raise BenchError(
            f"malformed defense spec {text!r}: expected RECIPE or RECIPE+INFERENCE in lower case, e.g. mixup+mi, "
            "with optional keywords: noisy-training(sigma=0.2)"
        )
    (recipe, recipe_args), (inference, inf_args) = named[0], named[1] if len(named) == 2 else (DEFAULT_INFERENCE, {})
    recipe_cls = RECIPES.get(recipe)
    rule_cls = INFERENCE.get(inference)
    return DefenseSpec(recipe, inference, _check_args("recipe", recipe, recipe_cls, 1, recipe_args),
                       _check_args("inference rule", inference, rule_cls, 2, inf_args))
