"""Checks shared by the tests that run other people's files: what an output must be, judged by Pillow alone."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from upscale.formats import register_installed

register_installed()  # HEIF, AVIF and JPEG XL outputs open here as they do for the tool


def pillow_reference(path: Path) -> np.ndarray | None:
    """The picture as Pillow alone decodes and turns it (HxWx4 float, 0-255 scale; 16-bit samples scaled), or None
    where Pillow cannot load it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                upright = ImageOps.exif_transpose(im)
                if upright.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                    grey = np.asarray(upright, dtype=np.float64)
                    grey = grey / 257 if grey.max() > 255 else grey
                    alpha = np.asarray(upright.convert("RGBA"))[..., 3:].astype(np.float64)
                    return np.concatenate([np.repeat(grey[..., None], 3, 2), alpha], axis=2)
                return np.asarray(upright.convert("RGBA"), dtype=np.float64)
    except Exception:
        return None


def output_pixels(path: Path) -> np.ndarray:
    """An output as HxWx4 float on the 0-255 scale (16-bit outputs scaled)."""
    with Image.open(path) as im:
        im.load()
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
            grey = np.asarray(im, dtype=np.float64)
            grey = grey / 257 if grey.max() > 255 else grey
            return np.concatenate([np.repeat(grey[..., None], 3, 2), np.full((*grey.shape, 1), 255.0)], axis=2)
        return np.asarray(im.convert("RGBA"), dtype=np.float64)


def difference_at_source_size(reference: np.ndarray, output: np.ndarray) -> tuple[float, float]:
    """Mean absolute colour (weighted by the source's alpha) and alpha difference between the source and the 2x
    output averaged back over each 2x2 block: a wrong turn, a grey fill or a lost alpha shows as tens of levels,
    the interpolation itself as a few."""
    h, w = reference.shape[:2]
    if output.shape[0] != 2 * h or output.shape[1] != 2 * w:
        return float("inf"), float("inf")
    down = output.reshape(h, 2, w, 2, 4).mean(axis=(1, 3))
    weight = reference[..., 3:] / 255
    colour = float(np.abs((down[..., :3] - reference[..., :3]) * weight).mean())
    return colour, float(np.abs(down[..., 3] - reference[..., 3]).mean())
