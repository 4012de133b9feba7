"""Training data: every image decoded once and kept in memory, random patches cut from it per batch.

A batch is a pure function of (seed, step, rank): `PatchSampler.batch(step)` draws its own generator
from those numbers, so resuming at step k replays exactly the batches an unbroken run would have seen,
and a prefetch thread can run ahead without touching any shared random state.

The low-resolution input is the MATLAB-compatible antialiased bicubic downscale of the whole image
(`upscale.bicubic.imresize`, rounded to 8 bits like the evaluation protocol), or with
``degradation="realistic"`` a pool of randomly degraded copies of it (`lr_pool`), made once when the
sampler is built; a pair is the HR patch and the LR patch on the same grid. So training sees exactly
the inputs `upscale eval` makes, and a batch costs only slicing: 3 ms for 16 pairs of 96x96, against
42 ms when each patch was downscaled on its own (`benchmarks/data_loading.py`), which is what lets a GPU
be fed from one thread. Batches stay uint8 until they reach the device (a quarter of the bytes to move).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from upscale.train.degradations import realistic_lr

from upscale.bicubic import resize_matrix
from upscale.errors import TrainingError
from upscale.images import image_extensions

DEGRADATIONS = ("bicubic", "realistic")


@dataclass
class ImageSet:
    images: list[np.ndarray]
    skipped_small: int
    unreadable: list[str]


def find_images(folders: Iterable[Path]) -> list[Path]:
    known = image_extensions()
    paths: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise TrainingError(f"{folder}: not a folder")
        paths += sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in known)
    return paths


def load_images(folders: Iterable[Path], min_size: int) -> ImageSet:
    """Decode every image under ``folders`` (recursively) to RGB uint8; skip and count the small ones."""
    images, small, bad = [], 0, []
    for path in find_images(folders):
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            bad.append(f"{path}: {exc}")
            continue
        if min(rgb.shape[:2]) < min_size:
            small += 1
            continue
        images.append(rgb)
    return ImageSet(images, small, bad)


@lru_cache(maxsize=256)
def _matrix(in_len: int, scale: int) -> np.ndarray:
    return resize_matrix(in_len, in_len // scale, 1 / scale).astype(np.float32)


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB imresize(hr, 1/scale) of an HxWx3 uint8 array whose sides are multiples of ``scale``."""
    h, w, c = hr.shape
    rows, cols = _matrix(h, scale), _matrix(w, scale)
    out = rows @ hr.astype(np.float32).reshape(h, w * c)  # (h/s, w*c): BLAS, not einsum
    out = (cols @ out.reshape(-1, w, c)).reshape(h // scale, w // scale, c)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def lr_pool(hr: list[np.ndarray], scale: int, degradation: str, copies: int, seed: int,
            workers: int | None = None) -> list[list[np.ndarray]]:
    """The whole-image LR inputs of every HR image: one bicubic downscale each, or ``copies`` randomly
    degraded ones (`upscale.train.degradations.realistic_lr`), copy c of image i drawn from the seed (seed, i, c) alone.

    Made once, before training: degrading a whole image costs ~55 ms on one core, which per batch of 16
    patches would be slower than the training step; a pool of 8 copies of 491 images takes about 2 minutes
    on 2 cores and ~450 MB at 2x, and each batch stays a matter of slicing. Threads: Pillow and numpy's
    FFT release the GIL, so this scales with the cores.
    """
    if degradation not in DEGRADATIONS:
        raise TrainingError(f"--degradation must be one of {', '.join(DEGRADATIONS)}, got {degradation!r}")
    if degradation == "bicubic":
        return [[downscale(img, scale)] for img in hr]
    if copies < 1:
        raise TrainingError(f"--degradation-copies must be at least 1, got {copies}")

    def make(index: tuple[int, int]) -> np.ndarray:
        i, c = index
        return realistic_lr(hr[i], scale, np.random.default_rng([seed, i, c, 0xDE6]))

    jobs = [(i, c) for i in range(len(hr)) for c in range(copies)]
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        made = list(pool.map(make, jobs))
    return [made[i * copies : (i + 1) * copies] for i in range(len(hr))]


class PatchSampler:
    """Random (LR, HR) patch pairs with flips and 90-degree rotations, cut from whole-image LR/HR pairs."""

    def __init__(self, images: list[np.ndarray], scale: int, patch: int, batch_size: int, seed: int,
                 rank: int = 0, degradation: str = "bicubic", copies: int = 1, workers: int | None = None) -> None:
        if patch % scale:
            raise TrainingError(f"patch size {patch} is not a multiple of the scale {scale}")
        if not images:
            raise TrainingError("no training images large enough for the patch size")
        self.scale, self.patch = scale, patch
        self.batch_size, self.seed, self.rank = batch_size, seed, rank
        # The grid whole-image LR is made on: sides cut to multiples of the scale, as `upscale eval` does.
        self.hr = [img[: img.shape[0] // scale * scale, : img.shape[1] // scale * scale] for img in images]
        self.lr = lr_pool(self.hr, scale, degradation, copies, seed, workers)

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        """One (LR, HR) pair, HxWx3 uint8 views, in a random place, orientation and mirror image."""
        s, q = self.scale, self.patch // self.scale
        i = int(rng.integers(len(self.hr)))
        copies = self.lr[i]
        c = int(rng.integers(len(copies))) if len(copies) > 1 else 0
        lr_image = copies[c]
        y = int(rng.integers(0, lr_image.shape[0] - q + 1))
        x = int(rng.integers(0, lr_image.shape[1] - q + 1))
        views = [lr_image[y : y + q, x : x + q], self.hr[i][y * s : (y + q) * s, x * s : (x + q) * s]]
        k = int(rng.integers(4))
        views = [np.rot90(v, k) for v in views]
        if rng.integers(2):
            views = [v[:, ::-1] for v in views]
        return tuple(views)

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """Batch number ``step``: (N,3,p/s,p/s) and (N,3,p,p) uint8 (see `to_unit`)."""
        rng = np.random.default_rng([self.seed, self.rank, step])
        pairs = [self.pair(rng) for _ in range(self.batch_size)]
        return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(items).transpose(0, 3, 1, 2)))
                     for items in zip(*pairs, strict=True))


def to_unit(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 batch -> float32 in [0, 1] on ``device`` (converted there, after the smaller copy)."""
    return batch.to(device, non_blocking=True).float().div_(255)


def prefetch(sampler: PatchSampler, start: int, stop: int, depth: int = 4) -> Iterator[tuple]:
    """Yield ``sampler.batch(step)`` for start <= step < stop, made ahead on a background thread; an exception
    there is raised here (the thread would otherwise end and leave the loop waiting forever)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = threading.Event()

    def work() -> None:
        try:
            for step in range(start, stop):
                if done.is_set():
                    return
                q.put(sampler.batch(step))
        except Exception as exc:  # any: handed to the consumer, which raises it
            q.put(exc)
            return
        q.put(None)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        done.set()
