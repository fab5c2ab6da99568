"""Model registry: classifiers map [0,1] images to logits; per-channel normalisation is the model's first layer."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from bench.registry import Registry


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


def build_model(
    name: str, shape: tuple[int, int, int], num_classes: int, mean: Sequence[float], std: Sequence[float]
) -> Classifier:
    """A registered network wrapped with the dataset's normalisation."""
    return Classifier(Normalize(mean, std), MODELS.get(name)(tuple(shape), num_classes))
