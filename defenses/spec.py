"""The defense spec grammar `recipe[+inference]`, e.g. `erm`, `mixup+mi`, `adv-varmixup+adv-varmi`."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import BenchError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
DEFAULT_INFERENCE = "plain"


@dataclass(frozen=True)
class DefenseSpec:
    recipe: str
    inference: str = DEFAULT_INFERENCE

    def __str__(self) -> str:
        return self.recipe if self.inference == DEFAULT_INFERENCE else f"{self.recipe}+{self.inference}"


def parse_defense_spec(text: str) -> DefenseSpec:
    """Split and validate the spec; names are looked up (with closest-match errors) by the caller."""
    from defenses.base import INFERENCE, RECIPES

    raw = text.strip() if isinstance(text, str) else ""
    parts = raw.split("+")
    if not raw or len(parts) > 2 or not all(_NAME.match(p) for p in parts):
        raise BenchError(
            f"malformed defense spec {text!r}: expected RECIPE or RECIPE+INFERENCE in lower case, e.g. mixup+mi"
        )
    recipe = parts[0]
    inference = parts[1] if len(parts) == 2 else DEFAULT_INFERENCE
    RECIPES.get(recipe)
    INFERENCE.get(inference)
    return DefenseSpec(recipe, inference)
