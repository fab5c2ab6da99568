"""Generated corruptions against make_cifar_c.py (Hendrycks & Dietterich) on fixed noise.

Each reference below is a transcription of the formula in make_cifar_c.py at 32x32, drawing its noise from
np.random exactly as the reference does; the harness's function gets a RandomState with the same seed (it
accepts one wherever the reference uses np.random), so both see the same draws and must agree."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from varmixup_bench.attacks import corruptions as C

SEVERITIES = [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def img():
    rs = np.random.RandomState(123)
    base = ndimage.gaussian_filter(rs.rand(32, 32, 3), (2, 2, 0))  # an image-like, smooth input
    return np.uint8((base - base.min()) / (base.max() - base.min()) * 255) / 255.0


def _ref_plasma(rs, mapsize=32, wibbledecay=3.0):
    m = np.zeros((mapsize, mapsize))
    step, wibble = mapsize, 100.0

    def wibbled(arr):
        return arr / 4 + wibble * rs.uniform(-wibble, wibble, arr.shape)

    while step >= 2:
        h = step // 2
        corner = m[0:mapsize:step, 0:mapsize:step]
        acc = corner + np.roll(corner, -1, axis=0)
        acc = acc + np.roll(acc, -1, axis=1)
        m[h:mapsize:step, h:mapsize:step] = wibbled(acc)
        dr, ul = m[h:mapsize:step, h:mapsize:step], m[0:mapsize:step, 0:mapsize:step]
        m[0:mapsize:step, h:mapsize:step] = wibbled(dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1))
        m[h:mapsize:step, 0:mapsize:step] = wibbled(dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0))
        step //= 2
        wibble /= wibbledecay
    m -= m.min()
    return m / m.max()


def _ref_fog(x, s, rs):
    amount, decay = [(.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)][s - 1]
    max_val = x.max()
    x = x + amount * _ref_plasma(rs, wibbledecay=decay)[:32, :32][..., None]
    return np.clip(x * max_val / (max_val + amount), 0, 1)


@pytest.mark.parametrize("s", SEVERITIES)
def test_fog_matches_make_cifar_c(img, s):
    ours = np.clip(C.fog(img, s, np.random.RandomState(7)), 0, 1)
    np.testing.assert_allclose(ours, _ref_fog(img, s, np.random.RandomState(7)), atol=1e-9)


def test_plasma_roughness_uses_wibble_times_uniform_wibble():
    # the old U(-1, 1) version is a different (rougher) field: it must not pass
    ref = _ref_plasma(np.random.RandomState(0), 32, 2.0)
    ours = C._plasma(32, 2.0, np.random.RandomState(0))
    np.testing.assert_allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize("s", SEVERITIES)
def test_noise_corruptions_match_make_cifar_c(img, s):
    c = [0.04, 0.06, .08, .09, .10][s - 1]
    rs = np.random.RandomState(1)
    ref = np.clip(img + rs.normal(size=img.shape, scale=c), 0, 1)
    np.testing.assert_allclose(np.clip(C.gaussian_noise(img, s, np.random.RandomState(1)), 0, 1), ref)
    c = [500, 250, 100, 75, 50][s - 1]
    ref = np.clip(np.random.RandomState(2).poisson(img * c) / c, 0, 1)
    np.testing.assert_allclose(np.clip(C.shot_noise(img, s, np.random.RandomState(2)), 0, 1), ref)


@pytest.mark.parametrize("s", SEVERITIES)
def test_impulse_noise_has_skimage_salt_and_pepper_statistics(s):
    from skimage.util import random_noise

    grey = np.full((64, 64, 3), 0.5)
    amount = [.01, .02, .03, .05, .07][s - 1]
    ours = C.impulse_noise(grey, s, np.random.default_rng(0))
    ref = random_noise(grey, mode="s&p", amount=amount, rng=0)
    # each value is salt or pepper with probability amount / 2: within 4 binomial SDs of it (and of skimage's
    # fraction), tight enough that the next severity's amount (7 SDs away at severity 1) fails
    sd = (amount / 2 * (1 - amount / 2) / grey.size) ** 0.5
    for value in (0.0, 1.0):
        assert abs((ours == value).mean() - amount / 2) < 4 * sd
        assert abs((ours == value).mean() - (ref == value).mean()) < 4 * 2 ** 0.5 * sd


@pytest.mark.parametrize("s", SEVERITIES)
def test_contrast_and_brightness_match_make_cifar_c(img, s):
    import skimage.color

    c = [.75, .5, .4, .3, 0.15][s - 1]
    means = img.mean(axis=(0, 1), keepdims=True)
    np.testing.assert_allclose(np.clip(C.contrast(img, s, None), 0, 1), np.clip((img - means) * c + means, 0, 1))
    c = [.05, .1, .15, .2, .3][s - 1]
    hsv = skimage.color.rgb2hsv(img)
    hsv[:, :, 2] = np.clip(hsv[:, :, 2] + c, 0, 1)
    ref = np.clip(skimage.color.hsv2rgb(hsv), 0, 1)
    np.testing.assert_allclose(np.clip(C.brightness(img, s, None), 0, 1), ref, atol=1e-7)


@pytest.mark.parametrize("s", SEVERITIES)
def test_defocus_blur_matches_make_cifar_c(img, s):
    import cv2

    radius, alias = [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)][s - 1]
    span = np.arange(-8, 9)
    xx, yy = np.meshgrid(span, span)
    disk = np.array((xx**2 + yy**2) <= radius**2, dtype=np.float32)
    kernel = cv2.GaussianBlur(disk / disk.sum(), ksize=(3, 3), sigmaX=alias)
    ref = np.clip(np.stack([cv2.filter2D(img[:, :, d], -1, kernel) for d in range(3)], -1), 0, 1)
    np.testing.assert_allclose(np.clip(C.defocus_blur(img, s, None), 0, 1), ref, atol=1e-6)


def _ref_clipped_zoom(im, f):
    h = im.shape[0]
    ch = int(np.ceil(h / f))
    top = (h - ch) // 2
    im = ndimage.zoom(im[top:top + ch, top:top + ch], (f, f, 1), order=1)
    trim = (im.shape[0] - h) // 2
    return im[trim:trim + h, trim:trim + h]


@pytest.mark.parametrize("s", SEVERITIES)
def test_zoom_blur_matches_make_cifar_c(img, s):
    factors = np.arange(1, [1.06, 1.11, 1.16, 1.21, 1.26][s - 1], 0.01)
    out = sum(_ref_clipped_zoom(img, f) for f in factors)
    ref = np.clip((img + out) / (len(factors) + 1), 0, 1)
    np.testing.assert_allclose(np.clip(C.zoom_blur(img, s, None), 0, 1), ref, atol=1e-6)


@pytest.mark.parametrize("s", SEVERITIES)
def test_glass_blur_matches_make_cifar_c(img, s):
    from skimage.filters import gaussian

    sigma, delta, iters = [(0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)][s - 1]
    rs = np.random.RandomState(3)
    x = np.uint8(gaussian(img, sigma=sigma, channel_axis=-1) * 255)
    for _ in range(iters):
        for h in range(32 - delta, delta, -1):
            for w in range(32 - delta, delta, -1):
                dx, dy = rs.randint(-delta, delta, size=(2,))
                x[h, w], x[h + dy, w + dx] = x[h + dy, w + dx].copy(), x[h, w].copy()
    ref = np.clip(gaussian(x / 255., sigma=sigma, channel_axis=-1), 0, 1)
    np.testing.assert_allclose(np.clip(C.glass_blur(img, s, np.random.RandomState(3)), 0, 1), ref, atol=1e-6)


@pytest.mark.parametrize("s", SEVERITIES)
def test_elastic_transform_matches_make_cifar_c(img, s):
    import cv2

    c = [(0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)][s - 1]
    c = [v * 32 for v in c]
    rs = np.random.RandomState(5)
    image = img.astype(np.float32)
    centre, sq = np.float32((32, 32)) // 2, 32 // 3
    pts1 = np.float32([centre + sq, [centre[0] + sq, centre[1] - sq], centre - sq])
    pts2 = pts1 + rs.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    image = cv2.warpAffine(image, cv2.getAffineTransform(pts1, pts2), (32, 32), borderMode=cv2.BORDER_REFLECT_101)
    dx = ndimage.gaussian_filter(rs.uniform(-1, 1, size=(32, 32)), c[1], mode="reflect", truncate=3) * c[0]
    dy = ndimage.gaussian_filter(rs.uniform(-1, 1, size=(32, 32)), c[1], mode="reflect", truncate=3) * c[0]
    x, y, z = np.meshgrid(np.arange(32), np.arange(32), np.arange(3))
    idx = (np.reshape(y + dy[..., None], (-1, 1)), np.reshape(x + dx[..., None], (-1, 1)), np.reshape(z, (-1, 1)))
    ref = np.clip(ndimage.map_coordinates(image, idx, order=1, mode="reflect").reshape(32, 32, 3), 0, 1)
    np.testing.assert_allclose(np.clip(C.elastic_transform(img, s, np.random.RandomState(5)), 0, 1), ref, atol=1e-5)


@pytest.mark.parametrize("s", SEVERITIES)
def test_pixelate_and_jpeg_match_make_cifar_c(img, s):
    import io

    from PIL import Image

    pil = Image.fromarray(np.uint8(np.round(img * 255)))
    c = [0.95, 0.9, 0.85, 0.75, 0.65][s - 1]
    ref = np.asarray(pil.resize((int(32 * c), int(32 * c)), Image.BOX).resize((32, 32), Image.BOX)) / 255.0
    np.testing.assert_allclose(C.pixelate(img, s, None), ref, atol=1e-6)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=[80, 65, 58, 50, 40][s - 1])
    ref = np.asarray(Image.open(buf)) / 255.0
    np.testing.assert_allclose(C.jpeg_compression(img, s, None), ref, atol=1e-6)
