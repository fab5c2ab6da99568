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
    # adversarial training (at, trades, iat, variat): the inner L-inf attack on the [0,1] scale
    train_eps: float = 8 / 255
    train_step: float = 2 / 255
    train_steps: int = 10
    trades_beta: float = 6.0
    # hardware
    amp: bool = False  # bf16 autocast while training (CPU and CUDA)
    num_workers: int = 2  # DataLoader workers when the training set does not fit on the device
    device_data_limit_gb: float = 4.0  # training sets up to this size are kept on the device
    # evaluation
    norm: str = "Linf"  # threat model of eps attacks: Linf | L2 (--norm)
    eps: float = 8 / 255  # L-inf radius
    eps_l2: float = 0.5  # L2 radius, used with norm L2 (RobustBench's CIFAR-10 L2 budget)
    step: float | None = None  # PGD step; None = eps/4 at every eps and norm (2/255 at 8/255, 0.125 at L2 0.5)
    trials: int = 1
    eval_batch_size: int = 256
    n_adaptive: int = 30  # N_A: draws of the defense's randomness averaged per adaptive-PGD step (EOT)
    apgd_steps: int = 100  # iterations of each APGD run (CE, then DLR) of adaptive-apgd: AutoAttack's 100
    eot_max_rows: int = 4096  # batched EOT: at most this many inputs (B x draws) per forward/backward
    # rows per model call inside a randomised rule (n_mi x B mixes, or B x N_A EOT rows); None: 256 on a CPU,
    # where cache-sized calls are up to twice as fast as one large call (defenses.base.CPU_CHUNK_ROWS), one call
    # elsewhere
    forward_rows: int | None = None
    worst_case_draws: int = 10  # R: draws classifying each adversarial example of a randomised defense
    spsa_iters: int = 100
    spsa_samples: int = 128
    spsa_lr: float = 0.01
    spsa_delta: float = 0.01
    spsa_subset: int | None = None  # stratified N test images for SPSA (the paper uses 1000)
    corruptions_dir: str | None = None  # official CIFAR-10-C style .npy folder; None = generated
    corruption_subset: int | None = None  # stratified N test images for corruptions (None = all)
    seed: int = 0
    train_subset: int | None = None
    test_subset: int | None = None
    # the seed of every stratified subset (train, test, SPSA, corruptions): fixed, so that several training seeds
    # are trained on the same examples and evaluated on the same images (paired comparisons across seeds)
    subset_seed: int = 0
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
    vae_adv_epochs: int | None = None  # adversarial VAE epochs (None: vae_epochs)
    # RobustBench model zoo (`robustbench:NAME` defenses): checkpoints as robustbench lays them out
    zoo_model_dir: str | None = None  # None = <workdir>/robustbench-models (never the current directory)
    zoo_threat_model: str = "Linf"  # the zoo section the model is listed under: Linf | L2 | corruptions
    zoo_dataset: str | None = None  # cifar10 | cifar100 | imagenet; None = inferred from the data's name or shape

    def epochs_for(self, recipe: str) -> int:
        """Epochs for a recipe; `adv-X` trains its classifier like `X` (only its VAE differs)."""
        return self.epochs.get(recipe, self.epochs.get(recipe.removeprefix("adv-"), self.epochs_default))

    def eps_for(self, norm: str | None = None) -> float:
        """The default radius in `norm` (default: this preset's norm): eps for L-inf, eps_l2 for L2."""
        from attacks.base import Norm, parse_norm

        return self.eps_l2 if parse_norm(norm or self.norm) is Norm.L2 else self.eps

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


_PAPER_EPOCHS = {"erm": 100, "varerm": 100, "mixup": 150, "varmixup": 150, "manifold-mixup": 150,
                 "at": 250, "trades": 250, "iat": 350, "variat": 350}

QUICK = _add(
    Preset(
        name="quick",
        description="the default: embedded digits, small CNN, epochs sized for a few minutes on 2 CPU cores",
        epochs={"erm": 20, "varerm": 20, "mixup": 30, "varmixup": 30, "manifold-mixup": 30,
                "at": 15, "trades": 15, "iat": 15, "variat": 15},
        epochs_default=20,
        train_steps=5,
        lambda_mi={"iat": 0.6, "variat": 0.6},
    )
)

CIFAR_CPU = _add(
    Preset(
        name="cifar-cpu",
        description="CIFAR-10 on a 2-core CPU: small CNN, stratified 5000/500 train/test subsets, reduced attack "
        "budgets; a sweep of every defense in about an hour (pass --dataset imagefolder:PATH for the JPEG tarball)",
        dataset="cifar10",
        model="small-cnn",
        train_subset=5000,
        test_subset=500,
        # measured here (s/epoch on 5000 images): erm 3.9, mixup 2.5, varmixup 3.3, at 11.8, trades 15.1,
        # iat 14.3, VAE 3.9, adv-VAE 12.7
        epochs={"erm": 15, "varerm": 15, "mixup": 20, "varmixup": 20, "manifold-mixup": 20,
                "at": 10, "trades": 10, "iat": 10, "variat": 10},
        epochs_default=15,
        train_steps=5,
        vae_epochs=20,
        vae_adv_steps=3,
        lambda_mi={"iat": 0.6, "variat": 0.6},
        n_adaptive=8,
        spsa_subset=50,  # measured: 100 images x 40 iterations x 64 samples took 316 s per defense here
        spsa_iters=20,
        spsa_samples=64,
        corruption_subset=200,
    )
)

CIFAR_CPU_FULL = _add(
    replace(
        CIFAR_CPU,
        name="cifar-cpu-full",
        description="CIFAR-10 on a 2-core CPU, the committed leaderboard: small CNN on all 50,000 training images, "
        "1,000 stratified test images (SPSA 200, corruptions 500), epochs sized from measured epoch times",
        train_subset=None,
        test_subset=1000,
        # measured here on 50,000 images, 2 threads: erm 52 s/epoch, MMD-VAE (latent 64) about 100 s/epoch; the
        # other recipes scale as on 5,000 (see cifar-cpu); leaderboards/README.md has the whole budget table
        epochs={"erm": 5, "varerm": 4, "mixup": 6, "varmixup": 6, "manifold-mixup": 6,
                "at": 3, "trades": 2, "iat": 2, "variat": 2},
        epochs_default=5,
        vae_latent_dim=64,  # test pixel MSE after 6 epochs: 0.01148 at latent 64 against 0.01342 at 32
        vae_epochs=6,
        vae_adv_epochs=2,
        vae_adv_steps=2,
        spsa_subset=200,
        corruption_subset=500,
        # adaptive APGD with EOT 8 on VarMI costs about 23 s per iteration per 1,000 images here (torchattacks loops
        # the EOT draws): 20 iterations per loss instead of 100 keep it to about 15 min per randomised defense
        apgd_steps=20,
    )
)

PAPER = _add(
    Preset(
        name="paper",
        description="the paper's protocol (Table 1, baselines): ResNet-34, Adam lr 1e-3, 100/150/250/350 epochs, "
        "PGD-10 with step 8/255, 10 trials",
        dataset="cifar10",
        model="resnet34",
        epochs=_PAPER_EPOCHS,
        epochs_default=100,
        lr=1e-3,
        optimizer="adam",
        eta=1.0,
        lambda_mi={"iat": 0.6, "variat": 0.6},
        lambda_mi_default=0.5,
        n_mi=30,
        train_eps=8 / 255,
        train_step=2 / 255,
        train_steps=10,
        eps=8 / 255,
        step=8 / 255,
        trials=10,
        eval_batch_size=128,
        spsa_subset=1000,  # "SPSA ... over 1000 test samples"
    )
)

DEFAULT_PRESET = "quick"


def get_preset(name: str | None) -> Preset:
    return PRESETS.get(name or DEFAULT_PRESET)
