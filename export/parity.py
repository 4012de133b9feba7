"""Does a converted graph compute what the PyTorch module computes, at every shape the engine will give it?

Checked in 8-bit levels of the clipped output, the unit a user sees: a conversion within a level or two is the
model; one that moves many pixels by a level, or mixes the images of a batch, is not, whatever its float error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from upscale.model import padded_side
from upscale.tiling import auto_tile, plan_tiles

from .graph import levels, photo_like

if TYPE_CHECKING:
    from .third_party import ThirdParty

LEVELS_MAX = {False: 1, True: 2}
"""Largest difference to PyTorch anywhere, in 8-bit levels, that a float32 (float16) conversion may show."""
LEVELS_MEAN = {False: 0.05, True: 0.25}
"""Largest mean difference in 8-bit levels: a conversion that moves many pixels by a level is not the model."""


BATCH_NOISE = 2e-5
"""Largest difference (0-1 units, 1/200 of a level) between an image run in a batch and run alone: batched
arithmetic moves outputs by about 1e-6; a graph that traced a batch size in reshapes the images into each other,
which on random weights can stay under the level bounds while real weights make it visible."""


def engine_shapes(model: ThirdParty, overlap: int) -> list[tuple[int, int]]:
    """Every input shape the engine gives the model on the test images below, after padding to its size needs:
    the automatic tile's window, the tiles of a small odd image and a large odd one, whole 16/32/64-pixel
    images, a tall and a wide one."""
    big = 2 * auto_tile(model.scale)
    shapes = set()
    for h, w in [(16, 16), (32, 32), (64, 64), (37, 53), (501, 397), (big, big), (200, 24), (24, 200)]:
        # dynamic graphs only: fixed ones take one shape
        for tile in plan_tiles(h, w, None, overlap, model.scale, grid=model.multiple_of):
            wh, ww = tile.window_shape
            shapes.add((padded_side(wh, model.multiple_of, model.min_size), padded_side(ww, model.multiple_of,
                                                                              model.min_size)))
    return sorted(shapes)


@dataclass(frozen=True)
class Parity:
    """onnxruntime against PyTorch, in 8-bit levels of the clipped output, over the shapes checked."""

    max_levels: int
    mean_levels: float
    max_abs: float  # in [0, 1] units, for the export summary
    shapes: int

    def within(self, fp16: bool) -> bool:
        return self.max_levels <= LEVELS_MAX[fp16] and self.mean_levels <= LEVELS_MEAN[fp16]

    def __str__(self) -> str:
        return f"up to {self.max_levels} levels, mean {self.mean_levels:.3f}, over {self.shapes} input shapes"


def measure_parity(data: bytes, reference: nn.Module, shapes: list[tuple[int, int]], fp16: bool,
            batch_of_two: bool = True) -> Parity:
    """Run both on a photo-like image of every shape (two images at the smallest, as one batch); a shape the
    graph cannot run raises (a conversion failure)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing shape is reported by us, in one line
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {session.get_inputs()[0].name: x.astype(np.float16 if fp16 else np.float32)})[0]

    worst, total, count, worst_abs = 0, 0.0, 0, 0.0
    batched = min(shapes, key=lambda hw: hw[0] * hw[1]) if batch_of_two else None
    for h, w in shapes:
        x = photo_like(h, w, seed=h * 7919 + w)
        if (h, w) == batched:  # the engine batches equal windows: a traced batch size must not be baked in
            x = np.concatenate([x, photo_like(h, w, seed=h + w)[:, :, ::-1].copy()])
        try:
            got = run(x)
            alone = [run(x[i:i + 1]) for i in range(len(x))] if len(x) > 1 else [got]
        except Exception as exc:  # onnxruntime's Fail/RuntimeException: the graph cannot run at this shape
            raise ValueError(f"fails at {h}x{w} inputs ({short_reason(exc)})") from None
        mixed = float(np.abs(got - np.concatenate(alone)).max())
        if mixed > BATCH_NOISE:
            raise ValueError(f"mixes the images of a batch ({mixed:.1e} from each run alone, at {h}x{w})")
        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ValueError(f"onnxruntime gave {got.shape}, PyTorch {want.shape} at {h}x{w}")
        got = got.astype(np.float32)
        apart = np.abs(levels(got) - levels(want))
        worst, total, count = max(worst, int(apart.max())), total + float(apart.sum()), count + apart.size
        worst_abs = max(worst_abs, float(np.abs(got - want).max()))
    return Parity(worst, total / max(count, 1), worst_abs, len(shapes))


def short_reason(exc: BaseException) -> str:
    """Why an export or a graph failed, in one line for `convert`'s list of attempts: onnxruntime's own message
    where it wraps one (no type name, unlike `upscale.errors.first_line`, which reports the unexpected)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if "Status Message:" not in text else text.split("Status Message:")[-1].strip().splitlines()[0]
