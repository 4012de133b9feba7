"""Image-quality metrics by the standard super-resolution protocol (one implementation, shared by
`upscale eval` and the trainer's validation): BT.601 luma, borders shaved, PSNR and Gaussian SSIM."""

from __future__ import annotations

import numpy as np


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 image with values in [0, 255], as MATLAB's rgb2ycbcr: [16, 235], float64.

    Like rgb2ycbcr, a uint8 image gives a rounded (8-bit) luma: the published results were computed
    that way, and `upscale eval` reproduces the published bicubic numbers only with it.
    """
    data = rgb.astype(np.float64)
    y = 16.0 + (65.481 * data[..., 0] + 128.553 * data[..., 1] + 24.966 * data[..., 2]) / 255.0
    return np.round(y) if rgb.dtype == np.uint8 else y


def luma(image: np.ndarray) -> np.ndarray:
    """Y of an RGB image; a grey image (HxW or HxWx1) is its own luma, as in the standard protocol."""
    if image.ndim == 3 and image.shape[2] == 3:
        return rgb_to_y(image)
    return image.reshape(image.shape[:2]).astype(np.float64)


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border > 0 else image


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering (no padding), as MATLAB's filter2(..., 'valid')."""
    n = len(taps)
    h, w = image.shape
    rows = sum(taps[k] * image[k : h - n + 1 + k] for k in range(n))
    return sum(taps[k] * rows[:, k : w - n + 1 + k] for k in range(n))


def ssim(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """Mean SSIM of two grey images (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if min(a.shape) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11, got {a.shape}")
    win = _gaussian_window()
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    mu_a, mu_b = _filter_valid(a, win), _filter_valid(b, win)
    var_a = _filter_valid(a * a, win) - mu_a**2
    var_b = _filter_valid(b * b, win) - mu_b**2
    cov = _filter_valid(a * b, win) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def y_psnr_ssim(sr: np.ndarray, hr: np.ndarray, scale: int) -> tuple[float, float]:
    """PSNR and SSIM on the Y channel of two uint8 RGB (or grey) images, ``scale`` pixels shaved."""
    y_sr, y_hr = shave(luma(sr), scale), shave(luma(hr), scale)
    return psnr(y_sr, y_hr), ssim(y_sr, y_hr)
