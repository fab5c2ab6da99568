"""The shared training loop: Adam, shuffled mini-batches with data kept on the device, one recipe loss per batch."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from bench.data import Split
from bench.errors import BenchError
from bench.progress import progress
from defenses.base import Recipe


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    optimizers = {"adam": torch.optim.Adam, "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9)}
    if name not in optimizers:
        raise BenchError(f"unknown optimizer {name!r}; valid: {', '.join(optimizers)}")
    return optimizers[name](params, lr=lr)


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
) -> list[dict]:
    """Train `model` in place with recipe.loss; returns per-epoch {epoch, loss, acc}."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device).train()
    opt = make_optimizer(optimizer, model.parameters(), lr)
    x_all, y_all = train.x.to(device), train.y.to(device)
    n = len(y_all)
    steps = math.ceil(n / batch_size)
    history = []
    with progress(show_progress) as bar:
        task = bar.add_task(f"train {recipe.name}", total=epochs * steps, info="")
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=gen).to(device)
            total_loss, correct = 0.0, 0
            for i in range(steps):
                idx = perm[i * batch_size : (i + 1) * batch_size]
                x, y = x_all[idx], y_all[idx]
                loss, logits = recipe.loss(model, x, y, rng)
                if not torch.isfinite(loss):
                    raise BenchError(f"training {recipe.name}: loss is {loss.item()} in epoch {epoch}; lower the lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total_loss += loss.item() * len(y)
                correct += int((logits.argmax(1) == y).sum())
                bar.advance(task)
            row = {"epoch": epoch, "loss": total_loss / n, "acc": 100.0 * correct / n}
            history.append(row)
            bar.update(task, info=f"epoch {epoch}/{epochs} loss {row['loss']:.3f} acc {row['acc']:.1f}%")
    model.eval()
    return history
