"""MMD-VAE architectures (paper eq. 11, loss = recon + gamma * MMD on the flattened latent), in a registry: `flat`
(one latent vector behind a fully connected layer, the original) and `conv` (fully convolutional, a spatial
latent at a quarter of the image's side: far more faithful reconstructions, and any image size without resizing)."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from varmixup_bench.core.registry import Registry


def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """k(a, b) = exp(-||a - b||^2 / bandwidth) for every pair of rows; (len(a), len(b))."""
    return torch.exp(-torch.cdist(a, b).pow(2) / bandwidth)


def mmd(x: torch.Tensor, y: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """Unbiased estimate of MMD^2 between the samples x (n, d) and y (m, d) with a Gaussian kernel."""
    n, m = len(x), len(y)
    kxx, kyy, kxy = gaussian_kernel(x, x, bandwidth), gaussian_kernel(y, y, bandwidth), gaussian_kernel(x, y, bandwidth)
    off_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    off_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return off_x + off_y - 2 * kxy.mean()


def _stages(size: int) -> int:
    """Number of stride-2 stages that bring `size` down to at most 4 pixels."""
    return max(0, math.ceil(math.log2(max(size, 1) / 4)))


class MMDVAE(nn.Module):
    """Gaussian encoder q(z|x) (mean, log-variance) and a sigmoid decoder whose output is E[p(x|z)] in [0,1]."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int = 32, width: int = 32) -> None:
        super().__init__()
        c, h, w = shape
        self.shape, self.latent_dim = (c, h, w), latent_dim
        n = max(_stages(h), _stages(w), 1)
        chans = [width * 2**i for i in range(n)]
        enc: list[nn.Module] = []
        c_in = c
        for ch in chans:
            enc += [nn.Conv2d(c_in, ch, 4, stride=2, padding=1), nn.BatchNorm2d(ch), nn.LeakyReLU(0.2, inplace=True)]
            c_in = ch
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        with torch.no_grad():
            self.bottom = tuple(nn.Sequential(*enc)(torch.zeros(1, c, h, w)).shape[1:])
        flat = int(math.prod(self.bottom))
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)
        self.fc = nn.Linear(latent_dim, flat)
        dec: list[nn.Module] = []
        for ch_in, ch_out in zip(reversed(chans), list(reversed(chans))[1:] + [width]):
            dec += [nn.ConvTranspose2d(ch_in, ch_out, 4, stride=2, padding=1), nn.BatchNorm2d(ch_out), nn.ReLU(inplace=True)]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(width, c, 3, padding=1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x)."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(-10, 10)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        """E[q(z|x)], the latent the paper's equations use."""
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """E[p(x|z)]: decoded images in [0,1] of the dataset's shape."""
        h = self.fc(z).view(-1, *self.bottom)
        out = self.decoder(h)
        if out.shape[-2:] != self.shape[1:]:
            out = F.interpolate(out, size=self.shape[1:], mode="bilinear", align_corners=False)
        return torch.sigmoid(out)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mean(x))

    def loss(self, x_in: torch.Tensor, x_target: torch.Tensor, gamma: float, bandwidth: float) -> dict[str, torch.Tensor]:
        return vae_loss(self, x_in, x_target, gamma, bandwidth)


def vae_loss(vae: nn.Module, x_in: torch.Tensor, x_target: torch.Tensor, gamma: float,
             bandwidth: float | None) -> dict[str, torch.Tensor]:
    """Pixel-mean squared reconstruction error of x_target from x_in plus gamma * MMD(q(z) || N(0, I)), the MMD
    on the latent flattened to one vector per image (eq. 11); bandwidth None: 2 * its length."""
    mu, logvar = vae.encode(x_in)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    recon = F.mse_loss(vae.decode(z)[..., : x_target.shape[-2], : x_target.shape[-1]], x_target)
    flat = z.flatten(1)
    div = mmd(flat, torch.randn_like(flat), float(bandwidth or 2.0 * flat.shape[1]))
    return {"loss": recon + gamma * div, "recon": recon, "mmd": div}


class ResBlock(nn.Module):
    """x + conv(relu(bn(conv(relu(bn(x)))))): keeps the side and the channels."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(ch), nn.ReLU(), nn.Conv2d(ch, ch, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvVAE(nn.Module):
    """Fully convolutional MMD-VAE: stride-2 stages with residual blocks down to a spatial latent of
    `latent_channels` x ceil(H/stride) x ceil(W/stride) (stride 4: two stages, 2: one; mean and log-variance from
    a 1x1 convolution), mirrored up to a sigmoid decoder. No layer depends on the image size: a VAE trained on one
    dataset encodes and decodes images of another size as they are (paper Table 3 without resizing); sides that
    are not multiples of the stride are padded by replication before encoding and the decoded image is cropped
    back. A finer latent (stride 2, or more channels) reconstructs more faithfully."""

    def __init__(self, shape: tuple[int, int, int], latent_channels: int = 16, width: int = 64, stride: int = 4) -> None:
        super().__init__()
        if stride not in (2, 4):
            raise ValueError(f"latent stride must be 2 or 4, got {stride}")
        c, h, w = shape
        self.shape = (c, h, w)
        self.stride = stride
        self.latent_channels = latent_channels
        self.latent_shape = (latent_channels, math.ceil(h / stride), math.ceil(w / stride))
        stages = 2 if stride == 4 else 1
        # residual blocks only below full resolution, where they are cheap; full resolution has one conv each way
        enc: list[nn.Module] = [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c_in = width
        for _ in range(stages):
            enc += [nn.Conv2d(c_in, 2 * width, 4, stride=2, padding=1), ResBlock(2 * width)]
            c_in = 2 * width
        self.encoder = nn.Sequential(*enc, nn.BatchNorm2d(2 * width), nn.ReLU())
        self.to_latent = nn.Conv2d(2 * width, 2 * latent_channels, 1)
        dec: list[nn.Module] = [nn.Conv2d(latent_channels, 2 * width, 3, padding=1), ResBlock(2 * width)]
        for i in range(stages):
            last = i == stages - 1
            dec += [nn.ConvTranspose2d(2 * width, width if last else 2 * width, 4, stride=2, padding=1)]
            if not last:
                dec.append(ResBlock(2 * width))
        self.decoder = nn.Sequential(*dec, nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, c, 3, padding=1))

    @property
    def latent_dim(self) -> int:
        """Numbers per image in the latent (what the MMD sees, flattened)."""
        return int(math.prod(self.latent_shape))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.stride, (-w) % self.stride
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        mu, logvar = self.to_latent(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)

    def encode_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoded images in [0,1]: stride x the latent's side, cropped to the shape the VAE was built for when the
        latent is that shape's (a latent of another size decodes to its own 4x side)."""
        out = torch.sigmoid(self.decoder(z))
        if tuple(z.shape[-2:]) == self.latent_shape[1:]:
            out = out[..., : self.shape[1], : self.shape[2]]
        return out

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode_mean(x))[..., : x.shape[-2], : x.shape[-1]]

    def loss(self, x_in: torch.Tensor, x_target: torch.Tensor, gamma: float, bandwidth: float | None) -> dict:
        return vae_loss(self, x_in, x_target, gamma, bandwidth)


VAEFactory = Callable[[tuple[int, int, int], Any], nn.Module]
VAES: Registry[VAEFactory] = Registry("VAE architecture")


@VAES.register("flat", help="one flat latent vector (vae_latent_dim) behind a fully connected layer; the original")
def _flat(shape: tuple[int, int, int], settings: Any) -> nn.Module:
    return MMDVAE(shape, settings.vae_latent_dim, settings.vae_width)


@VAES.register("conv", help="fully convolutional, spatial latent of vae_latent_channels x H/s x W/s "
               "(s = vae_latent_stride, 4 or 2); any image size")
def _conv(shape: tuple[int, int, int], settings: Any) -> nn.Module:
    return ConvVAE(shape, settings.vae_latent_channels, settings.vae_width, settings.vae_latent_stride)


def build_vae(arch: str, shape: tuple[int, int, int], settings: Any) -> nn.Module:
    return VAES.get(arch)(tuple(shape), settings)
