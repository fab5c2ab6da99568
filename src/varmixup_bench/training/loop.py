"""The shared training loop: the preset's optimizer, learning-rate schedule and augmentation, seeded per-epoch shuffles, one recipe loss per batch, per-epoch checkpoints.

Each epoch draws its shuffle, its recipe randomness (numpy) and torch's global RNG (attack random starts)
from (seed, epoch) alone, so a training resumed from a checkpoint gives the same weights as one that ran
through. Datasets that fit stay on the device; larger ones stream through a DataLoader with pinned memory.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from varmixup_bench.core.clock import running_time, stopped_time
from varmixup_bench.training.checkpoint import load_checkpoint, remove_checkpoint, save_checkpoint
from varmixup_bench.training.data import Split
from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.progress import progress
from varmixup_bench.defenses.base import Recipe


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda params, lr, wd: torch.optim.Adam(params, lr=lr, weight_decay=wd),
    "sgd": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd),
    "sgd-nesterov": lambda params, lr, wd: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=wd),
}


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    if name not in OPTIMIZERS:
        raise BenchError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](params, lr, weight_decay)


def _one_cycle(opt: torch.optim.Optimizer, total_steps: int, lr: float):
    """Linear warm-up from lr/25 over the first quarter of the steps, then linear decay to lr/25e4 at the last step:
    the rates of torch's OneCycleLR with linear annealing and no momentum cycling (equal from 5 steps on), written
    as a LambdaLR because OneCycleLR divides by zero at exactly 4 steps and gives a degenerate schedule below. With
    4 steps or fewer there is no warm-up: the schedule starts at lr and decays linearly."""
    init, final = 1 / 25, 1 / 25 / 1e4
    e1, e2 = 0.25 * total_steps - 1, total_steps - 1  # OneCycleLR's phase ends (steps counted from 0)

    def factor(step: int) -> float:
        if e1 > 0 and step <= e1:
            return init + (1 - init) * step / e1
        start = max(e1, 0.0)
        if e2 <= start:
            return 1.0
        return max(final, 1 + (final - 1) * (step - start) / (e2 - start))

    for group in opt.param_groups:
        group["lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


SCHEDULES: dict[str, Callable | None] = {"constant": None, "one-cycle": _one_cycle}


def flip_translate(x: torch.Tensor, rng: np.random.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flip of half the batch and a random translation of up to `shift` pixels (reflection
    padding, then a crop), drawn from the epoch's numpy generator so a resumed training draws the same."""
    n, _, h, w = x.shape
    flip = torch.from_numpy(rng.random(n) < 0.5).to(x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), mode="reflect")
    dx, dy = rng.integers(0, 2 * shift + 1, size=2)  # one shift per batch: a cheap crop, new every batch
    return padded[..., dy:dy + h, dx:dx + w]


def flip_crop(x: torch.Tensor, rng: np.random.Generator, shift: int = 2) -> torch.Tensor:
    """Random horizontal flip of half the batch and a random translation of up to `shift` pixels drawn per image
    (reflection padding, then each image's own crop): the translation augmentation of the fast-CIFAR recipes."""
    n, c, h, w = x.shape
    flip = torch.from_numpy(rng.random(n) < 0.5).to(x.device)
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
    padded = torch.nn.functional.pad(x, (shift, shift, shift, shift), mode="reflect")
    dy, dx = (torch.from_numpy(rng.integers(0, 2 * shift + 1, size=n)).to(x.device) for _ in range(2))
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1, 1), torch.arange(c, device=x.device).view(1, c, 1, 1),
                  rows, cols]


AUGMENTS: dict[str, Callable | None] = {"none": None, "flip-translate": flip_translate, "flip-crop": flip_crop}


def epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def batches(split: Split, batch_size: int, perm: torch.Tensor, device: torch.device, on_device: tuple | None,
            num_workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Full mini-batches in the order `perm` (the remainder is dropped: a tiny last batch would corrupt the
    BatchNorm running statistics; the shuffle changes every epoch, so every example is still used)."""
    if len(perm) > batch_size:
        perm = perm[: len(perm) - len(perm) % batch_size]
    if on_device is not None:
        x_all, y_all = on_device
        perm = perm.to(device)
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            yield x_all[idx], y_all[idx]
        return
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(split.x, split.y), batch_size=batch_size, sampler=perm.tolist(),
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    for x, y in loader:
        yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def train_classifier(
    recipe: Recipe,
    model: nn.Module,
    train: Split,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    optimizer: str,
    device: torch.device,
    seed: int,
    show_progress: bool = True,
    amp: bool = False,
    checkpoint_dir: Path | None = None,
    device_data_limit_gb: float = 4.0,
    num_workers: int = 2,
    on_epoch_end: Callable[[int], None] | None = None,
    weight_decay: float = 0.0,
    lr_schedule: str = "constant",
    augment: str = "none",
) -> list[dict]:
    """Train `model` in place with recipe.loss; returns per-epoch {epoch, loss, acc, seconds}; resumes from
    checkpoint_dir. `augment` transforms each batch before the recipe sees it (every recipe alike)."""
    model.to(device).train()
    opt = make_optimizer(optimizer, model.parameters(), lr, weight_decay)
    if lr_schedule not in SCHEDULES or augment not in AUGMENTS:
        raise BenchError(f"unknown lr_schedule {lr_schedule!r} or augment {augment!r}; valid: "
                         f"{', '.join(SCHEDULES)}; {', '.join(AUGMENTS)}")
    start_epoch, history = 0, []
    if checkpoint_dir is not None:
        resumed = load_checkpoint(checkpoint_dir, model, opt)
        if resumed is not None:
            start_epoch, history = resumed
    fits = train.x.element_size() * train.x.numel() <= device_data_limit_gb * 2**30
    on_device = (train.x.to(device), train.y.to(device)) if fits else None
    n = len(train) - (len(train) % batch_size if len(train) > batch_size else 0)  # examples seen per epoch
    steps = math.ceil(n / batch_size)
    schedule = SCHEDULES[lr_schedule](opt, epochs * steps, lr) if SCHEDULES[lr_schedule] else None
    if schedule is not None and start_epoch:
        import warnings

        with warnings.catch_warnings():  # fast-forwarding a fresh scheduler steps it before any optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(start_epoch * steps):
                schedule.step()  # a resumed training continues the schedule where it stopped
    transform = AUGMENTS[augment]
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if amp else nullcontext
    with progress(show_progress) as bar:
        task = bar.add_task(f"train {recipe.name}", total=epochs * steps, completed=start_epoch * steps,
                            info=f"resumed after epoch {start_epoch}" if start_epoch else "")
        for epoch in range(start_epoch + 1, epochs + 1):
            es = epoch_seed(seed, epoch)
            torch.manual_seed(es)
            rng = np.random.default_rng(es)
            # permute all examples, then drop the trailing partial batch of *this* permutation (permuting only
            # the first n would leave the last len(train) - n examples out of every epoch)
            perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(es))
            epoch_start, cpu_start, stop_start = running_time(), time.process_time(), stopped_time()
            model.train()
            total_loss, correct = 0.0, 0
            for x, y in batches(train, batch_size, perm, device, on_device, num_workers):
                if transform is not None:
                    x = transform(x, rng)
                with autocast():
                    loss, logits = recipe.loss(model, x, y, rng)
                if not torch.isfinite(loss):
                    raise BenchError(f"training {recipe.name}: loss is {loss.item()} in epoch {epoch}; lower the lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if schedule is not None:
                    schedule.step()
                total_loss += loss.item() * len(y)
                correct += int((logits.argmax(1) == y).sum())
                bar.advance(task)
            # seconds per epoch live in the history, which the checkpoint keeps: a training resumed in a later
            # session still accounts for the epochs run before the break
            # seconds the process could run (core.clock: a SIGSTOP pause is not counted; it is in stopped_seconds),
            # and its CPU seconds (all threads): a starved run still shows as seconds >> cpu / threads
            row = {"epoch": epoch, "loss": total_loss / n, "acc": 100.0 * correct / n,
                   "seconds": running_time() - epoch_start, "cpu_seconds": time.process_time() - cpu_start,
                   "stopped_seconds": stopped_time() - stop_start}
            history.append(row)
            if checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, model, opt, epoch, history)
            bar.update(task, info=f"epoch {epoch}/{epochs} loss {row['loss']:.3f} acc {row['acc']:.1f}%")
            if on_epoch_end is not None:
                on_epoch_end(epoch)
    model.eval()
    if checkpoint_dir is not None:
        remove_checkpoint(checkpoint_dir)
    return history
