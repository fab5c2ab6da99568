"""Every default of the harness lives here, grouped in named presets; CLI options override preset values."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bench.errors import BenchError
from bench.registry import Registry


@dataclass(frozen=True)
class Preset:
    """Defaults for one way of running the benchmark (data, model, training and evaluation)."""

    name: str
    description: str
    dataset: str = "digits"
    model: str = "small-cnn"
    # training: epochs per recipe (recipes not listed use `epochs_default`)
    epochs: dict[str, int] = field(default_factory=dict)
    epochs_default: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    eta: float = 1.0  # mixup coefficient lambda ~ Beta(eta, eta)
    # inference rules: lambda_mi per recipe (recipes not listed use `lambda_mi_default`)
    lambda_mi: dict[str, float] = field(default_factory=dict)
    lambda_mi_default: float = 0.5
    n_mi: int = 30
    # evaluation
    eps: float = 8 / 255
    step: float = 2 / 255
    trials: int = 1
    eval_batch_size: int = 256
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    # MMD-VAE of the Var* defenses (paper eq. 11); bandwidth None = 2 * latent_dim (see defenses/latent.py)
    vae_latent_dim: int = 32
    vae_width: int = 32
    vae_gamma: float = 1.0
    vae_bandwidth: float | None = None
    vae_epochs: int = 30
    vae_batch_size: int = 128
    vae_lr: float = 1e-3
    vae_from: str | None = None  # train the VAE on another dataset (paper Table 3)
    # adversarial VAE (`adv-` prefix): PGD on the reconstruction error within vae_adv_eps
    vae_adv_eps: float = 8 / 255
    vae_adv_step: float = 2 / 255
    vae_adv_steps: int = 5

    def epochs_for(self, recipe: str) -> int:
        """Epochs for a recipe; `adv-X` trains its classifier like `X` (only its VAE differs)."""
        return self.epochs.get(recipe, self.epochs.get(recipe.removeprefix("adv-"), self.epochs_default))

    def lambda_mi_for(self, recipe: str) -> float:
        return self.lambda_mi.get(recipe, self.lambda_mi.get(recipe.removeprefix("adv-"), self.lambda_mi_default))

    def with_overrides(self, **overrides: Any) -> "Preset":
        """Return a copy with every non-None override applied (explicit options beat preset values)."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - set(asdict(self))
        if unknown:
            raise BenchError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        return replace(self, **clean)


PRESETS: Registry[Preset] = Registry("preset")


def _add(preset: Preset) -> Preset:
    PRESETS.register(preset.name, help=preset.description)(preset)
    return preset


QUICK = _add(
    Preset(
        name="quick",
        description="embedded digits, small CNN, epochs sized for a few minutes on 2 CPU cores",
        epochs={"erm": 20, "varerm": 20, "mixup": 30, "varmixup": 30},
        epochs_default=20,
    )
)

DEFAULT_PRESET = "quick"


def get_preset(name: str | None) -> Preset:
    return PRESETS.get(name or DEFAULT_PRESET)
