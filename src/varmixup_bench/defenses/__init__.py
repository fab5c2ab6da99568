"""Defenses: training recipes and inference rules, registered by name; `recipe[+inference]` selects one."""
from varmixup_bench.defenses.base import INFERENCE, RECIPES, Defense, InferenceRule, Recipe, TrainContext, eval_mode
from varmixup_bench.defenses.spec import DefenseSpec, parse_defense_spec

__all__ = [
    "INFERENCE", "RECIPES", "Defense", "DefenseSpec", "InferenceRule", "Recipe", "TrainContext",
    "eval_mode", "parse_defense_spec",
]
