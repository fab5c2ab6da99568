"""`bench perf`: named timing ratios of the harness against plain PyTorch baselines, measured in one process."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.core.registry import Registry

Benchmark = Callable[[int], dict]
BENCHMARKS: Registry[Benchmark] = Registry("benchmark")


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def compare(harness: Callable[[], object], baseline: Callable[[], object], repeats: int) -> dict:
    """Median wall time of each over `repeats` interleaved runs (after one warm-up each) and their ratio."""
    harness(), baseline()
    h, b = [], []
    for _ in range(repeats):
        h.append(_time(harness))
        b.append(_time(baseline))
    hm, bm = statistics.median(h), statistics.median(b)
    return {"harness_s": round(hm, 4), "baseline_s": round(bm, 4), "ratio": round(hm / bm, 3), "repeats": repeats}


def plain_pgd_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step: float, steps: int,
                       batch_size: int) -> tuple[float, float]:
    """Reference L-inf PGD with random start in plain PyTorch; returns (clean acc, robust acc) in percent."""
    model.eval()
    clean = robust = 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        adv = (xb + torch.empty_like(xb).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), yb)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = torch.min(torch.max(adv.detach() + step * grad.sign(), xb - eps), xb + eps).clamp(0, 1)
        with torch.no_grad():
            clean += int((model(xb).argmax(1) == yb).sum())
            robust += int((model(adv).argmax(1) == yb).sum())
    return 100.0 * clean / len(y), 100.0 * robust / len(y)


@BENCHMARKS.register("pgd_eval_overhead", help="harness PGD-10 evaluation of 512 images / plain PyTorch PGD-10 loop")
def pgd_eval_overhead(repeats: int) -> dict:
    from varmixup_bench.attacks.pgd import PGD10
    from varmixup_bench.training.data import load_dataset
    from varmixup_bench.training.models import build_model
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.attacks.evaluation import attack_accuracy
    from varmixup_bench.defenses import Defense
    torch.manual_seed(0)
    settings = get_preset("quick")
    ds = load_dataset("digits")
    x, y = ds.train.x[:512], ds.train.y[:512]
    mean, std = ds.channel_stats()
    model = build_model("small-cnn", ds.image_shape, ds.num_classes, mean, std).eval()
    defense = Defense.from_classifier(model, ds, settings, spec="perf")
    attack = PGD10(8 / 255, 2 / 255)
    bs = settings.eval_batch_size

    def harness():
        attack_accuracy(defense, attack, x, y, trials=1, seed=0, batch_size=bs, show_progress=False)

    def baseline():
        plain_pgd_accuracy(model, x, y, 8 / 255, 2 / 255, 10, bs)

    return {**compare(harness, baseline, repeats), "n": 512, "batch_size": bs, "target": "<= 1.05"}


def _digits_setup():
    """Digits, the quick preset, a fresh small CNN and an (untrained) VAE: the same inputs for both sides."""
    from varmixup_bench.training.data import load_dataset
    from varmixup_bench.training.models import build_model
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.defenses.latent import FittedVAE
    from varmixup_bench.defenses.vae import MMDVAE

    torch.manual_seed(0)
    settings = get_preset("quick")
    ds = load_dataset("digits")
    mean, std = ds.channel_stats()
    model = build_model(settings.model, ds.image_shape, ds.num_classes, mean, std)
    vae = MMDVAE(ds.image_shape, settings.vae_latent_dim, settings.vae_width).eval().requires_grad_(False)
    return settings, ds, model, FittedVAE(vae, ds.image_shape).eval()


@BENCHMARKS.register("varmixup_epoch", help="one VarMixup training epoch / one Mixup epoch, same classifier and data")
def varmixup_epoch(repeats: int) -> dict:
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses.mixup import Mixup
    from varmixup_bench.defenses.varmixup import VarMixup

    settings, ds, model, vae = _digits_setup()
    var = VarMixup(settings)
    var.vae = vae
    mix = Mixup(settings)
    kw = dict(epochs=1, batch_size=settings.batch_size, lr=settings.lr, optimizer=settings.optimizer,
              device=torch.device("cpu"), seed=0, show_progress=False)
    return {**compare(lambda: train_classifier(var, model, ds.train, **kw),
                      lambda: train_classifier(mix, model, ds.train, **kw), repeats),
            "n": len(ds.train), "target": "<= 1.5"}


def _varmi_versus_floor(settings, model: nn.Module, vae, x: torch.Tensor, pool_x: torch.Tensor, pool_y: torch.Tensor,
                        repeats: int) -> dict:
    """The VarMI rule on x, batch by batch, against the floor of the same work as bare batched forwards: one encoder
    pass and the N_MI decoder and classifier passes of a batch in one call each."""
    from varmixup_bench.defenses.base import chunk_rows
    from varmixup_bench.defenses.pool import OtherLabelPool
    from varmixup_bench.defenses.varmi import VarMI

    model.eval()
    rule = VarMI(settings, "varmixup")
    rule.vae = vae
    with torch.no_grad():
        rule.pool = OtherLabelPool(vae.encode_mean(pool_x), pool_y)
    bs, n_mi = settings.eval_batch_size, settings.n_mi
    zs = rule.pool.x[torch.randint(len(rule.pool), (n_mi, bs), generator=torch.Generator().manual_seed(0))]

    def harness():
        with torch.no_grad():
            for i in range(0, len(x), bs):
                rule.forward(model, x[i : i + bs], torch.Generator().manual_seed(i))

    def floor():
        with torch.no_grad():
            for i in range(0, len(x), bs):
                xb = x[i : i + bs]
                mu = vae.encode_mean(xb)
                z = 0.5 * mu.unsqueeze(0) + 0.5 * zs[:, : len(xb)]
                F.softmax(model(vae.decode(z.flatten(0, 1))), 1).view(n_mi, len(xb), -1).mean(0)

    return {**compare(harness, floor, repeats), "n": len(x), "n_mi": n_mi, "batch_size": bs,
            "rows_per_call": chunk_rows(settings, x.device)}


@BENCHMARKS.register("varmi_inference", help="VarMI on 512 images / bare encoder + N_MI decoder and classifier forwards")
def varmi_inference(repeats: int) -> dict:
    settings, ds, model, vae = _digits_setup()
    return {**_varmi_versus_floor(settings, model, vae, ds.train.x[:512], ds.train.x, ds.train.y, repeats),
            "target": "<= 1.2"}


@BENCHMARKS.register("varmi_inference_cifar", help="VarMI on 512 CIFAR-shaped images (latent 64) / the same as bare "
                     "forwards, N_MI mixes of a batch in one call")
def varmi_inference_cifar(repeats: int) -> dict:
    """The cifar-cpu-full shapes (32x32 RGB, small CNN, VAE latent 64): random images and untrained networks cost
    what trained ones do. Below 1 on a CPU is what rows_in_chunks buys over one large call."""
    from varmixup_bench.training.models import build_model
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.defenses.latent import FittedVAE
    from varmixup_bench.defenses.vae import MMDVAE

    torch.manual_seed(0)
    settings = get_preset("cifar-cpu-full")
    shape = (3, 32, 32)
    model = build_model(settings.model, shape, 10, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    vae = FittedVAE(MMDVAE(shape, settings.vae_latent_dim, settings.vae_width).eval().requires_grad_(False), shape)
    pool_x, pool_y = torch.rand(2000, *shape), torch.arange(2000) % 10
    return {**_varmi_versus_floor(settings, model, vae.eval(), torch.rand(512, *shape), pool_x, pool_y, repeats),
            "target": "< 1.0 on a CPU"}


@BENCHMARKS.register("at_epoch", help="one PGD adversarial-training epoch / one ERM epoch, same classifier and data")
def at_epoch(repeats: int) -> dict:
    from varmixup_bench.training.loop import train_classifier
    from varmixup_bench.defenses.adversarial import AT
    from varmixup_bench.defenses.erm import ERM

    settings, ds, model, _ = _digits_setup()
    kw = dict(epochs=1, batch_size=settings.batch_size, lr=settings.lr, optimizer=settings.optimizer,
              device=torch.device("cpu"), seed=0, show_progress=False)
    return {**compare(lambda: train_classifier(AT(settings), model, ds.train, **kw),
                      lambda: train_classifier(ERM(settings), model, ds.train, **kw), repeats),
            "n": len(ds.train), "train_steps": settings.train_steps,
            "target": f"about train_steps + 1 = {settings.train_steps + 1} (report)"}


def _regime_setup(n: int = 1024):
    """CIFAR-shaped random images, the cifar-regime preset and a fresh fast-cnn-half: the same for both sides."""
    from varmixup_bench.config.presets import get_preset
    from varmixup_bench.training.data import Split
    from varmixup_bench.training.models import build_model

    torch.manual_seed(0)
    settings = get_preset("cifar-regime")
    split = Split(torch.rand(n, 3, 32, 32), torch.randint(0, 10, (n,)))
    return settings, split, build_model(settings.model, (3, 32, 32), 10, [0.5] * 3, [0.25] * 3)


def plain_sgd_epoch(model: nn.Module, split, batch_size: int, lr: float) -> None:
    """The textbook loop: shuffle, SGD-Nesterov with weight decay, cross-entropy; no augmentation or schedule."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    model.train()
    perm = torch.randperm(len(split))
    for i in range(0, len(perm) - batch_size + 1, batch_size):
        idx = perm[i : i + batch_size]
        loss = F.cross_entropy(model(split.x[idx]), split.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


@BENCHMARKS.register("regime_epoch", help="one cifar-regime ERM epoch of the harness (flip-crop, one-cycle, label "
                     "smoothing, channels-last fast-cnn-half) / a plain SGD epoch of the same channels-last model")
def regime_epoch(repeats: int) -> dict:
    from varmixup_bench.defenses.erm import ERM
    from varmixup_bench.training.loop import train_classifier

    s, split, model = _regime_setup()
    model.to(memory_format=torch.channels_last)
    kw = dict(epochs=1, batch_size=s.batch_size, lr=s.lr, optimizer=s.optimizer, device=torch.device("cpu"), seed=0,
              show_progress=False, weight_decay=s.weight_decay, lr_schedule=s.lr_schedule, augment=s.augment)
    return {**compare(lambda: train_classifier(ERM(s), model, split, **kw),
                      lambda: plain_sgd_epoch(model, split, s.batch_size, s.lr), repeats),
            "n": len(split), "target": "<= 1.15 (the augmentation's gather and the schedule are the difference)"}


@BENCHMARKS.register("channels_last", help="a plain SGD epoch of fast-cnn-half in channels-first / in channels-last "
                     "memory order (the cifar-regime preset's channels_last)")
def channels_last(repeats: int) -> dict:
    s, split, model = _regime_setup()
    first, last = model, _regime_setup()[2].to(memory_format=torch.channels_last)
    return {**compare(lambda: plain_sgd_epoch(first, split, s.batch_size, s.lr),
                      lambda: plain_sgd_epoch(last, split, s.batch_size, s.lr), repeats),
            "n": len(split), "target": "> 1 on a CPU: the speed-up of channels_last (report)"}


@BENCHMARKS.register("vae_channels_last", help="reconstructions of the cifar-regime conv VAE in channels-first / in "
                     "channels-last memory order (what VarERM/VarMixup training and VarMI inference call per batch)")
def vae_channels_last(repeats: int) -> dict:
    import copy

    from varmixup_bench.defenses.vae import build_vae

    s, split, _ = _regime_setup()
    first = build_vae(s.vae_arch, (3, 32, 32), s).eval()
    last = copy.deepcopy(first).to(memory_format=torch.channels_last)

    def reconstruct(vae: nn.Module) -> None:
        with torch.no_grad():
            for i in range(0, len(split), s.batch_size):
                vae.reconstruct(split.x[i : i + s.batch_size])

    return {**compare(lambda: reconstruct(first), lambda: reconstruct(last), repeats),
            "n": len(split), "target": "> 1 on a CPU: the speed-up of the VAE's channels_last (report)"}


@BENCHMARKS.register("sweep_ray_speedup", help="4-cell digits sweep run locally / the same sweep on a 2-worker local Ray")
def sweep_ray_speedup(repeats: int) -> dict:
    """Wall time of a fresh 2 defenses x 2 attacks digits sweep, local executor / Ray with 2 workers (Ray's
    start-up included). Each side runs in its own empty workdir, so both train and attack everything."""
    import tempfile
    from pathlib import Path

    from varmixup_bench.runs.sweep import SweepSpec, run_sweep

    def once(executor: str) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            spec = SweepSpec(["erm", "mixup+mi"], ["clean", "pgd10"], ["digits"], [0], None, "quick", Path(tmp),
                             show_progress=False, epochs=5)
            start = time.perf_counter()
            run_sweep(spec, executor, {"num_cpus": 2})
            return time.perf_counter() - start

    local = [once("local") for _ in range(max(1, repeats // 5))]
    ray = [once("ray") for _ in range(max(1, repeats // 5))]
    lm, rm = statistics.median(local), statistics.median(ray)
    return {"harness_s": round(lm, 3), "baseline_s": round(rm, 3), "ratio": round(lm / rm, 3),
            "repeats": len(local), "target": "report: > 1 means Ray is faster (start-up included)",
            "note": "harness = local executor, baseline = Ray with 2 workers"}


@BENCHMARKS.register("adaptive_eot", help="harness adaptive PGD-10 with N_A = 8 on MI (batched EOT) / a plain "
                     "PyTorch EOT loop over the same draws, one forward and backward per draw")
def adaptive_eot(repeats: int) -> dict:
    from varmixup_bench.attacks.evaluation import attack_accuracy
    from varmixup_bench.attacks.pgd import AdaptivePGD10
    from varmixup_bench.defenses import Defense, TrainContext
    from varmixup_bench.defenses.mi import MixupInference

    settings, ds, model, _ = _digits_setup()
    model.eval()
    rule = MixupInference(settings, "mixup")
    rule.setup(model, TrainContext(ds, settings, None, torch.device("cpu"), 0, False))
    defense = Defense.from_classifier(model, ds, settings, spec="perf+mi", rule=rule)
    x, y = ds.test.x[:256], ds.test.y[:256]
    eps, n_a, bs = 8 / 255, 8, 256
    attack = AdaptivePGD10(eps, eps / 4, settings, eot=n_a)

    def harness():
        attack_accuracy(defense, attack, x, y, trials=1, seed=0, batch_size=bs, show_progress=False)

    def baseline():  # the textbook EOT loop: every draw its own forward and backward
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            clean = rule.forward(model, x, gen).argmax(1)
        adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(10):
            grad = torch.zeros_like(x)
            for _ in range(n_a):
                adv.requires_grad_(True)
                loss = F.nll_loss(rule.forward(model, adv, gen, n_samples=1).clamp_min(1e-12).log(), y)
                grad += torch.autograd.grad(loss, adv)[0]
                adv = adv.detach()
            adv = torch.min(torch.max(adv + eps / 4 * grad.sign(), x - eps), x + eps).clamp(0, 1)
        with torch.no_grad():
            return clean, rule.forward(model, adv, gen).argmax(1)

    return {**compare(harness, baseline, repeats), "n": len(y), "n_adaptive": n_a, "target": "<= 1.0"}


def run_benchmarks(names: list[str] | None, repeats: int) -> dict[str, dict]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return {name: BENCHMARKS.get(name)(repeats) for name in (names or BENCHMARKS.names())}
