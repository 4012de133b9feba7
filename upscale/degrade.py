"""Degradations of images: the primitives, and the fixed recipes of `upscale eval --degrade`.

The photos people upscale are not clean bicubic shrinks: they are JPEGs, noisy, slightly soft. Models
trained only on bicubic inputs sharpen those artefacts; models trained on synthetic degradations learn to
remove them (Real-ESRGAN, Wang et al. 2021). The trainer's random pipeline (`upscale.train.degradations`) and
the evaluation both use these primitives, so a model is scored on exactly the degradations it was trained
against, by definitions written once.

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
