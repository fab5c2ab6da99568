"""Model registry: classifiers map [0,1] images to logits; per-channel normalisation is the model's first layer."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from varmixup_bench.core.registry import Registry


class Normalize(nn.Module):
    """(x - mean) / std with the dataset's channel statistics kept as buffers, so attacks see [0,1] inputs."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalize followed by a network; input [0,1] images, output logits."""

    def __init__(self, normalize: Normalize, net: nn.Module) -> None:
        super().__init__()
        self.normalize = normalize
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))


ModelFactory = Callable[[tuple[int, int, int], int], nn.Module]
MODELS: Registry[ModelFactory] = Registry("model", group="varmixup_bench.models")


@MODELS.register("small-cnn", help="3-stage conv+BN CNN sized from the image shape; the default for small data")
def small_cnn(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    channels, height, _ = shape
    layers: list[nn.Module] = []
    c_in, size = channels, height
    for width in (32, 64, 128):
        layers += [nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
        if size > 4:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        c_in = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
    return nn.Sequential(*layers)


class ScaledLinear(nn.Linear):
    """A bias-free linear head whose logits are scaled by `scale` (a fast-training trick: small initial logits)."""

    def __init__(self, c_in: int, c_out: int, scale: float) -> None:
        super().__init__(c_in, c_out, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * self.scale


def _fast_net(widths: tuple[int, int, int]) -> ModelFactory:
    """A fast-CIFAR network in the airbench family (Jordan 2024): a 2x2 stem, then three blocks of
    conv-maxpool-BN-GELU-conv-BN-GELU, global max-pool and a scaled linear head. Sized from the image shape
    (any side >= 10); no test-time augmentation, so F_w stays the one network the attacks differentiate."""
    def build(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        stem = 24
        layers: list[nn.Module] = [nn.Conv2d(shape[0], stem, 2, bias=False), nn.BatchNorm2d(stem), nn.GELU()]
        c_in = stem
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.MaxPool2d(2, ceil_mode=True),
                       nn.BatchNorm2d(w), nn.GELU(), nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.GELU()]
            c_in = w
        layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), ScaledLinear(c_in, num_classes, 1 / 9)]
        return nn.Sequential(*layers)

    return build


MODELS.register("fast-cnn", help="airbench-style fast-CIFAR net (widths 64/256/256): ~94 % class in about ten "
                "epochs with flips, translations, label smoothing and a one-cycle schedule")(_fast_net((64, 256, 256)))
MODELS.register("fast-cnn-half", help="fast-cnn at half width (32/128/128): about 3.5x the images per second")(
    _fast_net((32, 128, 128)))


def _cifar_resnet(blocks: list[int]) -> ModelFactory:
    def build(shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        from torchvision.models.resnet import BasicBlock, ResNet

        net = ResNet(BasicBlock, blocks, num_classes=num_classes)
        net.conv1 = nn.Conv2d(shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)  # CIFAR stem
        net.maxpool = nn.Identity()
        return net

    return build


MODELS.register("resnet18", help="CIFAR-style ResNet-18 (3x3 stem, no max-pool), torchvision blocks")(
    _cifar_resnet([2, 2, 2, 2])
)
MODELS.register("resnet34", help="CIFAR-style ResNet-34 (3x3 stem, no max-pool), torchvision blocks; the paper's")(
    _cifar_resnet([3, 4, 6, 3])
)


def _contiguous_input_grad(module: nn.Module, args: tuple) -> None:
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.requires_grad:
        x.register_hook(lambda grad: grad.contiguous())


def to_channels_last(model: nn.Module, entry: nn.Module) -> nn.Module:
    """`model`'s weights in channels-last memory order (the same numbers, faster convolutions on a CPU), with the
    gradient w.r.t. the input of `entry` (the module that first receives the images) handed back in the default
    contiguous order: a channels-last input gradient breaks torchattacks' PGDL2, which reshapes it with .view
    (docs/known-problems.md; tests/test_regime.py shows the failure without this)."""
    model.to(memory_format=torch.channels_last)
    if not getattr(entry, "_contiguous_input_grad", False):
        entry.register_forward_pre_hook(_contiguous_input_grad)
        entry._contiguous_input_grad = True
    return model


def build_model(
    name: str, shape: tuple[int, int, int], num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> Classifier:
    """A registered network wrapped with the dataset's normalisation."""
    return Classifier(Normalize(mean, std), MODELS.get(name)(tuple(shape), num_classes))
