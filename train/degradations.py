"""The random degradations that training pairs are made with: in the spirit of Real-ESRGAN's second-order model.

Training-only, so it lives under train/: the runtime keeps the fixed, named degradations of `upscale eval
--degrade` and the primitives both use (`upscale.degrade`), which this module calls through that module (one
definition of each blur, resize, noise and JPEG step). Every random choice comes from the
``numpy.random.Generator`` passed in, so a degraded image is a pure function of the seed that made the generator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from upscale import bicubic, degrade


@dataclass(frozen=True)
class RealisticSettings:
    """Probabilities and ranges of the training degradations (uniform draws within each range).

    In the spirit of Real-ESRGAN's second-order model, milder: these models are scored by PSNR against
    the clean original and must stay good on clean inputs, so a share of samples is the plain bicubic
    case and the ranges stop where a picture stops being a photo. Sigmas of the first round are in HR
    pixels, of the second in pixels of that round's image.
    """

    p_clean: float = 0.15  # the academic case: MATLAB bicubic downscale only
    # the simple branch (BSRGAN-like, one round in LR pixels): the clean downscale, then blur, noise and JPEG
    # each with its probability, in that order; what most web and phone pictures went through
    p_simple: float = 0.6
    simple_blur: tuple[float, float, float] = (0.3, 0.3, 1.2)  # probability, sigma range (LR pixels)
    simple_noise: tuple[float, float, float] = (0.5, 1.0, 10.0)  # probability, sigma range (8-bit levels)
    simple_jpeg: tuple[float, int, int] = (0.65, 30, 95)  # probability, quality range
    # otherwise the second-order branch (Real-ESRGAN-like), below
    # round 1, at HR resolution
    p_blur: float = 0.8
    blur_sigma: tuple[float, float] = (0.2, 2.0)  # widened by 0.5 per scale above 2 (x4: up to 3.0)
    p_aniso: float = 0.25
    p_generalised: float = 0.15
    beta: tuple[float, float] = (0.5, 4.0)
    p_sinc_blur: float = 0.1
    resize_up: tuple[float, float, float] = (0.2, 1.0, 1.5)  # probability, factor range
    resize_down: tuple[float, float, float] = (0.5, 0.6, 1.0)  # probability, factor range times 1/scale..1
    p_noise: float = 0.6
    p_poisson: float = 0.4
    p_grey_noise: float = 0.4
    noise_sigma: tuple[float, float] = (1.0, 15.0)
    poisson_scale: tuple[float, float] = (0.05, 1.5)
    p_jpeg: float = 0.8
    jpeg_quality: tuple[int, int] = (40, 95)
    # round 2 (with probability p_second), on the image round 1 left
    p_second: float = 0.5
    p_blur2: float = 0.5
    blur2_sigma: tuple[float, float] = (0.2, 1.5)
    p_noise2: float = 0.5
    noise2_sigma: tuple[float, float] = (1.0, 10.0)
    poisson2_scale: tuple[float, float] = (0.05, 1.0)
    # final: resize to HR/scale, sinc with p_final_sinc, JPEG with p_final_jpeg, in random order
    p_final_sinc: float = 0.3
    p_final_jpeg: float = 0.9


REALISTIC = RealisticSettings()


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def random_kernel(rng: np.random.Generator, sigma_range: tuple[float, float], s: RealisticSettings) -> np.ndarray:
    """Isotropic, anisotropic or generalised Gaussian, or a sinc, with random parameters."""
    if rng.random() < s.p_sinc_blur:
        size = int(rng.choice([7, 9, 11, 13, 15, 17, 19, 21]))
        cutoff = _uniform(rng, (math.pi / 3, math.pi)) if size > 11 else _uniform(rng, (math.pi / 4, math.pi))
        return degrade.sinc_kernel(cutoff, size)
    sx = _uniform(rng, sigma_range)
    sy = _uniform(rng, sigma_range) if rng.random() < s.p_aniso + s.p_generalised else sx
    theta = _uniform(rng, (0, math.pi))
    beta = _uniform(rng, s.beta) if rng.random() < s.p_generalised / max(1e-9, s.p_aniso + s.p_generalised) else 1.0
    return degrade.anisotropic_gaussian_kernel(sx, sy, theta, degrade.kernel_size_for(max(sx, sy)), beta)


def _random_noise(x: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float],
                  poisson: tuple[float, float], s: RealisticSettings) -> np.ndarray:
    grey = bool(rng.random() < s.p_grey_noise)
    if rng.random() < s.p_poisson:
        return degrade.poisson_noise(x, _uniform(rng, poisson), rng, grey)
    return degrade.gaussian_noise(x, _uniform(rng, sigma), rng, grey)


def _random_resize(x: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return degrade.resize(x, max(1, height), max(1, width), str(rng.choice(list(degrade.RESIZE_MODES))))


def _simple_lr(hr: np.ndarray, scale: int, rng: np.random.Generator, s: RealisticSettings) -> np.ndarray:
    """The clean downscale, then (each maybe) Gaussian blur, Gaussian noise (colour or grey) and JPEG, in LR."""
    x = bicubic.imresize(hr, 1 / scale).astype(np.float32)
    p_blur, *sigma = s.simple_blur
    if rng.random() < p_blur:
        x = degrade.blur(x, _uniform(rng, (sigma[0], sigma[1])))
    p_noise, *noise = s.simple_noise
    if rng.random() < p_noise:
        x = degrade.gaussian_noise(x, _uniform(rng, (noise[0], noise[1])), rng,
                                   grey=bool(rng.random() < s.p_grey_noise))
    p_jpeg, q_lo, q_hi = s.simple_jpeg
    if rng.random() < p_jpeg:
        x = degrade.jpeg(x, int(rng.integers(q_lo, q_hi + 1)))
    return degrade.to_uint8(x)


def realistic_lr(hr: np.ndarray, scale: int, rng: np.random.Generator,
                 s: RealisticSettings = REALISTIC) -> np.ndarray:
    """A degraded LR image (uint8, HR's size / scale, pixel grid aligned with HR) from a uint8 HR image whose
    sides are multiples of ``scale``. One of three branches: clean (``p_clean``); simple (``p_simple``: the
    clean downscale, then blur, noise, JPEG in LR); or second-order: blur, resize, noise, JPEG at HR scale,
    maybe a second round, then the final resize with sinc ringing and JPEG in random order."""
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    branch = rng.random()
    if branch < s.p_clean:
        return bicubic.imresize(hr, 1 / scale)
    if branch < s.p_clean + s.p_simple:
        return _simple_lr(hr, scale, rng, s)
    x = hr.astype(np.float32)
    widen = 0.5 * (scale - 2)
    if rng.random() < s.p_blur:
        x = degrade.convolve(x, random_kernel(rng, (s.blur_sigma[0], s.blur_sigma[1] + widen), s))
    roll = rng.random()
    p_up, up_lo, up_hi = s.resize_up
    p_down, down_lo, down_hi = s.resize_down
    if roll < p_up:
        factor = _uniform(rng, (up_lo, up_hi))
    elif roll < p_up + p_down:
        factor = _uniform(rng, (down_lo / scale, down_hi))
    else:
        factor = 1.0
    if factor != 1.0:
        x = _random_resize(x, rng, round(hr.shape[0] * factor), round(hr.shape[1] * factor))
    if rng.random() < s.p_noise:
        x = _random_noise(x, rng, s.noise_sigma, s.poisson_scale, s)
    if rng.random() < s.p_jpeg:
        x = degrade.jpeg(x, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)))
    if rng.random() < s.p_second:
        if rng.random() < s.p_blur2:
            x = degrade.convolve(x, random_kernel(rng, s.blur2_sigma, s))
        if rng.random() < s.p_noise2:
            x = _random_noise(x, rng, s.noise2_sigma, s.poisson2_scale, s)
    sinc = degrade.sinc_kernel(_uniform(rng, (math.pi / 3, math.pi)), int(rng.choice([7, 9, 11, 13, 15, 17, 19, 21]))) \
        if rng.random() < s.p_final_sinc else None
    quality = int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)) if rng.random() < s.p_final_jpeg else None
    if rng.random() < 0.5:
        x = _random_resize(x, rng, h, w)
        x = degrade.convolve(x, sinc) if sinc is not None else x
        x = degrade.jpeg(x, quality) if quality is not None else x
    else:
        x = degrade.jpeg(x, quality) if quality is not None else x
        x = _random_resize(x, rng, h, w)
        x = degrade.convolve(x, sinc) if sinc is not None else x
    return degrade.to_uint8(x)
