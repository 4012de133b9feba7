"""Pixel-type conversions, in one place: integer samples to float in [0, 1] for the model and back.

The tiler, the engine (alpha, Lanczos) and the image codecs all convert; they share these so that rounding
is the same everywhere (e.g. 16-bit to 8-bit rounds to the nearest level, never truncates).
"""

from __future__ import annotations

import numpy as np

SAMPLE_PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
"""The value of full intensity for each integer sample type (floats run in [0, 1])."""


def to_unit_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 samples (or floats already in [0, 1]) as float32 in [0, 1]."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) * np.float32(1 / 255)
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(1 / 65535)
    return pixels.astype(np.float32, copy=False)


def from_unit_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clip to [0, 1] and convert to ``dtype`` (uint8/uint16 rounded, floats kept)."""
    values = np.clip(values, 0.0, 1.0)
    if dtype == np.uint8:
        return (values * 255 + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return (values * 65535 + 0.5).astype(np.uint16)
    return values.astype(dtype, copy=False)


def quantise_in_place(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`from_unit_float`'s arithmetic done in ``values``' own memory (a float32 array the caller owns), stopping
    short of the cast: integer ``dtype``s get ``clip(v * peak + 0.5, 0.5, peak + 0.5)``, the very floats
    `from_unit_float` truncates, so a cast into the destination (``np.copyto(..., casting="unsafe")``) gives its
    bytes without the three temporary arrays it allocates; float ``dtype``s get the clip to [0, 1]."""
    peak = SAMPLE_PEAKS.get(np.dtype(dtype))
    if peak is None:
        return np.clip(values, 0.0, 1.0, out=values)
    values *= np.float32(peak)
    values += np.float32(0.5)
    return np.clip(values, np.float32(0.5), np.float32(peak + 0.5), out=values)


def uint16_to_uint8(values: np.ndarray) -> np.ndarray:
    """Round 16-bit samples to the nearest 8-bit level (65535 -> 255)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
