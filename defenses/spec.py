"""The defense spec grammar `recipe[+inference]`, e.g. `erm`, `mixup+mi`, `adv-varmixup+adv-varmi`, and
`robustbench:NAME[+inference]` for a RobustBench model-zoo classifier (loaded, not trained)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import BenchError

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ZOO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # RobustBench names: Carmon2019Unlabeled, Liu2023Comprehensive_Swin-B
ZOO_PREFIX = "robustbench:"
DEFAULT_INFERENCE = "plain"


@dataclass(frozen=True)
class DefenseSpec:
    recipe: str
    inference: str = DEFAULT_INFERENCE

    def __str__(self) -> str:
        return self.recipe if self.inference == DEFAULT_INFERENCE else f"{self.recipe}+{self.inference}"

    @property
    def zoo_model(self) -> str | None:
        """The RobustBench model name when F_w comes from its model zoo, else None."""
        return self.recipe[len(ZOO_PREFIX):] if self.recipe.startswith(ZOO_PREFIX) else None


def parse_defense_spec(text: str) -> DefenseSpec:
    """Split and validate the spec; names are looked up (with closest-match errors) by the caller."""
    from defenses.base import INFERENCE, RECIPES

    raw = text.strip() if isinstance(text, str) else ""
    if raw.startswith(ZOO_PREFIX):
        name, plus, inference = raw[len(ZOO_PREFIX):].partition("+")
        if not _ZOO_NAME.match(name) or (plus and not _NAME.match(inference)):
            raise BenchError(f"malformed defense spec {text!r}: expected robustbench:NAME or robustbench:NAME+INFERENCE, "
                             "e.g. robustbench:Carmon2019Unlabeled")
        inference = inference or DEFAULT_INFERENCE
        INFERENCE.get(inference)
        return DefenseSpec(ZOO_PREFIX + name, inference)
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
