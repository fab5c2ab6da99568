"""Every default of the harness lives here, grouped in named presets; CLI options override preset values."""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any, Callable, Iterable

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry


@dataclass(frozen=True)
class Range:
    """The valid range of a numeric preset field: lo/hi bounds (None: unbounded), open or closed."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""  # appended to the message (e.g. the [0,1] pixel scale)

    def ok(self, value: Any) -> bool:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        return not (self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi))

    def text(self) -> str:
        if self.hi is None:
            want = f"{'>' if self.lo_open else '>='} {self.lo:g}"
        else:
            want = f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        return f"{want} {self.note}".strip()


_GE1, _GE0, _GT0 = Range(1), Range(0), Range(0, lo_open=True)
_GE2 = Range(2)
_UNIT = Range(0, 1)
_RADIUS = Range(0, 1, note="(an L-inf radius on the [0,1] pixel scale; did you mean /255?)")
_STEP = Range(0, 1, lo_open=True, note="on the [0,1] pixel scale")


def _f(default: Any, help: str, range: Range | None = None, group: str = "", *, option: str | None = None,
       choices: Callable[[], Iterable[Any]] | None = None, factory: Callable[[], Any] | None = None,
       integer: bool = False) -> Any:
    """A Preset field with its metadata: help text, valid range (or choices), group, and the `bench run` option
    that aliases it; check_preset and the CLI's help read them from here."""
    meta = {"help": help, "range": range, "group": group, "option": option, "choices": choices,
            "integer": integer}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _loop_names(registry: str) -> Iterable[str]:
    from varmixup_bench.training import loop

    return list(getattr(loop, registry))


def _init_names() -> Iterable[str]:
    from varmixup_bench.training.init import INITS

    return INITS.names()


def _vae_names() -> Iterable[str]:
    from varmixup_bench.defenses.vae import VAES

    return VAES.names()


@dataclass(frozen=True)
class Preset:
    """Defaults for one way of running the benchmark (data, model, training and evaluation)."""

    name: str = _f(MISSING, "the preset's name (a preset file's stem)", group="identity")
    description: str = _f(MISSING, "what the preset is for", group="identity")
    dataset: str = _f("digits", "dataset name", group="data", option="--dataset")
    model: str = _f("small-cnn", "classifier architecture", group="model", option="--model")
    # training: epochs per recipe (recipes not listed use `epochs_default`)
    epochs: dict[str, int] = _f(None, "training epochs per recipe (recipes not listed use epochs_default)",
                                _GE1, "training", factory=dict, integer=True)
    epochs_default: int = _f(30, "training epochs of recipes not listed in epochs", _GE1, "training")
    batch_size: int = _f(128, "training batch size", _GE1, "training", option="--batch-size")
    lr: float = _f(1e-3, "learning rate", _GT0, "training")
    optimizer: str = _f("adam", "adam | sgd | sgd-nesterov (training.loop OPTIMIZERS)", group="training",
                        choices=lambda: _loop_names("OPTIMIZERS"))
    weight_decay: float = _f(0.0, "weight decay", _GE0, "training")
    lr_schedule: str = _f("constant", "constant | one-cycle (linear warm-up over the first quarter, then down to 0)",
                          group="training", choices=lambda: _loop_names("SCHEDULES"))
    label_smoothing: float = _f(0.0, "label smoothing of every recipe's cross-entropy (clean, mixed, adversarial)",
                                Range(0, 1, hi_open=True), "training")
    init: str = _f("default", "default | whiten (the stem convolution set to whitening filters of 2x2 training patches "
                   "and frozen: the fast-CIFAR initialisation)", group="training", choices=lambda: _init_names())
    augment: str = _f("none", "none | flip-translate (random horizontal flip, one shift of up to 2 pixels per batch) | "
                      "flip-crop (flip, and a shift of up to 2 pixels drawn per image)",
                      group="training", choices=lambda: _loop_names("AUGMENTS"))
    eta: float = _f(1.0, "mixup lambda ~ Beta(eta, eta)", _GT0, "mixup", option="--eta")
    # inference rules: lambda_mi per recipe (recipes not listed use `lambda_mi_default`)
    lambda_mi: dict[str, float] = _f(None, "MI mixing coefficient lambda_MI per recipe", _UNIT, "mixup",
                                     factory=dict)
    lambda_mi_default: float = _f(0.5, "MI mixing coefficient lambda_MI (recipes not listed in lambda_mi)", _UNIT,
                                  "mixup", option="--lambda-mi")
    n_mi: int = _f(30, "MI samples N_MI", _GE1, "mixup", option="--n-mi")
    # adversarial training (at, trades, iat, variat): the inner L-inf attack on the [0,1] scale
    train_eps: float = _f(8 / 255, "adversarial training radius ([0,1] scale)", _RADIUS, "adversarial training",
                          option="--train-eps")
    train_step: float = _f(2 / 255, "adversarial training PGD step", _STEP, "adversarial training",
                           option="--train-step")
    train_steps: int = _f(10, "adversarial training PGD steps", _GE1, "adversarial training", option="--train-steps")
    trades_beta: float = _f(6.0, "TRADES beta", _GE0, "adversarial training", option="--trades-beta")
    # hardware
    amp: bool = _f(False, "bf16 autocast while training (CPU and CUDA)", group="hardware", option="--amp")
    channels_last: bool = _f(False, "convolution weights (classifier and VAE) in channels-last memory order (a speed "
                             "choice, not in any key: measured 1.3-1.6x for fast-cnn training and 1.4-2x for conv VAE "
                             "inference on this 2-core CPU)", group="hardware")
    num_workers: int = _f(2, "DataLoader workers when the training set does not fit on the device", _GE0, "hardware")
    device_data_limit_gb: float = _f(4.0, "training sets up to this size (GB) are kept on the device", _GT0,
                                     "hardware")
    # evaluation
    norm: str = _f("Linf", "threat model of eps attacks: Linf | L2", group="evaluation", option="--norm",
                   choices=lambda: ("Linf", "L2", "linf", "l2"))
    # radii; None = the dataset's default (DATASET_EPS below: 32/255 and L2 0.7 on digits, 8/255 and 0.5 elsewhere)
    eps: float | None = _f(None, "L-inf radius ([0,1] scale; none: the dataset's default)", _RADIUS, "evaluation",
                           option="--eps")
    eps_l2: float | None = _f(None, "L2 radius, used with norm L2 (none: the dataset's default)", _GE0, "evaluation",
                              option="--eps")
    step: float | None = _f(None, "PGD step size (none: eps/4 at every eps and norm, 2/255 at 8/255)", _STEP,
                            "evaluation", option="--step")
    trials: int = _f(1, "evaluation trials with new seeds; mean ± std recorded", _GE1, "evaluation", option="--trials")
    eval_batch_size: int = _f(256, "evaluation batch size", _GE1, "evaluation", option="--eval-batch-size")
    n_adaptive: int = _f(30, "N_A: EOT draws per adaptive-PGD step", _GE1, "evaluation", option="--n-adaptive")
    apgd_steps: int = _f(100, "iterations of each APGD run (CE, then DLR) of adaptive-apgd (AutoAttack's 100)", _GE1,
                         "evaluation")
    eot_max_rows: int = _f(4096, "batched EOT: at most this many inputs (B x draws) per forward/backward", _GE1,
                           "evaluation")
    # rows per model call inside a randomised rule (n_mi x B mixes, or B x N_A EOT rows); None: 256 on a CPU,
    # where cache-sized calls are up to twice as fast as one large call (defenses.base.CPU_CHUNK_ROWS), one call
    # elsewhere
    forward_rows: int | None = _f(None, "rows per model call inside a randomised rule (none: 256 on a CPU, one call "
                                  "elsewhere)", _GE1, "evaluation")
    worst_case_draws: int = _f(10, "R: draws classifying each adversarial example of a randomised defense", _GE1,
                               "evaluation")
    spsa_iters: int = _f(100, "SPSA iterations", _GE1, "spsa")
    spsa_samples: int = _f(128, "SPSA samples per iteration", _GE1, "spsa")
    spsa_lr: float = _f(0.01, "SPSA learning rate", _GT0, "spsa")
    spsa_delta: float = _f(0.01, "SPSA perturbation size", _GT0, "spsa")
    spsa_subset: int | None = _f(None, "stratified N test images for SPSA (the paper uses 1000)", _GE1, "spsa")
    # paper Fig. 5 as attack `kid`: KID between training images and a recipe's training samples
    kid_samples: int = _f(1000, "kid: training samples (and as many training images) compared", _GE2, "kid")
    kid_features: str = _f("erm", "kid: the defense whose F_w embeds the images (penultimate layer; trained with the "
                           "same data, preset and seed; no Inception weights offline)", group="kid")
    corruptions_dir: str | None = _f(None, "official CIFAR-10-C style .npy folder (none: generated)",
                                     group="corruptions")
    corruption_subset: int | None = _f(None, "stratified N test images for corruptions (none: all)", _GE1,
                                       "corruptions")
    seed: int = _f(0, "seed for training and evaluation", _GE0, "data", option="--seed")
    train_subset: int | None = _f(None, "stratified, seeded training subset", _GE1, "data", option="--train-subset")
    test_subset: int | None = _f(None, "stratified, seeded test subset", _GE1, "data", option="--test-subset")
    # the seed of every stratified subset (train, test, SPSA, corruptions): fixed, so that several training seeds
    # are trained on the same examples and evaluated on the same images (paired comparisons across seeds)
    subset_seed: int = _f(0, "the seed of every stratified subset (train, test, SPSA, corruptions)", _GE0, "data")
    # MMD-VAE of the Var* defenses (paper eq. 11); bandwidth None = 2 * latent_dim (see defenses/latent.py)
    vae_arch: str = _f("flat", "the VAE architecture (defenses/vae.py VAES): flat | conv", group="vae",
                       choices=lambda: _vae_names())
    vae_latent_dim: int = _f(32, "MMD-VAE latent dimension (flat)", _GE1, "vae", option="--latent-dim")
    vae_latent_channels: int = _f(16, "conv VAE: the spatial latent's channels", _GE1, "vae")
    vae_latent_stride: int = _f(4, "conv VAE: the latent's downsampling (4: two stride-2 stages, 2: one)",
                                group="vae", choices=lambda: (2, 4))
    vae_width: int = _f(32, "VAE width", _GE1, "vae")
    vae_gamma: float = _f(1.0, "weight gamma of the MMD term", _GT0, "vae", option="--vae-gamma")
    vae_bandwidth: float | None = _f(None, "Gaussian kernel bandwidth (none: 2*latent dim)", _GT0, "vae",
                                     option="--vae-bandwidth")
    vae_epochs: int = _f(30, "MMD-VAE training epochs", _GE1, "vae", option="--vae-epochs")
    vae_batch_size: int = _f(128, "MMD-VAE batch size", _GE1, "vae")
    vae_lr: float = _f(1e-3, "MMD-VAE learning rate", _GT0, "vae")
    vae_from: str | None = _f(None, "use a VAE trained on this dataset (Table 3)", group="vae", option="--vae-from")
    vae_seed: int | None = _f(None, "MMD-VAE seed (none: the training seed); set, one VAE serves several training "
                              "seeds, whose spread is then the classifier's alone", _GE0, "vae")
    # adversarial VAE (`adv-` prefix): PGD on the reconstruction error within vae_adv_eps
    vae_adv_eps: float = _f(8 / 255, "adversarial VAE: PGD radius on the reconstruction error", _RADIUS, "vae")
    vae_adv_step: float = _f(2 / 255, "adversarial VAE: PGD step", _STEP, "vae")
    vae_adv_steps: int = _f(5, "adversarial VAE: PGD steps", _GE1, "vae")
    vae_adv_epochs: int | None = _f(None, "adversarial VAE epochs (none: vae_epochs)", _GE1, "vae")
    # RobustBench model zoo (`robustbench:NAME` defenses): checkpoints as robustbench lays them out
    zoo_model_dir: str | None = _f(None, "robustbench:NAME checkpoints, laid out DATASET/THREAT/NAME.pt (none: "
                                   "<workdir>/robustbench-models)", group="zoo", option="--model-dir")
    zoo_threat_model: str = _f("Linf", "robustbench:NAME zoo section: Linf | L2 | corruptions", group="zoo",
                               option="--zoo-threat-model")
    zoo_dataset: str | None = _f(None, "robustbench:NAME zoo dataset: cifar10 | cifar100 | imagenet (none: inferred)",
                                 group="zoo", option="--zoo-dataset")

    def epochs_for(self, recipe: str) -> int:
        """Epochs for a recipe; `adv-X` trains its classifier like `X` (only its VAE differs)."""
        return self.epochs.get(recipe, self.epochs.get(recipe.removeprefix("adv-"), self.epochs_default))

    def _eps_field(self, norm: str | None) -> str:
        from varmixup_bench.core.norms import Norm, parse_norm

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


PRESET_FIELDS = {f.name: f for f in fields(Preset)}
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
    from varmixup_bench.core.norms import parse_norm

    name = (dataset or "").strip()
    table = DATASET_EPS.get(name) or DATASET_EPS.get(name.partition(":")[0]) or DATASET_EPS["*"]
    return float(table[parse_norm(norm).value])


def field_meta(name: str) -> dict:
    """A Preset field's metadata: help, range, group, option, choices."""
    return PRESET_FIELDS[name].metadata


def field_help(name: str) -> str:
    """The help text of a Preset field with its valid range, as `bench run`'s option aliasing it shows."""
    meta = field_meta(name)
    rng = meta["range"]
    return meta["help"] + (f" [{rng.text().split(' (')[0]}]" if rng is not None else "")


def option_fields() -> dict[str, str]:
    """{Preset field: the `bench run` option that aliases it}."""
    return {f.name: f.metadata["option"] for f in fields(Preset) if f.metadata.get("option")}


def check_preset(p: Preset) -> None:
    """Every preset value in its valid range, from each field's metadata (range, choices): the one check of
    preset values, whether they come from a preset, --set, --preset-file or a dedicated option. A bad value is a
    BenchError naming the field and the option that sets it."""
    from varmixup_bench.core.norms import parse_norm

    def bad(name: str, value: Any, want: str, option: str | None) -> None:
        where = f" (option {option})" if option else ""
        raise BenchError(f"preset field {name} must be {want}, got {value!r}{where}")

    for f in fields(Preset):
        meta, value = f.metadata, getattr(p, f.name)
        rng, choices, option = meta.get("range"), meta.get("choices"), meta.get("option")
        if value is None:
            continue  # None is allowed where the type allows it (coerce checks that)
        if isinstance(value, dict):  # per recipe (epochs, lambda_mi); its keys: runner.check_recipe_tables
            for key, item in value.items():
                if meta.get("integer") and (not isinstance(item, int) or isinstance(item, bool)):
                    bad(f"{f.name}[{key}]", item, f"an integer {rng.text()}", option)
                if rng is not None and not rng.ok(item):
                    bad(f"{f.name}[{key}]", item, ("an integer " if meta.get("integer") else "") + rng.text(), option)
            continue
        if rng is not None and not rng.ok(value):
            nullable = f.default is None and not rng.note
            bad(f.name, value, rng.text() + (" (or none)" if nullable else ""), option)
        if choices is not None and value not in list(choices()):
            options = list(choices())
            want = " or ".join(map(str, options)) if len(options) == 2 else f"one of {', '.join(map(str, options))}"
            bad(f.name, value, want, option)
    parse_norm(p.norm)


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
        description="CIFAR-10 near the paper's regime on a 2-core CPU (issue 30): the airbench-style fast-cnn at half "
        "width with whitened stem, flips, per-image 2-pixel crops, label smoothing 0.2, SGD-Nesterov and a one-cycle "
        "schedule shared by every recipe; a fully convolutional VAE (16x16x8 spatial latent); adversarial training "
        "with 2 inner PGD steps from a random start",
        model="fast-cnn-half",
        batch_size=256,
        optimizer="sgd-nesterov",
        lr=0.1,
        weight_decay=5e-4,
        lr_schedule="one-cycle",
        label_smoothing=0.2,
        augment="flip-crop",
        init="whiten",
        channels_last=True,
        # sized by a probe on an H200 (leaderboards/regime-gpu/README.md, 10,000 test images): ERM reaches 87.6 % at
        # 16 epochs and 88.2 % at 24 (fast-cnn at full width: 87.9 % at 8); Mixup 87.0 % at 24; AT 70.2 % clean /
        # 38.8 % PGD-10 at 10 epochs (full width, 8 epochs: 73.0 / 41.1). Measured here (2 threads, all 50,000
        # images): ERM 63-97 s per epoch, 16 epochs and both evaluations 1,010 s, 85.4 % [83.1, 87.5] clean on
        # the 1,000 test images; the VAE about 200 s per epoch (10 epochs about 35 minutes)
        epochs={"erm": 16, "varerm": 16, "mixup": 24, "varmixup": 24, "manifold-mixup": 24,
                "at": 10, "trades": 10, "iat": 10, "variat": 10},
        epochs_default=16,
        train_steps=2,
        train_step=4 / 255,
        vae_arch="conv",
        vae_latent_channels=8,
        vae_latent_stride=2,
        vae_width=32,
        # the probe: 33.9 dB test PSNR after 10 epochs (28.0 after 1, 36.4 after 20); stride 4 with 16 channels 30.7
        # after 15, with 4 channels 26.2 after 20; the flat latent-64 VAE 21.0 after 20
        vae_epochs=10,
        # the adversarial VAE as adversarial training here: 2 PGD steps of 4/255 from a random start (5 epochs)
        vae_adv_epochs=5,
        vae_adv_steps=2,
        vae_adv_step=4 / 255,
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


# A rehearsal of a campaign plan (`bench campaign rehearse`): every budget at a toy size, so that the whole plan
# (every pass, step and claim) runs end to end in minutes before its hours are spent; these keys win over every
# `set` of the plan (campaign, pass, step) unless the plan's own number is smaller (under_budgets). The numbers it
# makes mean nothing.
REHEARSAL: dict[str, Any] = {
    "epochs": {}, "epochs_default": 1, "vae_epochs": 1, "vae_adv_epochs": 1,  # every model and VAE: one epoch
    "train_subset": 1000, "test_subset": 40, "trials": 1,  # stratified, as every subset
    "n_mi": 4, "n_adaptive": 3, "apgd_steps": 5, "worst_case_draws": 2,
    "spsa_iters": 3, "spsa_samples": 16, "spsa_subset": 20, "corruption_subset": 20, "kid_samples": 100,
}
# a stratified subset needs at least one image per class: a rehearsal's subsets per class, at least
REHEARSAL_PER_CLASS = {"train_subset": 5, "test_subset": 2, "spsa_subset": 1, "corruption_subset": 1}


def under_budgets(overrides: dict[str, Any], budgets: dict[str, Any]) -> dict[str, Any]:
    """`overrides` with every key of `budgets` at the budget's value, or at the overrides' own number where that is
    smaller (a plan's worst_case_draws = 1 under a rehearsal's 2 stays 1): the toy run keeps the plan's cheaper
    choices and so its code paths."""
    out = dict(overrides)
    for key, budget in budgets.items():
        own = overrides.get(key)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (own, budget))
        out[key] = min(own, budget) if numbers else budget
    return out


def rehearsal_budgets(classes: int) -> dict[str, Any]:
    """REHEARSAL for a dataset of `classes` classes: each stratified subset at least REHEARSAL_PER_CLASS per class
    (CIFAR-100's 100 classes: 200 test images, not 40)."""
    return {**REHEARSAL, **{k: max(REHEARSAL[k], per * classes) for k, per in REHEARSAL_PER_CLASS.items()}}


def get_preset(name: str | None) -> Preset:
    return PRESETS.get(name or DEFAULT_PRESET)
