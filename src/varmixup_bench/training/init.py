"""Data-dependent initialisations of a classifier before training (preset field `init`), as a registry.

`whiten` is the fast-CIFAR trick (Jordan 2024, after Page's ResNet-on-CIFAR series): the stem convolution's filters
become the whitening transform of the training images' patches (each eigenvector of the patch covariance scaled by
1/sqrt(eigenvalue), with its negative, so a following GELU keeps both signs) and are frozen, so the first layer
decorrelates pixels from the first step instead of learning to. A stem with more filters than twice the patch's
size (24 filters on 1-channel 2x2 patches) gets zeros in the rest, frozen too. The filters depend only on the
training data and the model, which the cache key already holds; the key records `init` when it is not the default
(changing WHITEN_IMAGES or WHITEN_EPS changes the weights a key names: bump the runner's TRAINING_CODE_VERSION).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.core.errors import BenchError
from varmixup_bench.core.registry import Registry
from varmixup_bench.training.data import Split

Init = Callable[[nn.Module, Split], None]
INITS: Registry[Init] = Registry("init")

WHITEN_IMAGES = 5000  # training images whose patches estimate the covariance (the first ones of the split)
WHITEN_EPS = 5e-4  # added to each eigenvalue: bounds the gain of near-constant directions


@INITS.register("default", help="the layers' own initialisation")
def default_init(model: nn.Module, train: Split) -> None:
    return None


def patch_whitening(patches: torch.Tensor, eps: float = WHITEN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """(filters, eigenvalues) of rows of `patches` (N x d): filters[i] = v_i / sqrt(lambda_i + eps), largest first;
    applied to centred patches they give unit-variance, uncorrelated outputs."""
    centred = patches - patches.mean(0, keepdim=True)
    cov = centred.T @ centred / max(len(patches) - 1, 1)
    values, vectors = torch.linalg.eigh(cov.double())
    order = values.argsort(descending=True)
    values, vectors = values[order].clamp_min(0), vectors[:, order]
    return (vectors.T / (values + eps).sqrt().unsqueeze(1)).float(), values.float()


@INITS.register("whiten", help="stem convolution = frozen whitening filters of training patches (fast-CIFAR)")
def whiten_init(model: nn.Module, train: Split) -> None:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise BenchError("init whiten needs a model whose first layer is a convolution")
    stem = convs[0]
    if stem.groups != 1 or stem.stride != (1, 1) or stem.padding not in ((0, 0), "valid"):
        raise BenchError("init whiten needs an unpadded, stride-1, ungrouped stem convolution (fast-cnn's 2x2 stem)")
    x = train.x[:WHITEN_IMAGES].float()
    normalize = getattr(model, "normalize", None)
    with torch.no_grad():
        x = normalize(x.to(normalize.mean.device)).cpu() if normalize is not None else x
        patches = F.unfold(x, stem.kernel_size).transpose(1, 2).reshape(-1, stem.in_channels * stem.kernel_size[0]
                                                                           * stem.kernel_size[1])
        filters, _ = patch_whitening(patches)
        d = filters.shape[0]
        pairs = min(d, stem.out_channels // 2)
        weight = torch.zeros_like(stem.weight)  # filters beyond 2 x the patch size (1-channel images) stay zero
        bank = torch.cat([filters[:pairs], -filters[:pairs]]).view(2 * pairs, *weight.shape[1:])
        weight[: 2 * pairs] = bank.to(weight)
        stem.weight.copy_(weight)
    stem.weight.requires_grad_(False)


def apply_init(name: str, model: nn.Module, train: Split) -> None:
    """Run the registered initialisation `name` on `model` (in place)."""
    INITS.get(name)(model, train)
