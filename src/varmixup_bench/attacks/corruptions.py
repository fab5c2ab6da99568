"""Common corruptions (Hendrycks & Dietterich): 15 types x 5 severities, generated for any image size.

Parameters are CIFAR-10-C's (make_cifar_c.py) at 32x32; spatial ones (blur radii, pixel shuffles, frost
texture scale, snow streaks) scale with the image side / 32, so 8x8 digits and 64x64 Tiny-ImageNet get
comparable strength. imagecorruptions 1.1.2 is not called: it no longer imports on current setuptools
(`pkg_resources` is gone), three of its corruptions fail on NumPy 2 / current scikit-image, and its
severities are ImageNet-scale. Only its frost textures are used, located without importing the package.
At 32x32 the formulas are make_cifar_c.py's (tests compare each with a transcription of the reference on
fixed noise); motion blur and snow's streaks use a Gaussian-weighted line kernel where the reference calls
ImageMagick's motion blur, and frost resizes its texture with scipy instead of OpenCV.
Each function takes one HxWxC float image in [0,1], a severity 1..5 and a numpy Generator.
"""
from __future__ import annotations

import io
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from scipy import ndimage

Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
CORRUPTIONS: dict[str, Corruption] = {}


def corruption(name: str):
    def deco(fn: Corruption) -> Corruption:
        CORRUPTIONS[name] = fn
        return fn

    return deco


def _scale(x: np.ndarray) -> float:
    """Spatial parameters grow with images larger than 32x32; smaller images keep CIFAR's pixel values
    (scaling them down would make every blur vanish on 8x8 digits)."""
    return max(1.0, min(x.shape[:2]) / 32.0)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """skimage.filters.gaussian as make_cifar_c.py calls it (mode 'nearest', truncate 4, channels apart)."""
    return ndimage.gaussian_filter(x, sigma=(sigma, sigma, 0), mode="nearest") if sigma > 0 else x


def _gray(x: np.ndarray) -> np.ndarray:
    if x.shape[2] == 1:
        return x[..., 0]
    return x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114


def _clipped_zoom(img: np.ndarray, factor: float) -> np.ndarray:
    """Zoom the centre of img by `factor` and crop back to its size."""
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / factor)), int(np.ceil(w / factor))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = ndimage.zoom(img[top : top + ch, left : left + cw], (factor, factor, 1), order=1)
    th, tw = (out.shape[0] - h) // 2, (out.shape[1] - w) // 2
    return out[th : th + h, tw : tw + w]


def _motion_kernel(radius: float, sigma: float, angle: float) -> np.ndarray:
    """A line of Gaussian-weighted taps of length ~radius in direction `angle` (degrees), normalised."""
    size = max(1, int(np.ceil(radius)))
    k = np.zeros((2 * size + 1, 2 * size + 1))
    t = np.deg2rad(angle)
    for d in np.linspace(0, radius, num=4 * size + 1):
        k[int(round(size + d * np.sin(t))), int(round(size + d * np.cos(t)))] += np.exp(-d**2 / (2 * max(sigma, 1e-3) ** 2))
    return k / k.sum()


def _motion(x: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    k = _motion_kernel(radius, sigma, angle)
    return np.stack([ndimage.convolve(x[..., c], k, mode="nearest") for c in range(x.shape[2])], axis=-1)


def _plasma(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Diamond-square plasma fractal on a power-of-two grid, normalised to [0,1]."""
    n = 1 << int(np.ceil(np.log2(max(size, 2))))
    m = np.zeros((n, n))
    step, wibble = n, 100.0
    while step >= 2:
        half = step // 2
        corners = m[0:n:step, 0:n:step]
        avg = (corners + np.roll(corners, -1, 0) + np.roll(corners, -1, 1) + np.roll(np.roll(corners, -1, 0), -1, 1)) / 4
        # make_cifar_c.py's wibbledmean: mean + wibble * U(-wibble, wibble) (not U(-1, 1))
        m[half:n:step, half:n:step] = avg + wibble * rng.uniform(-wibble, wibble, avg.shape)
        centres = m[half:n:step, half:n:step]
        m[0:n:step, half:n:step] = ((corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)) / 4
                                    + wibble * rng.uniform(-wibble, wibble, corners.shape))
        m[half:n:step, 0:n:step] = ((corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)) / 4
                                    + wibble * rng.uniform(-wibble, wibble, corners.shape))
        step, wibble = half, wibble / decay
    m -= m.min()
    return m / max(m.max(), 1e-12)


@lru_cache(maxsize=1)
def _frost_textures() -> tuple[np.ndarray, ...]:
    from PIL import Image

    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("frost needs the frost textures of the imagecorruptions package (pip install imagecorruptions)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "frost"
    return tuple(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in sorted(folder.glob("frost*")))


@corruption("gaussian_noise")
def gaussian_noise(x, s, rng):
    return x + rng.normal(size=x.shape, scale=[0.04, 0.06, 0.08, 0.09, 0.10][s - 1])


@corruption("shot_noise")
def shot_noise(x, s, rng):
    c = [500, 250, 100, 75, 50][s - 1]
    return rng.poisson(x * c) / c


@corruption("impulse_noise")
def impulse_noise(x, s, rng):
    amount = [0.01, 0.02, 0.03, 0.05, 0.07][s - 1]
    out = x.copy()
    hit = rng.random(x.shape) < amount
    out[hit] = (rng.random(int(hit.sum())) < 0.5).astype(x.dtype)
    return out


def _disk(radius: float, alias_blur: float) -> np.ndarray:
    """make_cifar_c.py's anti-aliased disk kernel: a 17x17 (or larger) disk, blurred by a 3x3 Gaussian."""
    import cv2

    span = np.arange(-8, 9) if radius <= 8 else np.arange(-int(radius), int(radius) + 1)
    xx, yy = np.meshgrid(span, span)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=(3, 3) if radius <= 8 else (5, 5), sigmaX=alias_blur)


@corruption("defocus_blur")
def defocus_blur(x, s, rng):
    import cv2

    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][s - 1]
    kernel = _disk(radius * _scale(x), alias)
    return np.stack([cv2.filter2D(np.ascontiguousarray(x[..., c]), -1, kernel) for c in range(x.shape[2])], -1)


def _randint(rng, low: int, high: int, size=None):
    """Integers in [low, high) from a numpy Generator or a legacy RandomState (the reference's np.random)."""
    return rng.integers(low, high, size=size) if hasattr(rng, "integers") else rng.randint(low, high, size=size)


@corruption("glass_blur")
def glass_blur(x, s, rng):
    sigma, delta, iterations = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][s - 1]
    sigma *= _scale(x)
    delta = max(1, int(round(delta * _scale(x))))
    out = np.uint8(_blur(x, sigma) * 255)  # the reference shuffles the blurred image as uint8
    h, w = x.shape[:2]
    for _ in range(iterations):
        for i in range(h - delta, delta, -1):
            for j in range(w - delta, delta, -1):
                dx, dy = _randint(rng, -delta, delta, size=(2,))
                ip, jp = i + dy, j + dx
                out[i, j], out[ip, jp] = out[ip, jp].copy(), out[i, j].copy()
    return _blur(out / 255.0, sigma)


@corruption("motion_blur")
def motion_blur(x, s, rng):
    radius, sigma = [(6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)][s - 1]
    k = _scale(x)
    return _motion(x, radius * k, sigma * k, rng.uniform(-45, 45))


@corruption("zoom_blur")
def zoom_blur(x, s, rng):
    factors = np.arange(1, [1.06, 1.11, 1.16, 1.21, 1.26][s - 1], 0.01)
    out = sum(_clipped_zoom(x, f) for f in factors)
    return (x + out) / (len(factors) + 1)


@corruption("snow")
def snow(x, s, rng):
    loc, scale, zoom, thresh, radius, sigma, blend = [
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)][s - 1]
    layer = rng.normal(size=x.shape[:2], loc=loc, scale=scale)[..., None]
    layer = _clipped_zoom(layer, zoom)
    layer[layer < thresh] = 0
    k = _scale(x)
    layer = _motion(np.clip(layer, 0, 1), radius * k, sigma * k, rng.uniform(-135, -45))
    x = blend * x + (1 - blend) * np.maximum(x, _gray(x)[..., None] * 1.5 + 0.5)
    return x + layer + np.rot90(layer, k=2)


@corruption("frost")
def frost(x, s, rng):
    a, b = [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)][s - 1]
    tex = _frost_textures()[int(_randint(rng, 0, 5))]
    f = 0.2 * _scale(x)
    tex = ndimage.zoom(tex, (f, f, 1), order=1)
    h, w = x.shape[:2]
    i, j = _randint(rng, 0, tex.shape[0] - h), _randint(rng, 0, tex.shape[1] - w)
    tex = tex[i : i + h, j : j + w]
    if x.shape[2] == 1:
        tex = _gray(tex)[..., None]
    return a * x + b * tex


@corruption("fog")
def fog(x, s, rng):
    amount, decay = [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][s - 1]
    max_val = x.max()
    h, w = x.shape[:2]
    x = x + amount * _plasma(max(h, w), decay, rng)[:h, :w, None]
    return x * max_val / (max_val + amount)


@corruption("brightness")
def brightness(x, s, rng):
    c = [0.05, 0.1, 0.15, 0.2, 0.3][s - 1]
    v = x.max(axis=2, keepdims=True)
    v_new = np.clip(v + c, 0, 1)
    # raising HSV value with hue and saturation fixed scales every channel by v_new / v (grey where v = 0)
    return np.where(v > 0, x * v_new / np.maximum(v, 1e-12), v_new)


@corruption("contrast")
def contrast(x, s, rng):
    c = [0.75, 0.5, 0.4, 0.3, 0.15][s - 1]
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * c + means


@corruption("elastic_transform")
def elastic_transform(x, s, rng):
    size = min(x.shape[:2])
    alpha, sigma, affine = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)][s - 1]
    alpha, sigma, affine = alpha * size, sigma * size, affine * size
    h, w = x.shape[:2]
    import cv2

    # random affine as in the reference: three points around the centre moved by up to `affine` pixels
    centre, sq = np.float32([h, w]) // 2, min(h, w) // 3
    src = np.float32([centre + sq, [centre[0] + sq, centre[1] - sq], centre - sq])
    dst = src + rng.uniform(-affine, affine, size=src.shape).astype(np.float32)
    mat = cv2.getAffineTransform(src, dst)
    x = cv2.warpAffine(np.ascontiguousarray(x, dtype=np.float32), mat, (w, h), borderMode=cv2.BORDER_REFLECT_101)
    x = x.reshape(h, w, -1)
    dx = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = ndimage.gaussian_filter(rng.uniform(-1, 1, (h, w)), sigma, mode="reflect", truncate=3) * alpha
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = [yy + dy, xx + dx]
    return np.stack([ndimage.map_coordinates(x[..., c], coords, order=1, mode="reflect") for c in range(x.shape[2])], -1)


def _pil(x: np.ndarray):
    from PIL import Image

    arr = np.uint8(np.clip(x, 0, 1) * 255 + 0.5)
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)


def _from_pil(im, channels: int) -> np.ndarray:
    arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[..., None] if arr.ndim == 2 else arr[..., :channels]


@corruption("pixelate")
def pixelate(x, s, rng):
    from PIL import Image

    c = [0.95, 0.9, 0.85, 0.75, 0.65][s - 1]
    h, w = x.shape[:2]
    im = _pil(x).resize((max(1, int(w * c)), max(1, int(h * c))), Image.BOX).resize((w, h), Image.BOX)
    return _from_pil(im, x.shape[2])


@corruption("jpeg_compression")
def jpeg_compression(x, s, rng):
    from PIL import Image

    buf = io.BytesIO()
    _pil(x).save(buf, "JPEG", quality=[80, 65, 58, 50, 40][s - 1])
    return _from_pil(Image.open(buf), x.shape[2])


def corrupt_batch(x, name: str, severity: int, seed: int):
    """Corrupt a (N, C, H, W) tensor in [0,1]; returns a float32 tensor of the same shape in [0,1]."""
    import torch

    if name not in CORRUPTIONS:
        from varmixup_bench.core.errors import BenchError
        from varmixup_bench.core.registry import unknown_name_message

        raise BenchError(unknown_name_message("corruption", name, sorted(CORRUPTIONS)))
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be 1..5, got {severity}")
    rng = np.random.default_rng([seed, severity, sorted(CORRUPTIONS).index(name)])
    imgs = x.detach().cpu().permute(0, 2, 3, 1).numpy().astype(np.float64)
    out = np.stack([np.clip(CORRUPTIONS[name](im, severity, rng), 0, 1) for im in imgs])
    return torch.from_numpy(out.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
