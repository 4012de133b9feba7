"""Evidence of degradation in an image, cheap enough to gather for every file: what `--model auto` decides on.

- A JPEG says how hard it was compressed: its quantisation tables are the IJG tables scaled by the quality
  setting (or close to them); the quality whose scaled table is nearest estimates it.
- For other files the pixels must speak: noise in the flattest blocks (Immerkaer's 3x3 operator, which
  cancels smooth image structure and keeps white noise) and blockiness (the step across 8x8 block
  boundaries against the steps inside blocks, in the flatter half of the blocks: about 1 for an image that
  never was a JPEG, well above it for a JPEG decoded and saved again as PNG).

Both work on a subsample of at most ~1 MP of the luma, a few milliseconds against the hundreds the model
takes on the same image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# The example luminance table of the JPEG standard (ITU T.81, Annex K.1), natural (row-major) order, which is
# how Pillow reports tables; libjpeg's quality setting scales it.
_IJG_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], np.int64)


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes at ``quality`` (1-100)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_IJG_LUMA * scale + 50) // 100, 1, 255)


_TABLES = np.stack([ijg_table(q) for q in range(1, 101)])


def jpeg_quality(quantization: dict[int, list[int]] | None) -> int | None:
    """Estimated quality (1-100) from a JPEG's quantisation tables (Pillow's ``im.quantization``)."""
    if not quantization or 0 not in quantization or len(quantization[0]) != 64:
        return None
    luma = np.asarray(quantization[0], np.int64)
    return int(np.argmin(np.abs(_TABLES - luma).sum(axis=1))) + 1


def _planes(pixels: np.ndarray, max_pixels: int = 1_000_000) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Float luma and chroma (Cb, Cr; BT.601, 8-bit levels; none for a grey picture) of a crop of at most
    ``max_pixels``, the file's 8x8 block grid kept (the crop is centred and 8-aligned)."""
    h, w = pixels.shape[:2]
    side = int(math.sqrt(max_pixels)) // 8 * 8
    if h * w > max_pixels:
        top, left = max(0, (h - side) // 16 * 8), max(0, (w - side) // 16 * 8)
        pixels = pixels[top : top + side, left : left + side]
    x = pixels.astype(np.float32)
    if pixels.dtype == np.uint16:
        x /= 257
    if x.shape[2] < 3:
        return x[..., 0], ()
    rgb = x[..., :3]
    return rgb @ _LUMA, (rgb @ _CB, rgb @ _CR)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_CB = np.array([-0.168736, -0.331264, 0.5], np.float32)
_CR = np.array([0.5, -0.418688, -0.081312], np.float32)


def noise_level(luma: np.ndarray, block: int = 8, percentile: float = 5) -> float:
    """Noise in the flattest parts of the image, in 8-bit levels.

    Immerkaer's operator M = [[1,-2,1],[-2,4,-2],[1,-2,1]] cancels smooth structure; sqrt(pi/2)/6 * mean |I*M|
    estimates a white noise's sigma. Over a whole picture texture leaks in (clean photos read 2-7), so it is
    taken per 8x8 block and the 5th percentile kept: the flat blocks, where only noise is left (clean photos
    0.2-1.8, Gaussian sigma 5 reads 2.5-3.7: it underestimates, but it ranks).
    """
    if min(luma.shape) < block + 2:
        return 0.0
    c = luma[1:-1, 1:-1]
    m = np.abs(luma[:-2, :-2] + luma[:-2, 2:] + luma[2:, :-2] + luma[2:, 2:]
               - 2 * (luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:]) + 4 * c)
    h, w = m.shape[0] // block, m.shape[1] // block
    blocks = m[: h * block, : w * block].reshape(h, block, w, block).mean(axis=(1, 3))
    return float(math.sqrt(math.pi / 2) / 6 * np.percentile(blocks, percentile))


_STEP_FLOOR = 0.25
"""Levels added to the steps inside blocks: in near-flat blocks (sky) rounding alone would make ratios large."""


def blockiness(luma: np.ndarray) -> float:
    """The 8x8 grid's mark on the flatter half of the picture; 1 = none.

    Per 8x8 block, the mean |step| across its right (or lower) boundary over the mean |step| inside it; over the
    half of the blocks with the least activity inside, where JPEG's blocking shows and texture does not (on
    textured pictures the mean over all blocks drifts by chance: clean 100-pixel photos read up to 1.09);
    the smaller of the two directions, since a JPEG grid marks both. On BSDS500's test images at 1/2 to 1/6
    size, clean pictures read below 1.3 in 90-93% of cases, JPEG at quality 50 decoded to pixels above it in 94-
    100% (benchmarks/auto_rates.py)."""
    if min(luma.shape) < 16:
        return 1.0
    ratios = []
    for steps in (np.abs(np.diff(luma, axis=1)), np.abs(np.diff(luma, axis=0)).T):
        h, w = steps.shape[0] // 8 * 8, steps.shape[1] // 8 * 8
        blocks = steps[:h, :w].reshape(h // 8, 8, w // 8, 8)  # band, row, block, column within the block
        inside = blocks[..., :7].mean(axis=(1, 3))  # steps between columns 0..7 of each block
        across = blocks[..., 7].mean(axis=1)  # the step from column 7 to the next block's column 0
        flat = inside <= np.median(inside)
        ratios.append(float(across[flat].mean() / (inside[flat].mean() + _STEP_FLOOR)))
    return min(ratios)


@dataclass(frozen=True)
class Evidence:
    jpeg_quality: int | None  # estimated from the file's quantisation tables; None if not a JPEG
    noise: float  # `noise_level` of the luma, 8-bit levels
    blockiness: float  # 1 = no 8x8 grid
    blocks: int = 16_384  # 8x8 blocks measured: fewer make the readings less sure (`upscale.auto` asks more)
    colour_noise: float | None = None  # `noise_level` of Cb and Cr, the larger; None for grey pictures

    def describe(self) -> str:
        jpeg = f"JPEG q~{self.jpeg_quality}, " if self.jpeg_quality is not None else ""
        return f"{jpeg}noise {self.noise:.1f}, blockiness {self.blockiness:.2f}"


def gather(pixels: np.ndarray, quality: int | None) -> Evidence:
    luma, chroma = _planes(pixels)
    colour_noise = max(noise_level(plane) for plane in chroma) if chroma else None
    return Evidence(quality, noise_level(luma), blockiness(luma), (luma.shape[0] // 8) * (luma.shape[1] // 8),
                    colour_noise)
