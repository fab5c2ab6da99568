"""The attack suite: thin adapters over torchattacks / ART, registered by name."""
from varmixup_bench.attacks import adaptive, blackbox, catalog, metrics, pgd  # noqa: F401  (registration)
from varmixup_bench.attacks.base import ATTACKS, Attack, ThreatModel, check_unit_range

__all__ = ["ATTACKS", "Attack", "ThreatModel", "check_unit_range"]
