"""Checks of a whole run or sweep before any data loading or training."""
from __future__ import annotations

from typing import Optional


def check_before_work(defenses: list[str], attacks: list[str], eps_list: Optional[list[float]], base,
                      overrides: dict, datasets: Optional[list[str]] = None):
    """Everything that can be checked before data loading and training: every preset value (Preset.check), each
    defense's recipe and rule with its keywords, and each attack built at every radius, step and norm it will run
    with (which runs its own value checks, e.g. pgd(steps=-3)). Returns the resolved settings."""
    from varmixup_bench.attacks.spec import attack_class, build_attack
    from varmixup_bench.training.data import check_dataset_name
    from varmixup_bench.training.runner import resolve_settings
    from varmixup_bench.defenses import parse_defense_spec

    settings = resolve_settings(base, **overrides)
    names = datasets or [settings.dataset]
    for name in names:
        check_dataset_name(name)
    if settings.vae_from:
        check_dataset_name(settings.vae_from)
    for spec in defenses:
        dspec = parse_defense_spec(spec)
        dspec.trained_recipe(settings)
        dspec.build_rule(settings)
    for name in attacks:
        uses_eps = attack_class(name).uses_eps
        for ds in names:
            for e in (eps_list or [settings.eps_for(None, ds)]) if uses_eps else [0.0]:
                build_attack(name, e, settings.step, settings, settings.norm)
    return settings

