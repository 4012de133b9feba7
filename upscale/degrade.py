"""Degradations of images, in one place: fixed ones for `upscale eval --degrade`, random ones for training.

The photos people upscale are not clean bicubic shrinks: they are JPEGs, noisy, slightly soft. Models
trained only on bicubic inputs sharpen those artefacts; models trained on synthetic degradations learn to
remove them (Real-ESRGAN, Wang et al. 2021). Both the trainer and the evaluation use this module, so a
model is scored on exactly the degradations it was trained against, by definitions written once.

numpy and Pillow only (no torch): `upscale eval` is part of the runtime. Images are float32 arrays in
8-bit levels (0-255) while they are worked on, HxWxC (C = 3 or 1); `jpeg` and the pipelines round and clip
to uint8 where a real file would. Every random choice comes from the ``numpy.random.Generator`` passed in,
so a degraded image is a pure function of the seed that made the generator.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .bicubic import imresize

# --- kernels ------------------------------------------------------------------------------------------------


def kernel_size_for(sigma: float, largest: int = 21) -> int:
    """Odd kernel side covering +-3 sigma (at most ``largest``)."""
    return min(largest, 2 * math.ceil(3 * sigma) + 1)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = size // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    return xx, yy


def gaussian_kernel(sigma: float, size: int | None = None) -> np.ndarray:
    """Isotropic Gaussian, normalised to sum 1."""
    return anisotropic_gaussian_kernel(sigma, sigma, 0.0, size or kernel_size_for(sigma))


def anisotropic_gaussian_kernel(sigma_x: float, sigma_y: float, theta: float, size: int,
                                beta: float = 1.0) -> np.ndarray:
    """exp(-0.5 (d' S^-1 d)^beta) with S = R diag(sx^2, sy^2) R', normalised. ``beta`` 1 is the Gaussian;
    other values give the generalised Gaussian of Real-ESRGAN (flat-topped above 1, heavy-tailed below)."""
    if size % 2 == 0:
        raise ValueError(f"kernel size must be odd, got {size}")
    c, s = math.cos(theta), math.sin(theta)
    rot = np.array([[c, -s], [s, c]])
    inverse = np.linalg.inv(rot @ np.diag([sigma_x**2, sigma_y**2]) @ rot.T)
    xx, yy = _grid(size)
    d = np.stack([xx, yy], axis=-1)
    quad = np.einsum("...i,ij,...j->...", d, inverse, d)
    k = np.exp(-0.5 * quad**beta)
    return (k / k.sum()).astype(np.float32)


def sinc_kernel(cutoff: float, size: int) -> np.ndarray:
    """Circular ideal low-pass of angular ``cutoff`` (radians per pixel, pi = no filtering), cut to ``size``.

    Made in the frequency domain (a disc) and brought back with an inverse FFT, then normalised; it gives
    the ringing and overshoot that real resampling and sharpening leave.
    """
    n = 64
    f = np.fft.fftfreq(n) * 2 * np.pi
    disc = (np.hypot(*np.meshgrid(f, f)) <= cutoff).astype(np.float64)
    k = np.fft.fftshift(np.real(np.fft.ifft2(disc)))
    r = size // 2
    k = k[n // 2 - r : n // 2 + r + 1, n // 2 - r : n // 2 + r + 1]
    return (k / k.sum()).astype(np.float32)


# --- primitives ---------------------------------------------------------------------------------------------


def _planes(image: np.ndarray) -> np.ndarray:
    return image[..., None] if image.ndim == 2 else image


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """2-D convolution of every channel with mirrored (reflect) borders, by FFT; float32, same shape."""
    x = _planes(image).astype(np.float32)
    r = kernel.shape[0] // 2
    padded = np.pad(x, ((r, r), (r, r), (0, 0)), mode="reflect" if min(x.shape[:2]) > r else "edge")
    h, w = padded.shape[:2]
    k = np.zeros((h, w), np.float32)
    k[: kernel.shape[0], : kernel.shape[1]] = kernel
    k = np.roll(k, (-r, -r), axis=(0, 1))  # centre at the origin: no shift
    out = np.fft.irfft2(np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(k)[..., None], s=(h, w), axes=(0, 1))
    out = out[r : h - r, r : w - r].astype(np.float32)
    return out[..., 0] if image.ndim == 2 else out


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels."""
    return image.astype(np.float32) if sigma <= 0 else convolve(image, gaussian_kernel(sigma))


RESIZE_MODES = {"area": Image.Resampling.BOX, "bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC}


def resize(image: np.ndarray, height: int, width: int, mode: str = "bicubic") -> np.ndarray:
    """Resize each channel in float (Pillow's antialiased filters, pixel centres aligned); float32."""
    x = _planes(image).astype(np.float32)
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(x[..., c]), "F").resize((width, height),
                                                                                    RESIZE_MODES[mode]))
              for c in range(x.shape[2])]
    out = np.stack(planes, axis=2)
    return out[..., 0] if image.ndim == 2 else out


def gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    """Add N(0, sigma^2) in 8-bit levels, independently per channel or (``grey``) the same in all channels."""
    x = _planes(image).astype(np.float32)
    shape = (*x.shape[:2], 1) if grey else x.shape
    out = x + rng.standard_normal(shape, dtype=np.float32) * sigma
    return out[..., 0] if image.ndim == 2 else out


def poisson_noise(image: np.ndarray, scale: float, rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    """Shot noise: (Poisson(x) - x) * scale, x in 8-bit levels, so its deviation is scale * sqrt(x) levels
    (brighter is noisier, as on a sensor). ``grey`` draws it from the luma and adds it to every channel."""
    x = _planes(image).astype(np.float32)
    base = np.clip(x.mean(axis=2, keepdims=True) if grey else x, 0, None)
    noise = (rng.poisson(base).astype(np.float32) - base) * scale
    out = x + noise
    return out[..., 0] if image.ndim == 2 else out


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round, clip, save as JPEG at ``quality`` with Pillow's defaults (4:2:0 for colour), decode; float32."""
    x = to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(x[..., 0] if x.ndim == 3 and x.shape[2] == 1 else x).save(buffer, "JPEG", quality=int(quality))
    with Image.open(buffer) as im:
        out = np.asarray(im).astype(np.float32)
    return out.reshape(image.shape)


# --- fixed degradations: `upscale eval --degrade SPEC` ---------------------------------------------------------

SPEC_HELP = ("clean, jpeg:Q (Pillow, default subsampling), noise:SIGMA (Gaussian, 8-bit levels), blur:SIGMA "
             "(Gaussian, LR pixels), chained with + in the order applied, e.g. blur:0.8+jpeg:80")


@dataclass(frozen=True)
class Step:
    kind: str  # jpeg, noise or blur
    value: float


def parse_spec(spec: str) -> tuple[Step, ...]:
    """``"blur:0.8+jpeg:80"`` -> (Step("blur", 0.8), Step("jpeg", 80)); ``"clean"`` -> (). ValueError if bad."""
    spec = spec.strip()
    if spec == "clean":
        return ()
    steps = []
    for part in spec.split("+"):
        kind, sep, value = part.strip().partition(":")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or kind not in ("jpeg", "noise", "blur") or not math.isfinite(number):
            raise ValueError(f"bad degradation {part!r} in {spec!r}: expected {SPEC_HELP}")
        if kind == "jpeg" and not (1 <= number <= 100 and number == int(number)):
            raise ValueError(f"bad degradation {part!r}: JPEG quality is an integer from 1 to 100")
        if kind != "jpeg" and number < 0:
            raise ValueError(f"bad degradation {part!r}: sigma must be >= 0")
        steps.append(Step(kind, number))
    return tuple(steps)


def image_seed(name: str) -> int:
    """The noise seed of one image: a function of its name only, so every model sees the same noise."""
    return zlib.crc32(name.encode())


def apply_spec(lr: np.ndarray, steps: tuple[Step, ...], seed: int) -> np.ndarray:
    """Apply fixed degradations to a uint8 LR image (HxWx3 or HxW), in order; uint8 out, same shape."""
    if not steps:
        return lr
    rng = np.random.default_rng(seed)
    x = lr.astype(np.float32)
    for step in steps:
        if step.kind == "jpeg":
            x = jpeg(x, int(step.value))
        elif step.kind == "noise":
            x = to_uint8(gaussian_noise(x, step.value, rng)).astype(np.float32)  # rounded and clipped
        else:
            x = blur(x, step.value)
    return to_uint8(x)


# --- the random pipeline for training --------------------------------------------------------------------------


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
        return sinc_kernel(_uniform(rng, (math.pi / 3, math.pi)) if size > 11 else _uniform(rng, (math.pi / 4,
                                                                                                   math.pi)), size)
    sx = _uniform(rng, sigma_range)
    sy = _uniform(rng, sigma_range) if rng.random() < s.p_aniso + s.p_generalised else sx
    theta = _uniform(rng, (0, math.pi))
    beta = _uniform(rng, s.beta) if rng.random() < s.p_generalised / max(1e-9, s.p_aniso + s.p_generalised) else 1.0
    return anisotropic_gaussian_kernel(sx, sy, theta, kernel_size_for(max(sx, sy)), beta)


def _random_noise(x: np.ndarray, rng: np.random.Generator, sigma: tuple[float, float],
                  poisson: tuple[float, float], s: RealisticSettings) -> np.ndarray:
    grey = bool(rng.random() < s.p_grey_noise)
    if rng.random() < s.p_poisson:
        return poisson_noise(x, _uniform(rng, poisson), rng, grey)
    return gaussian_noise(x, _uniform(rng, sigma), rng, grey)


def _random_resize(x: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return resize(x, max(1, height), max(1, width), str(rng.choice(list(RESIZE_MODES))))


def _simple_lr(hr: np.ndarray, scale: int, rng: np.random.Generator, s: RealisticSettings) -> np.ndarray:
    """The clean downscale, then (each maybe) Gaussian blur, Gaussian noise (colour or grey) and JPEG, in LR."""
    x = imresize(hr, 1 / scale).astype(np.float32)
    p_blur, *sigma = s.simple_blur
    if rng.random() < p_blur:
        x = blur(x, _uniform(rng, (sigma[0], sigma[1])))
    p_noise, *noise = s.simple_noise
    if rng.random() < p_noise:
        x = gaussian_noise(x, _uniform(rng, (noise[0], noise[1])), rng, grey=bool(rng.random() < s.p_grey_noise))
    p_jpeg, q_lo, q_hi = s.simple_jpeg
    if rng.random() < p_jpeg:
        x = jpeg(x, int(rng.integers(q_lo, q_hi + 1)))
    return to_uint8(x)


def realistic_lr(hr: np.ndarray, scale: int, rng: np.random.Generator,
                 s: RealisticSettings = REALISTIC) -> np.ndarray:
    """A degraded LR image (uint8, HR's size / scale, pixel grid aligned with HR) from a uint8 HR image whose
    sides are multiples of ``scale``. One of three branches: clean (``p_clean``); simple (``p_simple``: the
    clean downscale, then blur, noise, JPEG in LR); or second-order: blur, resize, noise, JPEG at HR scale,
    maybe a second round, then the final resize with sinc ringing and JPEG in random order."""
    h, w = hr.shape[0] // scale, hr.shape[1] // scale
    branch = rng.random()
    if branch < s.p_clean:
        return imresize(hr, 1 / scale)
    if branch < s.p_clean + s.p_simple:
        return _simple_lr(hr, scale, rng, s)
    x = hr.astype(np.float32)
    widen = 0.5 * (scale - 2)
    if rng.random() < s.p_blur:
        x = convolve(x, random_kernel(rng, (s.blur_sigma[0], s.blur_sigma[1] + widen), s))
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
        x = jpeg(x, int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)))
    if rng.random() < s.p_second:
        if rng.random() < s.p_blur2:
            x = convolve(x, random_kernel(rng, s.blur2_sigma, s))
        if rng.random() < s.p_noise2:
            x = _random_noise(x, rng, s.noise2_sigma, s.poisson2_scale, s)
    sinc = sinc_kernel(_uniform(rng, (math.pi / 3, math.pi)), int(rng.choice([7, 9, 11, 13, 15, 17, 19, 21]))) \
        if rng.random() < s.p_final_sinc else None
    quality = int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)) if rng.random() < s.p_final_jpeg else None
    if rng.random() < 0.5:
        x = _random_resize(x, rng, h, w)
        x = convolve(x, sinc) if sinc is not None else x
        x = jpeg(x, quality) if quality is not None else x
    else:
        x = jpeg(x, quality) if quality is not None else x
        x = _random_resize(x, rng, h, w)
        x = convolve(x, sinc) if sinc is not None else x
    return to_uint8(x)
