"""MMD-VAE (paper eq. 11): convolutional encoder/decoder sized from the image shape, loss = recon + gamma * MMD."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


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
        """Pixel-mean squared reconstruction error of x_target from x_in plus gamma * MMD(q(z) || N(0, I))."""
        mu, logvar = self.encode(x_in)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = F.mse_loss(self.decode(z), x_target)
        prior = torch.randn_like(z)
        div = mmd(z, prior, bandwidth)
        return {"loss": recon + gamma * div, "recon": recon, "mmd": div}
