"""Upscale one decoded picture: colour through the model, alpha alongside, any final factor.

This is the library's main entry for in-memory work: `upscale_picture` for a `Picture`,
`upscale_pil` for a Pillow image. Files and folders are handled in `job`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import combinations_with_replacement

import numpy as np
from PIL import Image

from .contract import TilingKind
from .images import Picture, as_rgb
from .model import UpscaleModel
from .pixels import SAMPLE_PEAKS, from_unit_float, uint16_to_uint8
from .sizing import SizeRequest, Target, target_for
from .tiling import upscale_arrays


@dataclass(frozen=True)
class UpscaleOptions:
    """How to run the model over an image."""

    factor: float | None = None
    """Overall scale factor; None means the model's own. Other factors run the model as many times as
    needed, then resize with Lanczos to exactly round(W*factor) x round(H*factor)."""
    tile: int | None = None
    """Tile size in input pixels: 0 for the whole image, None for automatic (bounded memory)."""
    batch_size: int | None = None
    """Most equal-shaped windows per model call; None: as many as `tiling.max_batch_pixels` allows (at most
    `tiling.AUTO_BATCH`): two automatic tiles of a large image, dozens of thumbnails."""
    size: SizeRequest | None = None
    """An exact output size instead of a factor (`sizing`): each picture's factor follows from its own size."""

    def __post_init__(self) -> None:
        if self.factor is not None and self.size is not None:
            raise ValueError("--scale and an exact size (--width, --height, --long-side): give one of them")

    def factor_for(self, model_scale: int) -> float:
        """The overall factor a model of ``model_scale`` runs at: ``factor``, else the model's own scale."""
        return self.factor or float(model_scale)

    def target(self, model_scale: int, size: tuple[int, int]) -> Target:
        """What a picture of ``size`` (width, height) becomes: the factor to reach, the resize, the crop."""
        return target_for(size[0], size[1], self.factor_for(model_scale), self.size)


def chain_for(scales: Iterable[int], factor: float) -> tuple[int, ...]:
    """The model passes that reach ``factor`` from the available model ``scales``: the least overshoot first (the
    final resize then shrinks the least, and the passes do the least work), then the fewest passes, larger scales
    first. With x2 and x4: 3x is one x4 pass (not x2 twice), 7.5x is x4 then x2 (not x4 twice), 16x is x4 twice."""
    if factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    usable = sorted({s for s in scales if s > 1}, reverse=True)
    if not usable:
        return (1,)
    longest = max(1, math.ceil(math.log(factor) / math.log(usable[-1]) - 1e-9))
    best: tuple[tuple[float, int], tuple[int, ...]] | None = None
    for length in range(1, longest + 1):
        for chain in combinations_with_replacement(usable, length):  # each in decreasing order: larger first
            reach = math.prod(chain)
            if reach >= factor - 1e-9 and (best is None or (reach, length) < best[0]):
                best = (reach, length), chain
    assert best is not None  # the longest chain of the smallest scale always reaches
    return best[1]


def resize_lanczos(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an HxWxC array of any dtype with Lanczos, in float, keeping the dtype (clipped)."""
    dtype = planes.dtype
    peak = SAMPLE_PEAKS.get(dtype, 1.0)
    channels = []
    for c in range(planes.shape[2]):
        plane = Image.fromarray(planes[..., c].astype(np.float32) / np.float32(peak), "F")
        channels.append(np.asarray(plane.resize((width, height), Image.Resampling.LANCZOS)))
    return from_unit_float(np.stack(channels, axis=2), dtype)


def _tile_option(model: UpscaleModel, options: UpscaleOptions) -> int | None:
    """The tile size to run: the option, except that automatic tiling (None) runs the whole image when the model
    says tiles cannot reproduce it (``tiling: approximate``, e.g. windowed attention), and that a fixed-window
    model always runs in tiles of its window (`tiling.plan_tiles`)."""
    if model.info.fixed_window:
        return options.tile or None  # `tiling.plan_tiles` fits the tiles to the window
    if options.tile is None and model.info.tiling_kind is not TilingKind.EXACT:
        return 0
    return options.tile


def resize_alpha(alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """An alpha plane resized with Lanczos in its own 8- or 16-bit Pillow mode ("L", "I;16"): one integer copy in
    and one out, where a float resize would hold four bytes per pixel twice (docs/memory.md)."""
    if alpha.dtype not in (np.uint8, np.uint16):
        return resize_lanczos(alpha[..., None], width, height)[..., 0]
    resized = Image.fromarray(np.ascontiguousarray(alpha)).resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=alpha.dtype)


def upscale_picture(model: UpscaleModel, picture: Picture, options: UpscaleOptions = UpscaleOptions(),
                    on_pixels: Callable[[int], None] | None = None) -> Picture:
    """Upscale ``picture`` with ``model``; returns a new Picture with the same dtype and metadata.

    Grey images run through the model as three equal channels and come back as their mean; alpha is
    resized with Lanczos (it has no texture for the model to restore). ``on_pixels`` receives the
    input pixels of each finished tile, for progress bars.
    """
    return upscale_pictures(model, [picture], options, on_pixels)[0]


def upscale_pictures(model: UpscaleModel, pictures: list[Picture], options: UpscaleOptions = UpscaleOptions(),
                     on_pixels: Callable[[int], None] | None = None) -> list[Picture]:
    """`upscale_picture` for several pictures at once, their windows of equal shape batched together
    (`tiling.upscale_arrays`): each result is the one the picture gets alone, at a fraction of the calls.
    Pictures whose targets need different factors (exact sizes, `sizing`) run in a group each."""
    targets = [options.target(model.scale, p.size) for p in pictures]
    done: list[Picture | None] = [None] * len(pictures)
    for factor in dict.fromkeys(t.factor for t in targets):
        mine = [i for i, t in enumerate(targets) if t.factor == factor]
        for i, out in zip(mine, _upscale_group(model, [pictures[i] for i in mine], [targets[i] for i in mine],
                                              options, on_pixels), strict=True):
            done[i] = out
    return done  # type: ignore[return-value]


def _upscale_group(model: UpscaleModel, pictures: list[Picture], targets: list[Target], options: UpscaleOptions,
                   on_pixels: Callable[[int], None] | None) -> list[Picture]:
    """Pictures of one factor: the model passes `chain_for` plans (none when it makes nothing larger), then
    `_finish`."""
    factor = targets[0].factor
    if not targets[0].runs_model:
        return [_finish(p, p.pixels, t, t.resize == p.size, _not_run(p, t))
                for p, t in zip(pictures, targets, strict=True)]
    chain = chain_for(model.scales, factor)
    reach = math.prod(chain)
    exact = [factor == reach and t.crop is None and t.resize == (p.size[0] * reach, p.size[1] * reach)
             for p, t in zip(pictures, targets, strict=True)]
    colours = [as_rgb(p.pixels) for p in pictures]
    for i, scale in enumerate(chain):
        runner = model.at_scale(scale)  # the model, or its sibling of this scale (`chain_for`)
        # Between passes and before a final resize, keep 16 bits so no precision is lost on the way.
        dtypes = [p.pixels.dtype if e and i == len(chain) - 1 else np.uint16
                  for p, e in zip(pictures, exact, strict=True)]
        colours = upscale_arrays(runner, colours, scale, runner.info.tile_overlap, _tile_option(runner, options),
                                 options.batch_size, dtypes, on_pixels if i == 0 else None,
                                 runner.info.fixed_window, runner.info.multiple_of)
    return [_finish(p, colour, t, e) for p, colour, t, e in zip(pictures, colours, targets, exact, strict=True)]


def _not_run(picture: Picture, target: Target) -> str:
    """Why the model did not run for a target no larger than the picture."""
    if target.resize == picture.size:
        return "the requested size is the picture's own: the model was not run, the pixels are unchanged"
    return (f"downscale only: {picture.size[0]}x{picture.size[1]} to {target.size[0]}x{target.size[1]} by one "
            "Lanczos resize; the model was not run")


def _finish(picture: Picture, colour: np.ndarray, target: Target, exact: bool, note: str | None = None) -> Picture:
    """Grey back to one channel, the one resize to the target (unless the passes landed on it), the crop of
    ``cover``, alpha alongside."""
    if picture.pixels.shape[2] == 1 and colour.shape[2] == 3:
        colour = np.round(colour.astype(np.float32).mean(axis=2, keepdims=True)).astype(colour.dtype)
    if not exact:
        colour = resize_lanczos(colour, *target.resize)
        if colour.dtype != picture.pixels.dtype:
            colour = _requantise(colour, picture.pixels.dtype)
    alpha = picture.alpha
    if alpha is not None:
        alpha = resize_alpha(alpha, *target.resize)
    if target.crop is not None:
        left, top, right, bottom = target.crop
        colour = np.ascontiguousarray(colour[top:bottom, left:right])
        alpha = None if alpha is None else np.ascontiguousarray(alpha[top:bottom, left:right])
    notes = list(picture.warnings) + ([note] if note else [])
    return replace(picture, pixels=colour, alpha=alpha, warnings=notes)


def _requantise(planes: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if planes.dtype == np.uint16 and dtype == np.uint8:
        return uint16_to_uint8(planes)
    return planes.astype(dtype)


def upscale_pil(model: UpscaleModel, image: Image.Image, options: UpscaleOptions = UpscaleOptions()) -> Image.Image:
    """Upscale a Pillow image (L, LA, RGB, RGBA or 16-bit grey); returns one of the same mode."""
    mode = image.mode
    if mode not in ("L", "LA", "RGB", "RGBA", "I;16"):
        image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
        mode = image.mode
    data = np.asarray(image)
    if data.ndim == 2:
        data = data[..., None]
    has_alpha = mode in ("LA", "RGBA")
    picture = Picture(data[..., :-1] if has_alpha else data, data[..., -1] if has_alpha else None)
    out = upscale_picture(model, picture, options)
    planes = out.pixels if out.alpha is None else np.concatenate([out.pixels, out.alpha[..., None]], axis=2)
    return Image.fromarray(planes[..., 0] if planes.shape[2] == 1 else planes, mode)
