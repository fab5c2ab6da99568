"""`bench perf`: named timing ratios of the harness against plain PyTorch baselines, measured in one process."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.registry import Registry

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
    from attacks.pgd import PGD10
    from bench.data import load_dataset
    from bench.models import build_model
    from bench.presets import get_preset
    from bench.runner import attack_accuracy
    from defenses import Defense
    from defenses.erm import ERM
    from defenses.plain import Plain

    torch.manual_seed(0)
    settings = get_preset("quick")
    ds = load_dataset("digits")
    x, y = ds.train.x[:512], ds.train.y[:512]
    mean, std = ds.channel_stats()
    model = build_model("small-cnn", ds.image_shape, ds.num_classes, mean, std).eval()
    defense = Defense("erm", ERM(settings), Plain(settings, "erm"), model, ds,
                      {"settings": settings, "trained": False, "config_hash": "perf"})
    attack = PGD10(8 / 255, 2 / 255)
    bs = settings.eval_batch_size

    def harness():
        attack_accuracy(defense, attack, x, y, trials=1, seed=0, batch_size=bs, show_progress=False)

    def baseline():
        plain_pgd_accuracy(model, x, y, 8 / 255, 2 / 255, 10, bs)

    return {**compare(harness, baseline, repeats), "n": 512, "batch_size": bs, "target": "<= 1.05"}


def run_benchmarks(names: list[str] | None, repeats: int) -> dict[str, dict]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    return {name: BENCHMARKS.get(name)(repeats) for name in (names or BENCHMARKS.names())}
