"""The attack suite: thin adapters over torchattacks / ART, registered by name."""
from attacks import adaptive, blackbox, catalog, metrics, pgd  # noqa: F401  (registration)
from attacks.base import ATTACKS, Attack, ThreatModel, check_unit_range

__all__ = ["ATTACKS", "Attack", "ThreatModel", "check_unit_range"]
