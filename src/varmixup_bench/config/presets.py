"""Every default of the harness lives here, grouped in named presets; CLI options override preset values."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry


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
    optimizer: str = "adam"  # adam | sgd | sgd-nesterov (bench/training.py OPTIMIZERS)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | one-cycle (linear warm-up over the first quarter, then down to 0)
    label_smoothing: float = 0.0  # every recipe's cross-entropy (clean, mixed and adversarial terms)
    augment: str = "none"  # none | flip-translate (random horizontal flip and a shift of up to 2 pixels)
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
    # radii; None = the dataset's default (DATASET_EPS below: 32/255 and L2 0.7 on digits, 8/255 and 0.5 elsewhere)
    eps: float | None = None  # L-inf radius
    eps_l2: float | None = None  # L2 radius, used with norm L2
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
    vae_arch: str = "flat"  # the VAE architecture (defenses/vae.py VAES): flat | conv
    vae_latent_dim: int = 32  # flat: the latent vector's length
    vae_latent_channels: int = 16  # conv: the spatial latent's channels (latent = channels x H/s x W/s)
    vae_latent_stride: int = 4  # conv: s, the latent's downsampling (4: two stride-2 stages, 2: one)
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

    def _eps_field(self, norm: str | None) -> str:
        from varmixup_bench.attacks.base import Norm, parse_norm

        return "eps_l2" if parse_norm(norm or self.norm) is Norm.L2 else "eps"

    def eps_for(self, norm: str | None = None, dataset: str | None = None) -> float:
        """The default radius in `norm` (default: this preset's norm): the preset's eps (L-inf) or eps_l2 (L2) when
        it sets one, else the default of `dataset` (default: this preset's) from DATASET_EPS."""
        value = getattr(self, self._eps_field(norm))
        return float(value) if value is not None else dataset_eps(dataset or self.dataset, norm or self.norm)

    def eps_source(self, norm: str | None = None, dataset: str | None = None) -> str:
        """Where eps_for's radius comes from: "dataset default" (DATASET_EPS) or "preset" (the preset, --set,
        --preset-file). A radius equal to the dataset's default (as `for_dataset` fills in) counts as the default,
        unless the registered preset of this name sets its own (the paper preset's 8/255)."""
        name = self._eps_field(norm)
        value = getattr(self, name)
        if value is None:
            return "dataset default"
        registered = PRESETS.get(self.name) if self.name in PRESETS else None
        if registered is not None and getattr(registered, name) is not None:
            return "preset"
        return "dataset default" if float(value) == dataset_eps(dataset or self.dataset, norm or self.norm) else "preset"

    def for_dataset(self, dataset: str) -> "Preset":
        """A copy with radii the preset leaves to the dataset (None) filled in from DATASET_EPS for `dataset`."""
        return replace(self, eps=self.eps_for("Linf", dataset), eps_l2=self.eps_for("L2", dataset))

    def check(self) -> "Preset":
        """Refuse values no run can use (before any data loading or training); returns self."""
        check_preset(self)
        return self

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

# The default radius of each dataset and norm, used when neither the user (--eps) nor the preset gives one. Digits are
# 8x8 images of 17 grey levels (steps of 16/255): at 8/255, half a level, undefended ERM keeps 96 % under PGD-10 and
# looks like the best defense. Measured with the tests' ERM (quick preset, 15 epochs, 360 test images, PGD-10, step
# eps/4), robust accuracy: L-inf 8/255 95.8 %, 16/255 79.2 %, 24/255 46.7 %, 28/255 28.1 %, 32/255 15.0 %, 48/255 0 %;
# L2 0.5 47.5 %, 0.6 25.0 %, 0.7 10.8 %, 1.0 0 %. The default is the smallest round radius below 20 %.
# CIFAR-style data keep RobustBench's 8/255 (L-inf) and 0.5 (L2); "*" is every dataset not listed (image folders,
# plug-in datasets).
DATASET_EPS: dict[str, dict[str, float]] = {
    "digits": {"Linf": 32 / 255, "L2": 0.7},
    "cifar10": {"Linf": 8 / 255, "L2": 0.5},
    "cifar100": {"Linf": 8 / 255, "L2": 0.5},
    "svhn": {"Linf": 8 / 255, "L2": 0.5},
    "tiny-imagenet": {"Linf": 8 / 255, "L2": 0.5},
    "*": {"Linf": 8 / 255, "L2": 0.5},
}


def dataset_eps(dataset: str | None, norm: str | None = None) -> float:
    """The default radius of `dataset` (a name such as digits or imagefolder:PATH) in `norm` (default L-inf)."""
    from varmixup_bench.attacks.base import parse_norm

    name = (dataset or "").strip()
    table = DATASET_EPS.get(name) or DATASET_EPS.get(name.partition(":")[0]) or DATASET_EPS["*"]
    return float(table[parse_norm(norm).value])


def check_preset(p: Preset) -> None:
    """Every preset value in its valid range (a BenchError naming the field otherwise)."""
    from varmixup_bench.attacks.base import parse_norm

    def bad(name: str, value: Any, want: str) -> None:
        raise BenchError(f"preset field {name} must be {want}, got {value!r}")

    for name in ("epochs_default", "batch_size", "n_mi", "train_steps", "trials", "eval_batch_size", "n_adaptive",
                 "apgd_steps", "eot_max_rows", "worst_case_draws", "spsa_iters", "spsa_samples", "vae_latent_dim",
                 "vae_width", "vae_epochs", "vae_batch_size", "vae_adv_steps", "vae_latent_channels"):
        if getattr(p, name) < 1:
            bad(name, getattr(p, name), ">= 1")
    for name in ("forward_rows", "spsa_subset", "corruption_subset", "train_subset", "test_subset", "vae_adv_epochs"):
        value = getattr(p, name)
        if value is not None and value < 1:
            bad(name, value, ">= 1 (or none)")
    for recipe, n in p.epochs.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            bad(f"epochs[{recipe}]", n, "an integer >= 1")
    for name in ("lr", "eta", "spsa_lr", "spsa_delta", "vae_gamma", "vae_lr", "device_data_limit_gb"):
        if not getattr(p, name) > 0:
            bad(name, getattr(p, name), "> 0")
    if p.vae_bandwidth is not None and not p.vae_bandwidth > 0:
        bad("vae_bandwidth", p.vae_bandwidth, "> 0 (or none)")
    for name in ("trades_beta",):
        if getattr(p, name) < 0:
            bad(name, getattr(p, name), ">= 0")
    if p.num_workers < 0:
        bad("num_workers", p.num_workers, ">= 0")
    for recipe, lam in {"lambda_mi_default": p.lambda_mi_default, **{f"lambda_mi[{k}]": v for k, v in
                                                                      p.lambda_mi.items()}}.items():
        if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not 0 <= lam <= 1:
            bad(recipe, lam, "in [0, 1]")
    for name in ("eps", "train_eps", "vae_adv_eps"):
        value = getattr(p, name)
        if value is not None and not 0 <= value <= 1:
            bad(name, value, "in [0, 1] (an L-inf radius on the [0,1] pixel scale; did you mean /255?)")
    if p.eps_l2 is not None and p.eps_l2 < 0:
        bad("eps_l2", p.eps_l2, ">= 0")
    for name in ("step", "train_step", "vae_adv_step"):
        value = getattr(p, name)
        if value is not None and not 0 < value <= 1:
            bad(name, value, "in (0, 1] on the [0,1] pixel scale")
    parse_norm(p.norm)
    from varmixup_bench.defenses.vae import VAES

    if p.vae_latent_stride not in (2, 4):
        bad("vae_latent_stride", p.vae_latent_stride, "2 or 4")
    if p.vae_arch not in VAES.names():
        bad("vae_arch", p.vae_arch, f"one of {', '.join(VAES.names())}")
    from varmixup_bench.training.loop import AUGMENTS, OPTIMIZERS, SCHEDULES

    for name, registry in (("optimizer", OPTIMIZERS), ("lr_schedule", SCHEDULES), ("augment", AUGMENTS)):
        if getattr(p, name) not in registry:
            bad(name, getattr(p, name), f"one of {', '.join(registry)}")
    if not 0 <= p.label_smoothing < 1:
        bad("label_smoothing", p.label_smoothing, "in [0, 1)")
    if p.weight_decay < 0:
        bad("weight_decay", p.weight_decay, ">= 0")


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

CIFAR_REGIME = _add(
    replace(
        CIFAR_CPU_FULL,
        name="cifar-regime",
        description="CIFAR-10 near the paper's regime on a 2-core CPU (issue 30): the airbench-style fast-cnn with "
        "flips, 2-pixel translations, label smoothing 0.2, SGD-Nesterov and a one-cycle schedule shared by every "
        "recipe; a fully convolutional VAE (8x8x16 spatial latent); adversarial training with 2 inner PGD steps",
        model="fast-cnn",
        batch_size=512,
        optimizer="sgd-nesterov",
        lr=0.2,
        weight_decay=5e-4,
        lr_schedule="one-cycle",
        label_smoothing=0.2,
        augment="flip-translate",
        # airbench's published schedule reaches 94 % in about 10 epochs; mixing recipes get half again (mixup
        # converges slower), adversarial ones the same 10 with a 2-step inner attack (fast AT with random start)
        epochs={"erm": 10, "varerm": 10, "mixup": 15, "varmixup": 15, "manifold-mixup": 15,
                "at": 10, "trades": 10, "iat": 10, "variat": 10},
        epochs_default=10,
        train_steps=2,
        train_step=4 / 255,
        vae_arch="conv",
        vae_latent_channels=16,
        vae_width=32,
        vae_epochs=15,
        vae_adv_epochs=5,
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
