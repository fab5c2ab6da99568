"""The defense interface: a training recipe (how F_w is trained) plus an inference rule (how it predicts)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.training.data import Dataset
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry


@dataclass
class TrainContext:
    """What a recipe may need besides the batch: the data, the settings, where to cache, the device."""

    dataset: Dataset
    settings: Any  # varmixup_bench.config.presets.Preset
    workdir: Any
    device: torch.device
    seed: int
    show_progress: bool = True
    extras: dict = field(default_factory=dict)
    # another defense by spec, trained (or loaded) with this context's data, settings, workdir and device: what an
    # attack crafted on another defense (transfer:SPEC) evaluates through, without importing the training code
    defense_provider: Callable[[str], Any] | None = None


class Recipe(ABC):
    """How the base classifier F_w is trained: one loss per batch; the shared trainer does the rest."""

    name: ClassVar[str] = ""

    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def config(self) -> dict:
        """Everything besides the shared optimiser settings that determines the trained weights (hashed)."""
        return {}

    def prepare(self, ctx: TrainContext) -> None:
        """Build what the recipe needs before training (e.g. a VAE); default: nothing."""

    @abstractmethod
    def loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (loss, logits on the batch's own inputs, used for the training accuracy display)."""

    def training_samples(self, x: torch.Tensor, partner: torch.Tensor, lam: torch.Tensor) -> torch.Tensor | None:
        """The inputs this recipe trains F_w on, made from images x, partner images and one lambda per image (B,),
        before the preset's augmentation: what paper Fig. 5 compares with the training images (attack `kid`).
        None (not overridden): a recipe whose inputs need the model (adversarial examples) or that has none."""
        return None


class InferenceRule(ABC):
    """How the defended predictor turns F_w into class probabilities."""

    name: ClassVar[str] = ""
    stochastic: ClassVar[bool] = False

    def __init__(self, settings: Any, recipe: str) -> None:
        self.settings = settings

    def config(self) -> dict:
        return {}

    def setup(self, classifier: nn.Module, ctx: TrainContext) -> None:
        """Precompute what inference needs from the training split or the cache (e.g. the MI pool, a VAE)."""

    @abstractmethod
    def forward(self, classifier: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None,
                n_samples: int | None = None) -> torch.Tensor:
        """Class probabilities (B, K), differentiable w.r.t. x; one draw of any randomness per call.

        n_samples overrides the rule's own number of random draws averaged inside one call (None: the rule's
        default, e.g. N_MI); adaptive attacks use n_samples=1 and average gradients over calls (EOT)."""


    def surrogate(self, classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Logits of a deterministic, differentiable stand-in for the defended predictor (for BPDA-style
        surrogate attacks). A deterministic rule is its own surrogate (log of its probabilities); a randomised
        rule must define one."""
        if self.stochastic:
            from varmixup_bench.core.errors import AttackRefused

            raise AttackRefused(f"inference rule {self.name!r} is randomised and defines no deterministic surrogate "
                                "(InferenceRule.surrogate); surrogate attacks cannot run on it")
        return self.forward(classifier, x).clamp_min(1e-12).log()


# third-party recipes and inference rules both come from the entry-point group `varmixup_bench.defenses`
# the package's own defenses register when a registry is first used (core.registry.Registry.builtins)
_BUILTIN_DEFENSES = tuple(f"varmixup_bench.defenses.{m}" for m in
                          ("adversarial", "erm", "manifold", "mi", "mixup", "plain", "varmi", "varmixup"))
RECIPES: Registry[type[Recipe]] = Registry(
    "recipe", group="varmixup_bench.defenses", accept=lambda o: isinstance(o, type) and issubclass(o, Recipe),
    builtins=_BUILTIN_DEFENSES)
INFERENCE: Registry[type[InferenceRule]] = Registry(
    "inference rule", group="varmixup_bench.defenses",
    accept=lambda o: isinstance(o, type) and issubclass(o, InferenceRule), builtins=_BUILTIN_DEFENSES)


def weights_digest(model: nn.Module) -> str:
    """16 hex digits of the sha256 of a model's state dict (names, dtypes, shapes and values, in name order)."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def check_classifier(classifier: Any, dataset: Any, settings: Any) -> None:
    """What Defense.from_classifier needs, each a BenchError naming what is wrong: a torch module with parameters,
    the package's Dataset and Preset, and a forward of two test images giving (2, number of classes) logits."""
    preset_like = hasattr(settings, "eps_for") and hasattr(settings, "with_overrides")  # config imports defenses
    for what, value, ok, kind in (
            ("classifier", classifier, isinstance(classifier, nn.Module), "torch.nn.Module"),
            ("dataset", dataset, isinstance(dataset, Dataset), "varmixup_bench.training.data.Dataset"),
            ("settings", settings, preset_like, "varmixup_bench.config.presets.Preset")):
        if not ok:
            raise BenchError(f"from_classifier: {what} must be a {kind}, got {type(value).__name__} (a preset by "
                             "name: config.presets.get_preset('quick'))")
    first = next(classifier.parameters(), None)
    if first is None:
        raise BenchError("from_classifier: the classifier has no parameters (its device is read from them)")
    x = dataset.test.x[:2].to(first.device)
    try:
        with torch.no_grad(), eval_mode(classifier):
            out = classifier(x)
    except Exception as exc:  # noqa: BLE001  (any failure of the user's forward is the message)
        raise BenchError(f"from_classifier: the classifier does not take {dataset.name}'s images "
                         f"(a batch of shape {tuple(x.shape)} in [0,1]): {type(exc).__name__}: {exc}") from None
    want = (len(x), dataset.num_classes)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BenchError(f"from_classifier: the classifier must give logits of shape (batch, {dataset.num_classes}) "
                         f"for {dataset.name}'s {dataset.num_classes} classes, got {got} for a batch of {len(x)}")


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[nn.Module | tuple[nn.Module, ...]]:
    """Put the models in eval mode (BatchNorm running stats, no dropout) and restore every submodule's own mode
    afterwards (a network one model holds inside another, or one left half in train mode, comes back as it was);
    yields the model, or the models."""
    modes = [(sub, sub.training) for m in models for sub in m.modules()]
    for m in models:
        m.eval()
    try:
        yield models[0] if len(models) == 1 else models
    finally:
        for sub, mode in modes:
            sub.training = mode


class Defense:
    """A trained defense: F_w (for oblivious attacks), the defended predictor, and a differentiable forward."""

    def __init__(self, spec: str, recipe: Recipe, rule: InferenceRule, classifier: nn.Module, dataset: Dataset, info: dict) -> None:
        self.spec = spec
        self.recipe = recipe
        self.rule = rule
        self.classifier = classifier.eval()
        self.dataset = dataset
        self.info = info  # training key, settings, whether this call trained or loaded from cache

    @classmethod
    def from_classifier(cls, classifier: nn.Module, dataset: Dataset, settings: Any, spec: str = "external",
                        rule: InferenceRule | None = None) -> "Defense":
        """Wrap an already trained classifier ([0,1] images -> logits); plain prediction unless a rule is given.
        Checked on two test images first (it must take the dataset's images and give one logit per class), and
        keyed by its weights (`config_hash` = spec and a digest of the state dict): two models wrapped under one
        spec are two models, never one row or one reused record."""
        check_classifier(classifier, dataset, settings)
        info = {"settings": settings, "trained": False, "config_hash": f"{spec}-{weights_digest(classifier)}",
                "workdir": None, "history": []}
        # by registered name, not by importing defenses.erm / defenses.plain (which import this module)
        return cls(spec, RECIPES.get("erm")(settings), rule or INFERENCE.get("plain")(settings, "erm"), classifier,
                   dataset, info)

    @property
    def stochastic(self) -> bool:
        """Whether the defended predictor is randomised: the rule's declaration, or what verify_randomness measured."""
        measured = getattr(self, "_measured_stochastic", None)
        return bool(self.rule.stochastic or measured)

    def verify_randomness(self, x: torch.Tensor) -> bool:
        """Check empirically whether predictions vary between draws (two generators, two global seeds) before
        an attack picks its threat model: the threat model must not rest on a flag a plug-in author can forget.

        A rule that varies but never declared `stochastic` is treated as randomised; one that explicitly
        declares `stochastic = False` and varies is an error naming the rule."""
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(12345)
            a = self.predict_proba(x, torch.Generator().manual_seed(1))
            torch.manual_seed(54321)
            b = self.predict_proba(x, torch.Generator().manual_seed(2))
        varies = not torch.allclose(a, b, atol=1e-5, rtol=0)
        if varies and not self.rule.stochastic:
            declared_by = next((c for c in type(self.rule).__mro__
                                if "stochastic" in vars(c) and c is not InferenceRule), None)
            if declared_by is not None:
                from varmixup_bench.core.errors import BenchError

                raise BenchError(
                    f"inference rule {self.rule.name or type(self.rule).__name__!r} declares stochastic = False "
                    f"(in {declared_by.__qualname__}) but its predictions differ between two draws "
                    f"(max |Δp| = {float((a - b).abs().max()):.3g}); set stochastic = True")
        self._measured_stochastic = varies
        return self.stochastic

    @property
    def device(self) -> torch.device:
        return next(self.classifier.parameters()).device

    def to(self, device: str | torch.device) -> "Defense":
        self.classifier.to(device)
        return self

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                n_samples: int | None = None) -> torch.Tensor:
        """Differentiable class probabilities of the defended predictor (for adaptive attacks)."""
        return self.rule.forward(self.classifier, x, generator, n_samples)

    def networks(self) -> list[nn.Module]:
        """F_w and every network the inference rule holds (VarMI's VAE): what an evaluation runs in eval mode, so
        that no BatchNorm of the defended predictor uses batch statistics or updates its running ones."""
        return [self.classifier, *(v for v in vars(self.rule).values() if isinstance(v, nn.Module))]

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        with eval_mode(*self.networks()):
            return self.rule.forward(self.classifier, x, generator)

    def predict(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Labels of the defended predictor."""
        return self.predict_proba(x, generator).argmax(dim=1)


def softmax_probs(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits, dim=1)


# rows per call of rows_in_chunks on a CPU. Measured on the 2-core machine (small CNN on CIFAR-10, n_mi = 30, 256
# images): VarMI's prediction took 48.8 s per 1,000 images in one call, 39.2 / 31.0 / 26.3 s in calls of 1,024 /
# 512 / 256 rows; MI's 22.4 s against 12.6 / 12.9 / 13.4 s (single runs, noisy; `bench perf --only
# varmi_inference_cifar`, median of 5: 0.82 of one call). A GPU wants one large call.
CPU_CHUNK_ROWS = 256


def chunk_rows(settings: Any, device: torch.device) -> int | None:
    """Rows per model call inside a randomised rule: the preset's `forward_rows`, else CPU_CHUNK_ROWS on a CPU and
    unchunked (None) elsewhere."""
    rows = settings.forward_rows
    if rows is not None:
        return int(rows)
    return CPU_CHUNK_ROWS if device.type == "cpu" else None


def rows_in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor, max_rows: int | None) -> torch.Tensor:
    """fn(rows) computed max_rows rows at a time (a row-wise fn, so the result is the same; autograd flows through
    every chunk): many rows in one call are slower than cache-sized calls on a CPU."""
    if max_rows is None or len(rows) <= max_rows:
        return fn(rows)
    return torch.cat([fn(part) for part in rows.split(max_rows)])
