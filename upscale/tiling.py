"""Tiled inference: pure geometry first, then one loop that runs equal-shaped tiles in batches.

A tile is a *core* box of at most ``tile`` x ``tile`` input pixels that it owns in the output, and a
*window* around it, ``overlap`` pixels wider on each side, that the model actually sees. When
``overlap`` is at least the model's receptive-field radius, every owned output pixel sees exactly the
input it would see in whole-image inference, so tiles join without seams. Windows are shifted inward
at the image borders rather than cut, so (almost) all windows share one shape and can be batched.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .pixels import SAMPLE_PEAKS, quantise_in_place, to_unit_float

AUTO_TILE = 384
"""Largest tile side used by ``tile=None``; each axis is then cut into equal tiles no larger than this,
so a 640-pixel side becomes two 320-pixel tiles rather than 384 + 256, and a side of up to 384 pixels is never
cut at all. 384 (not larger) so that two windows fit `MAX_BATCH_PIXELS`, one per CPU lane: memory stays bounded
(the memory bound) for 3% more overlap computed than 512-pixel tiles."""

ModelCall = Callable[[np.ndarray], np.ndarray]
"""A model as tiling sees it: (N,3,h,w) float32 in [0,1] to (N,3,h*scale,w*scale)."""


@dataclass(frozen=True)
class Span:
    """One axis of a tile: the window [lo, hi) the model sees and the core [core_lo, core_hi) it owns."""

    lo: int
    hi: int
    core_lo: int
    core_hi: int


@dataclass(frozen=True)
class Tile:
    rows: Span
    cols: Span

    @property
    def window_shape(self) -> tuple[int, int]:
        return self.rows.hi - self.rows.lo, self.cols.hi - self.cols.lo


def axis_spans(size: int, tile: int, overlap: int, grid: int = 1) -> list[Span]:
    """Cut one axis of ``size`` pixels into cores of ``tile`` pixels with windows of ``tile + 2*overlap``.

    With a ``grid`` above 1 (a model that pads itself to a size multiple and computes over blocks of it: patch
    attention, windows, strided stages), cores, overlaps and window starts are multiples of the grid, so every
    window sees the blocks the whole image would: a window started between two grid lines would cut the model's
    blocks elsewhere and change its output however wide the overlap. Windows that reach the far edge end there
    (a few pixels longer than the others at most) instead of being shifted off the grid."""
    if size < 1 or tile < 1 or overlap < 0 or grid < 1:
        raise ValueError(f"bad tiling: size={size} tile={tile} overlap={overlap} grid={grid}")
    tile, overlap = _up_to(tile, grid), _up_to(overlap, grid)
    window = min(size, tile + 2 * overlap)
    spans = []
    for core_lo in range(0, size, tile):
        core_hi = min(size, core_lo + tile)
        lo = min(max(core_lo - overlap, 0), (size - window) // grid * grid)
        hi = min(size, max(lo + window, core_hi + overlap))
        spans.append(Span(lo, hi, core_lo, core_hi))
    return spans


def _up_to(n: int, grid: int) -> int:
    return -(-n // grid) * grid


def plan_tiles(height: int, width: int, tile: int | None, overlap: int, scale: int = 2,
               fixed_window: int = 0, grid: int = 1) -> list[Tile]:
    """All tiles of an image; ``tile`` of 0 means one tile for the whole image, None the automatic size
    (`auto_tile` of the model's ``scale``), a number tiles of at most that side. For a model whose graph takes
    one ``fixed_window`` side, cores are that window less the overlaps, and windows the whole window (shifted
    inward at the far border) wherever the image is large enough: padding inside an image would change what the
    model sees. ``grid``: the model's size multiple, which windows start on (`axis_spans`)."""
    if fixed_window:
        core = max(1, fixed_window - 2 * overlap)
        core = min(core, tile) if tile else core
        return [Tile(r, c) for r in axis_spans(height, core, overlap) for c in axis_spans(width, core, overlap)]
    rows = axis_spans(height, _tile_for(height, tile, scale), overlap, grid)
    cols = axis_spans(width, _tile_for(width, tile, scale), overlap, grid)
    return [Tile(r, c) for r in rows for c in cols]


def auto_tile(scale: int) -> int:
    """Largest automatic tile side: `AUTO_TILE` at 2x; smaller for larger scales, whose networks hold more per
    input pixel (the 4x model: 64 channels and 48 before the pixel shuffle, against 32 and 12), so that two
    windows still fit `max_batch_pixels` (one per CPU lane)."""
    return AUTO_TILE if scale <= 2 else round(AUTO_TILE * math.sqrt(2 / scale) / 8) * 8


def max_batch_pixels(scale: int) -> int:
    """`MAX_BATCH_PIXELS` at 2x, scaled down for larger scales as `auto_tile` is."""
    return MAX_BATCH_PIXELS if scale <= 2 else MAX_BATCH_PIXELS * 2 // scale


def _tile_for(size: int, tile: int | None, scale: int) -> int:
    """The core side along one axis: equal tiles of at most ``tile`` (or `auto_tile`), the whole axis for 0.

    Equal, because windows keep one shape (batched, shifted inward at the far border): cutting 1072 rows at
    1024 made a 48-row core that still paid for a whole 1048-row window (2.2x the image's pixels computed
    for --tile 1024 on a 2000x1072 photo, against 1.07x for two 536-row tiles; benchmarks/engine_map.py)."""
    limit = auto_tile(scale) if tile is None else tile or size
    return math.ceil(size / math.ceil(size / limit))


MAX_BATCH_PIXELS = 2 * 408 * 408
"""Most window pixels run in one batch: onnxruntime's working set grows with them (about 0.65 KB per window
pixel for the 32-channel default model), so this bounds it near 220 MB, while two automatic tiles (384 + 2x12
overlap) still fill the two CPU lanes (benchmarks/memory.py)."""


AUTO_BATCH = 64
"""Most windows in a batch when ``batch_size`` is automatic (None): small ones (thumbnails, sprites) fill it,
large ones are held to `max_batch_pixels` first (two automatic tiles)."""


def tile_batches(tiles: list[Tile], batch_size: int | None, max_pixels: int = MAX_BATCH_PIXELS,
                 lanes: int = 1) -> Iterator[list[Tile]]:
    """Tiles grouped as the engine runs them: equal window shapes together, at most ``batch_size`` each and at
    most ``max_pixels`` window pixels (but at least one tile), and a multiple of ``lanes`` tiles where more than
    one fits: a batch of 3 on 2 lanes keeps one lane idle a third of the time (0.76 of raw onnxruntime's
    throughput for 6 windows of 313 pixels, 0.5 MP images at the automatic tile)."""
    by_shape: dict[tuple[int, int], list[Tile]] = defaultdict(list)
    for t in tiles:
        by_shape[t.window_shape].append(t)
    for (h, w), group in by_shape.items():
        size = max(1, min(batch_size or AUTO_BATCH, max_pixels // (h * w)))
        if size > lanes:
            size -= size % lanes
        for i in range(0, len(group), size):
            yield group[i : i + size]


BAND_PIXELS = 1 << 15
"""Pixels per band when windows are converted to float and outputs quantised into the image: a band's float
samples (384 KB) stay in the core's cache through the scale, round, clip and interleave steps, where whole
tiles went through memory once per step (a 12 MP image whole ran at 0.74 of raw onnxruntime with the fast
model; benchmarks/engine_map.py)."""

_bands: ThreadPoolExecutor | None = None


def _in_bands(work: Callable[..., None], jobs: list[tuple]) -> None:
    """Run ``work(*job)`` for every job on a small shared pool: numpy's conversions release the GIL, and while
    they run the model's threads are idle, so the cores split them."""
    global _bands
    if _bands is None:
        _bands = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)), "upscale-bands")
    for _ in _bands.map(lambda job: work(*job), jobs):
        pass


def _forget_bands() -> None:
    global _bands
    _bands = None  # a forked child has the pool object but not its threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_bands)


def _band_rows(width: int) -> int:
    return max(1, BAND_PIXELS // max(1, width))


def windows_to_batch(pixels: np.ndarray | list[np.ndarray], group: list[Tile]) -> np.ndarray:
    """The (N,3,h,w) float32 batch of ``group``'s windows, in [0, 1] (`to_unit_float`'s values), made band by
    band in one pass: no stacked copy of the windows, no separate transpose. ``pixels`` is the image all the
    tiles cut, or one image per tile (windows of several small images batched together)."""
    h, w = group[0].window_shape
    batch = np.empty((len(group), 3, h, w), np.float32)
    sources = pixels if isinstance(pixels, list) else [pixels] * len(group)

    def fill(i: int, t: Tile, r0: int, r1: int) -> None:
        peak = SAMPLE_PEAKS.get(sources[i].dtype)  # each image its own: 8- and 16-bit pictures may share a batch
        source = sources[i][t.rows.lo + r0 : t.rows.lo + r1, t.cols.lo : t.cols.hi].transpose(2, 0, 1)
        if peak is None:
            np.copyto(batch[i, :, r0:r1], to_unit_float(source))
        else:  # to_unit_float's arithmetic (float32 samples times float32(1/peak)) without its two temporaries:
            np.multiply(source, np.float32(1 / peak), out=batch[i, :, r0:r1], dtype=np.float32)  # 5x faster

    rows = _band_rows(w)
    _in_bands(fill, [(i, t, r, min(h, r + rows)) for i, t in enumerate(group) for r in range(0, h, rows)])
    return batch


def store_cores(out: np.ndarray | list[np.ndarray], result: np.ndarray, group: list[Tile], scale: int) -> None:
    """Quantise each tile's core of the model's ``result`` (which it overwrites) into ``out`` (or, for windows of
    several images, into each tile's own output), band by band."""
    targets = out if isinstance(out, list) else [out] * len(group)

    def store(y: np.ndarray, image: np.ndarray, t: Tile, r0: int, r1: int) -> None:
        c0, c1 = (t.cols.core_lo - t.cols.lo) * scale, (t.cols.core_hi - t.cols.lo) * scale
        core = quantise_in_place(y[:, r0:r1, c0:c1], image.dtype)
        top = t.rows.core_lo * scale + r0 - (t.rows.core_lo - t.rows.lo) * scale
        target = image[top : top + (r1 - r0), t.cols.core_lo * scale : t.cols.core_hi * scale]
        np.copyto(target, core.transpose(1, 2, 0), casting="unsafe")

    jobs = []
    for t, y, image in zip(group, result, targets, strict=True):
        r0, r1 = (t.rows.core_lo - t.rows.lo) * scale, (t.rows.core_hi - t.rows.lo) * scale
        rows = _band_rows((t.cols.core_hi - t.cols.core_lo) * scale)
        jobs += [(y, image, t, r, min(r1, r + rows)) for r in range(r0, r1, rows)]
    _in_bands(store, jobs)


@dataclass(frozen=True)
class _Placed:
    """A tile of one of several images (`upscale_arrays`)."""

    image: int
    tile: Tile

    @property
    def window_shape(self) -> tuple[int, int]:
        return self.tile.window_shape


def upscale_array(
    model: ModelCall,
    pixels: np.ndarray,
    scale: int,
    overlap: int,
    tile: int | None = None,
    batch_size: int | None = None,
    out_dtype: np.dtype | None = None,
    on_tile: Callable[[int], None] | None = None,
    fixed_window: int = 0,
    grid: int = 1,
) -> np.ndarray:
    """Upscale an HxWx3 image (uint8, uint16 or float in [0,1]) by ``scale`` through ``model``.

    ``model`` maps (N,3,h,w) float32 to (N,3,h*scale,w*scale). The result is HsxWsx3 in ``out_dtype``
    (default: the input's dtype), always clipped to [0, 1].
    Input is converted to float one batch of windows at a time and output is quantised one tile at a time, so
    peak memory is the input and output images plus a few tiles, never a float copy of either image.
    ``on_tile`` is called with the number of input pixels each finished tile owned (for progress).
    """
    return upscale_arrays(model, [pixels], scale, overlap, tile, batch_size, [out_dtype], on_tile, fixed_window,
                          grid)[0]


def upscale_arrays(
    model: ModelCall,
    images: list[np.ndarray],
    scale: int,
    overlap: int,
    tile: int | None = None,
    batch_size: int | None = None,
    out_dtypes: list[np.dtype | None] | None = None,
    on_tile: Callable[[int], None] | None = None,
    fixed_window: int = 0,
    grid: int = 1,
) -> list[np.ndarray]:
    """`upscale_array` for several images at once: windows of equal shape, from any of them, run in the same
    batches. Many small images (thumbnails, sprites, frames: one window each) then cost a few model calls instead
    of one each; a batch's images are independent, so every output is the one the image gets alone."""
    for pixels in images:
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 image, got shape {pixels.shape}")
    dtypes = out_dtypes or [None] * len(images)
    outs = [np.empty((p.shape[0] * scale, p.shape[1] * scale, 3), np.dtype(d or p.dtype))
            for p, d in zip(images, dtypes, strict=True)]
    lanes = getattr(model, "parallelism", 1)
    placed = [_Placed(i, t) for i, p in enumerate(images)
              for t in plan_tiles(p.shape[0], p.shape[1], tile, overlap, scale, fixed_window, grid)]
    for group in tile_batches(placed, batch_size, max_batch_pixels(scale), lanes):
        tiles = [g.tile for g in group]
        batch = windows_to_batch([images[g.image] for g in group], tiles)
        result = np.require(model(batch), np.float32, "W")
        store_cores([outs[g.image] for g in group], result, tiles, scale)
        if on_tile:
            for t in tiles:
                on_tile((t.rows.core_hi - t.rows.core_lo) * (t.cols.core_hi - t.cols.core_lo))
    return outs
