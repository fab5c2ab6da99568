"""The attack suite: thin adapters over torchattacks / ART, registered by name (the registry imports the
modules that register them on first use: attacks.base.ATTACKS)."""
from varmixup_bench.attacks.base import ATTACKS, Attack, ThreatModel, check_unit_range

__all__ = ["ATTACKS", "Attack", "ThreatModel", "check_unit_range"]
