"""The attack catalogs of torchattacks and ART by name: `torchattacks:NAME(key=value,…)`, `art:NAME(…)` and
`adaptive:LIB:NAME(…)`, run through the harness's evaluation (ranges, eps-ball check, threat model, trials,
intervals, records) without a plug-in.

Each class gets a kind from what it uses: `gradient` attacks differentiate F_w (white-box for deterministic
defenses, oblivious for randomised rules) or, with `adaptive:`, the whole defended predictor with EOT over
`eot` draws; `score` and `decision` attacks query the defended predictor (no gradient can flow) and are
black-box. The harness's eps / step / norm fill the class's own keywords (`eps`, `alpha` / `eps_step`,
`norm`) unless the spec sets them; attacks without a radius (CW, DeepFool, HopSkipJump, …) are projected onto
the eps-ball, so their accuracy is the accuracy at eps.
"""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn

from varmixup_bench.attacks.base import Attack, Norm, ThreatModel
from varmixup_bench.attacks.spec import FAMILIES
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import close_names

KINDS = ("gradient", "score", "decision", "noise")


@dataclass(frozen=True)
class CatalogEntry:
    """One class of an attack library as the harness sees it."""

    library: str
    name: str
    cls: type
    kind: str  # gradient | score | decision | noise (queries nothing)
    norms: tuple[str, ...]  # the distances it implements ("Linf", "L2", "L1", "L0"); () when not stated
    keywords: dict[str, Any]  # keyword -> default (inspect.Parameter.empty when required)
    refused: str | None = None  # why it cannot run on an image classifier here (None: it can)

    @property
    def takes_norm(self) -> bool:
        return "norm" in self.keywords


# ---- torchattacks ----

_TA_SKIP = {"Attack", "MultiAttack", "LGV"}  # the base class and wrappers of other attacks
_TA_KIND = {"Square": "score", "SPSA": "score", "OnePixel": "score", "Pixle": "score", "GN": "noise",
            "VANILA": "noise"}
_TA_REFUSED = {"LGV": "needs a training loader to fine-tune surrogate models",
               "MultiAttack": "combines other attack objects; give the attacks one by one"}


def _docstring_norms(doc: str) -> tuple[str, ...]:
    """torchattacks' `Distance Measure : Linf, L2` line as a tuple of norms."""
    m = re.search(r"Distance Measure\s*:\s*([^\n]*)", doc or "")
    return tuple(re.findall(r"L(?:inf|\d)", m.group(1))) if m else ()


def _keywords(cls: type, skip: tuple[str, ...]) -> dict[str, Any]:
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in list(params.items())[1:] if k not in skip
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


@lru_cache(maxsize=1)
def torchattacks_catalog() -> dict[str, CatalogEntry]:
    import torchattacks
    from torchattacks.attack import Attack as TAAttack

    out = {}
    for name in sorted(dir(torchattacks)):
        cls = getattr(torchattacks, name)
        if not (inspect.isclass(cls) and issubclass(cls, TAAttack)) or name == "Attack":
            continue
        out[name] = CatalogEntry("torchattacks", name, cls, _TA_KIND.get(name, "gradient"),
                                 _docstring_norms(cls.__doc__), _keywords(cls, ("model", "attacks")),
                                 _TA_REFUSED.get(name))
    return out


# ---- ART ----

_ART_IMAGE_MIXINS = {"BaseEstimator", "LossGradientsMixin", "ClassGradientsMixin", "ClassifierMixin",
                     "NeuralNetworkMixin"}
_ART_GRADIENT_MIXINS = {"LossGradientsMixin", "ClassGradientsMixin"}
_ART_DECISION = {"HopSkipJump", "BoundaryAttack", "GeoDA", "SignOPTAttack"}  # the predicted label only
# gradient attacks whose requirements do not say so: they run gradient attacks inside
_ART_GRADIENT = {"AutoAttack", "UniversalPerturbation", "TargetedUniversalPerturbation", "FeatureAdversariesPyTorch",
                 "FeatureAdversariesNumpy", "GRAPHITEWhiteboxPyTorch"}
_ART_NORMS = {"BasicIterativeMethod": ("Linf",), "CarliniL2Method": ("L2",), "CarliniLInfMethod": ("Linf",),
              "CarliniL0Method": ("L0",), "DeepFool": ("L2",), "ElasticNet": ("L1", "L2"), "NewtonFool": ("L2",),
              "SaliencyMapMethod": ("L0",), "PixelAttack": ("L0",), "ThresholdAttack": ("Linf",),
              "BoundaryAttack": ("L2",), "SignOPTAttack": ("L2",), "ZooAttack": ("L2",), "SimBA": ("L2",)}
_ART_PATCH = "makes an adversarial patch, not per-image adversarial examples"
_ART_REFUSED_NAMES = {"AdversarialPatch": _ART_PATCH, "AdversarialPatchNumpy": _ART_PATCH,
                      "AdversarialPatchPyTorch": _ART_PATCH, "DPatch": _ART_PATCH, "RobustDPatch": _ART_PATCH,
                      "AdversarialTexturePyTorch": _ART_PATCH, "FrameSaliencyAttack": "attacks video frames",
                      "OverTheAirFlickeringPyTorch": "attacks video classifiers",
                      "LaserAttack": "needs a laser-beam image generator",
                      "FeatureAdversariesNumpy": "needs a guide image per input",
                      "FeatureAdversariesPyTorch": "needs a guide image per input",
                      "GRAPHITEBlackbox": "needs a target image and mask per input",
                      "GRAPHITEWhiteboxPyTorch": "needs a target image and mask per input",
                      "CompositeAdversarialAttackPyTorch": "attacks hue/saturation/rotation, not an eps-ball",
                      "ShadowAttack": "needs a single target image",
                      "LowProFool": "attacks tabular data (feature importances)",
                      "Wasserstein": "needs a Wasserstein ball, not an L-p eps-ball"}


def _art_refusal(name: str, requirements: set[str]) -> str | None:
    if name in _ART_REFUSED_NAMES:
        return _ART_REFUSED_NAMES[name]
    if "TensorFlow" in name:
        return "needs a TensorFlow model"
    other = requirements - _ART_IMAGE_MIXINS
    if other or not requirements:
        what = ", ".join(sorted(other)) or "an object-detection or speech estimator"
        return f"needs {what}, not an image classifier"
    return None


@lru_cache(maxsize=1)
def art_catalog() -> dict[str, CatalogEntry]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import art.attacks.evasion as evasion
        from art.attacks.attack import EvasionAttack

    out = {}
    for name in sorted(dir(evasion)):
        cls = getattr(evasion, name)
        if not (inspect.isclass(cls) and issubclass(cls, EvasionAttack)) or cls is EvasionAttack:
            continue
        reqs = {getattr(r, "__name__", str(r)) for r in (cls._estimator_requirements or ())}
        if reqs & _ART_GRADIENT_MIXINS or name in _ART_GRADIENT:
            kind = "gradient"
        else:
            kind = "decision" if name in _ART_DECISION else "score"
        keywords = _keywords(cls, ("classifier", "estimator"))
        norms = ("Linf", "L2", "L1") if "norm" in keywords else _ART_NORMS.get(name, ())
        out[name] = CatalogEntry("art", name, cls, kind, norms, keywords, _art_refusal(name, reqs))
    return out


CATALOGS: dict[str, Callable[[], dict[str, CatalogEntry]]] = {"torchattacks": torchattacks_catalog,
                                                             "art": art_catalog}


def lookup(library: str, name: str) -> CatalogEntry:
    """The catalog entry LIBRARY:NAME; an unknown class is a BenchError with the closest names."""
    catalog = CATALOGS[library]()
    if name in catalog:
        return catalog[name]
    by_lower = {k.lower(): k for k in catalog}
    if name.lower() in by_lower:
        return catalog[by_lower[name.lower()]]
    close = close_names(name, catalog, n=3, cutoff=0.4)
    hint = f"; did you mean {' or '.join(f'{library}:{c}' for c in close)}?" if close else ""
    raise BenchError(f"{library} has no attack class {name!r}{hint} (bench list attacks --all lists them)")


# ---- the models an attack sees ----

class QueryOnly(nn.Module):
    """The defended predictor as score/decision attacks see it: log-probabilities of each query (fresh draws of
    a randomised rule's randomness every call), computed without a graph, so no gradient can reach the input or
    the weights."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.stochastic = getattr(model, "stochastic", False)
        self.queries = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.queries += len(x)
        with torch.no_grad():
            return self.inner(x.detach()).detach()


class _Probabilities(nn.Module):
    """Score attacks of ART (SimBA, ZOO, …) want probabilities, not logits: softmax of the queried model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(dim=1)


class _AsFloat32(nn.Module):
    """Some ART attacks (HopSkipJump, Boundary) query with float64 arrays; the model takes float32."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.float())


def _art_classifier(model: nn.Module, x: torch.Tensor, num_classes: int):
    """`model` wrapped once as ART's PyTorchClassifier on [0,1] images (clip_values=(0, 1)); preprocessing (0, 1)
    is the identity that also casts the float64 queries of HopSkipJump & co. to float32."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(model=_AsFloat32(model), loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                             nb_classes=num_classes, clip_values=(0.0, 1.0), preprocessing=(0.0, 1.0),
                             device_type="gpu" if x.device.type == "cuda" else "cpu")


class CatalogAttack(Attack):
    """One class of a library catalog, configured by the spec's keywords; see the module docstring."""

    entry: CatalogEntry
    user_kwargs: dict[str, Any] = {}
    adaptive_eot: int | None = None  # set by `adaptive:`: EOT draws per forward of the defended predictor
    norms = (Norm.LINF, Norm.L2)

    @classmethod
    def parameters(cls) -> dict[str, tuple[type, Any]]:
        """The library class's own keywords (their values are checked by the library)."""
        return {k: (object, None) for k in cls.entry.keywords}

    def set_params(self, params: dict[str, Any]) -> None:
        self.user_kwargs = dict(params)  # passed to the library class, which checks their values

    def __init__(self, eps: float, step: float | None = None, settings: Any = None, *, norm=None,
                 **params: Any) -> None:
        super().__init__(eps, step, settings, norm=norm, **params)
        e = self.entry
        if e.norms and self.norm.value not in e.norms and not self.projected:
            raise BenchError(f"{self.name} is a {'/'.join(e.norms)} attack; it has no {self.norm.value} version "
                             f"(choose another class or --norm {e.norms[0].lower()})")
        self._wrapped: dict[int, Any] = {}

    @property
    def projected(self) -> bool:
        """Whether the attack has no radius of its own: its examples are projected onto the eps-ball."""
        return not any(k in self.entry.keywords for k in ("eps", "max_epsilon")) and "eps" not in self.user_kwargs

    def kwargs(self) -> dict[str, Any]:
        """The library constructor's keywords: the harness's eps / step / norm where the class takes them,
        then the spec's own keywords (which win)."""
        kw = self.entry.keywords
        out: dict[str, Any] = {}
        if "eps" in kw:
            out["eps"] = self.eps
        if "max_epsilon" in kw:
            out["max_epsilon"] = self.eps
        if self.step is not None:
            for key in ("alpha", "eps_step"):
                if key in kw:
                    out[key] = self.step
        if "norm" in kw:
            if self.entry.library == "art":
                out["norm"] = np.inf if self.norm is Norm.LINF else 2
            else:
                out["norm"] = self.norm.value
        if "verbose" in kw:
            out["verbose"] = False
        if "targeted" in kw:
            out["targeted"] = False  # the evaluation is untargeted (SignOPT defaults to targeted)
        out.update(self.user_kwargs)
        return out

    def config(self) -> dict:
        from importlib.metadata import version

        kw = {k: (v if isinstance(v, (int, str, bool)) or v is None or (isinstance(v, float) and np.isfinite(v))
                  else str(v)) for k, v in sorted(self.kwargs().items())}  # ART's norm=inf as "inf": JSON-safe
        return {"eps": self.eps, "norm": self.norm.value, "step": self.step, "library": self.entry.library,
                "version": version("adversarial-robustness-toolbox" if self.entry.library == "art" else "torchattacks"),
                "class": self.entry.name, "kind": self.entry.kind, "kwargs": kw, "projected": self.projected,
                **({"eot": self.adaptive_eot} if self.adaptive_eot else {})}

    def threat_model(self, stochastic_defense: bool) -> ThreatModel:
        if self.entry.kind != "gradient":
            return ThreatModel.BLACK_BOX
        if self.adaptive_eot:
            return ThreatModel.ADAPTIVE
        return ThreatModel.OBLIVIOUS if stochastic_defense else ThreatModel.WHITE_BOX

    def attacked_model(self, defense, generator: torch.Generator) -> nn.Module | None:
        from varmixup_bench.attacks.evaluation import DefendedModel

        if self.entry.kind != "gradient":  # score / decision / noise: the deployed predictor, queries only
            return QueryOnly(DefendedModel(defense, generator, n_samples=None))
        if self.adaptive_eot:  # EOT: each forward averages the predictive distribution over `eot` draws
            return DefendedModel(defense, generator, n_samples=self.adaptive_eot if defense.stochastic else 1)
        return None  # F_w, as the threat model says

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, targets: torch.Tensor | None = None):
        if self.eps == 0:
            return x.clone()
        try:
            adv = self._run(model, x, y)
        except BenchError:
            raise
        except Exception as exc:  # a library failure is one clear line, not a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"{self.spec} failed inside {self.entry.library}: {type(exc).__name__}: {first}") from exc
        adv = adv.to(x.device, x.dtype).clamp(0, 1)
        if self.projected:
            adv = self.norm.project(x, adv, self.eps)
        return adv.detach()

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.entry.library == "torchattacks":
            kwargs = self.kwargs()
            if "seed" not in self.entry.keywords:  # draws from the trial's stream, like the built-in attacks
                return self.entry.cls(model, **kwargs)(x, y)
            # APGD, FAB, Square reseed the global generator with their `seed`: a seed from the trial's stream (so
            # batches and trials differ), and the stream itself left as it was
            kwargs.setdefault("seed", int(torch.randint(0, 2**31 - 1, (1,))))
            with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
                return self.entry.cls(model, **kwargs)(x, y)
        key = id(model)
        if key not in self._wrapped:  # F_w (or the defended predictor) wrapped once per attacked model
            with torch.no_grad():
                num_classes = int(model(x[:1]).shape[1])
            queried = model if self.entry.kind == "gradient" else _Probabilities(model)
            self._wrapped = {key: (_art_classifier(queried, x, num_classes), model)}
        clf = self._wrapped[key][0]
        attack = self.entry.cls(clf, **self.kwargs())
        num_classes = clf.nb_classes
        labels = np.eye(num_classes, dtype=np.float32)[y.detach().cpu().numpy()]  # one-hot: every ART attack takes it
        adv = attack.generate(x=x.detach().cpu().numpy().astype(np.float32), y=labels)
        return torch.as_tensor(np.asarray(adv), dtype=x.dtype)

    def candidates(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   targets: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """The attack's output and the unperturbed input (also in the ball): per image the evaluation keeps the
        one classified correctly least often, so a library attack that returns a worse point than x for an
        already misclassified image (HopSkipJump started from it, a projected minimal-norm example) never
        makes robust accuracy exceed clean accuracy."""
        yield self.perturb(model, x, y, targets)
        yield x.detach().clone()


# the catalog's kinds (what a library class uses) as attack kinds (attacks.base.ATTACK_KINDS)
_KINDS = {"gradient": "gradient", "score": "black-box", "decision": "black-box", "noise": "corruption"}


def _catalog_attack(library: str, rest: str, args: dict, eot: int | None = None) -> type[Attack]:
    entry = lookup(library, rest)
    if entry.refused:
        raise BenchError(f"{library}:{entry.name} cannot run here: it {entry.refused}")
    cls_name = f"{library}:{entry.name}"
    return type(f"Catalog_{library}_{entry.name}", (CatalogAttack,),
                {"name": cls_name, "entry": entry, "adaptive_eot": eot, "kind": _KINDS[entry.kind],
                 "uses_step": any(k in entry.keywords for k in ("alpha", "eps_step"))})


def torchattacks_family(rest: str, args: dict) -> type[Attack]:
    return _catalog_attack("torchattacks", rest, args)


def art_family(rest: str, args: dict) -> type[Attack]:
    return _catalog_attack("art", rest, args)


def adaptive_family(rest: str, args: dict) -> type[Attack]:
    """`adaptive:torchattacks:NAME` / `adaptive:art:NAME`: the gradient attack on the whole defended predictor,
    each forward the mean of the predictive distribution over `eot` draws (default n_adaptive; keyword `eot`)."""
    library, sep, name = rest.partition(":")
    if not sep or library not in CATALOGS:
        raise BenchError(f"adaptive:{rest}: adaptive: takes torchattacks:NAME or art:NAME (the built-in adaptive "
                         "attacks are adaptive-pgd, adaptive-apgd, surrogate-pgd50)")
    entry = lookup(library, name)
    if entry.kind != "gradient":
        raise BenchError(f"adaptive:{library}:{entry.name} is a {entry.kind}-based attack: it already queries the "
                         "defended predictor; drop the adaptive: prefix")
    base = _catalog_attack(library, name, {})
    params = dict(base.parameters())
    own_eot = "eot" in params

    class Adaptive(base):  # type: ignore[misc, valid-type]
        @classmethod
        def parameters(cls) -> dict[str, tuple[type, Any]]:
            return params if own_eot else {**params, "eot": (int, None)}

        def __init__(self, eps: float, step: float | None = None, settings: Any = None, *, norm=None, **kw: Any):
            eot = kw.pop("eot", None) if not own_eot else None
            super().__init__(eps, step, settings, norm=norm, **kw)
            self.adaptive_eot = int(eot or self.settings.n_adaptive)
            if self.adaptive_eot < 1:
                raise BenchError(f"{self.name}: eot must be >= 1, got {eot}")

    Adaptive.name = f"adaptive:{library}:{entry.name}"
    Adaptive.adaptive = True
    Adaptive.kind = "adaptive-gradient"
    Adaptive.__qualname__ = Adaptive.__name__ = f"Adaptive_{library}_{entry.name}"
    return Adaptive


FAMILIES.register("torchattacks", help="torchattacks:NAME(key=value,...) - any torchattacks attack class "
                  "(bench list attacks --all)")(torchattacks_family)
FAMILIES.register("art", help="art:NAME(key=value,...) - any ART evasion attack, on a PyTorchClassifier with "
                  "clip_values=(0, 1) (bench list attacks --all)")(art_family)
FAMILIES.register("adaptive", help="adaptive:LIB:NAME(...,eot=N) - a catalog gradient attack through the whole "
                  "defended predictor, EOT over eot draws (default n_adaptive)")(adaptive_family)


def catalog_table():
    """`bench list attacks --all`: every class of both catalogs, its kind, norms, keywords and whether it runs."""
    from rich.table import Table

    table = Table(title="attack catalogs: --attack torchattacks:NAME(key=value,...) | art:NAME(...) | "
                  "adaptive:LIB:NAME(...,eot=N) (gradient kinds)")
    for col in ("attack", "kind", "norms", "keywords", "runs here"):
        table.add_column(col)
    for library, catalog in CATALOGS.items():
        for entry in catalog().values():
            keywords = ", ".join(k for k in entry.keywords if k not in ("verbose",))
            table.add_row(f"{library}:{entry.name}", entry.kind, ", ".join(entry.norms) or "-", keywords,
                          "yes" if entry.refused is None else f"no: {entry.refused}")
    return table
