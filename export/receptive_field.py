"""How far a converted graph's output reaches from each input pixel, and so how its tiles must overlap.

Measured, not read from the architecture: an impulse through the graph gives the receptive field, and tiles
against the whole picture say whether tiling changes the output (attention over windows or the whole image makes
tiles differ however they overlap), which the model's metadata then tells the user.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import torch

from upscale.contract import ModelInfo
from upscale.images import Picture
from upscale.model import load_model, padded_side
from upscale.picture import UpscaleOptions, upscale_picture

from .graph import levels, photo_like
from .metadata import attach_metadata

if TYPE_CHECKING:
    from .third_party import ThirdParty

MAX_OVERLAP = 48  # tile overlap used when the receptive field reaches past the probe


@dataclass(frozen=True)
class Tiling:
    overlap: int
    exact: bool
    text: str


@dataclass(frozen=True)
class Field:
    """How far an input pixel reaches, measured by an impulse through the graph."""

    overlap: int  # the tile overlap to use, in input pixels (a multiple of the model's multiple_of)
    radius: int  # where any change reaches
    unbounded: bool  # the change reached the probe's edge (global operations or a large field)
    probe: int  # the probe's side

    @property
    def why(self) -> str:
        return f"the receptive field reaches past {self.probe // 2} input pixels" if self.unbounded else ""


def receptive_field(proto: onnx.ModelProto, model: ThirdParty, size: int) -> Field:
    """Poke the centre of a ``size``-square photo-like image and see how far the output moves."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = photo_like(size, size).astype(proto_dtype(proto))
    c = size // 2
    poked = x.copy()
    poked[0, :, c, c] = 1 - poked[0, :, c, c]
    name = session.get_inputs()[0].name
    diff = np.abs(session.run(None, {name: poked})[0].astype(np.float32) - session.run(None, {name: x})[0])
    changed = diff[0].max(axis=0)
    s = model.scale
    centre = c * s + s // 2

    def radius(threshold: float) -> tuple[int, bool]:
        rows, cols = np.nonzero(changed > threshold)
        if rows.size == 0:
            return 0, False
        extent = max(abs(rows - centre).max(), abs(cols - centre).max())
        edge = rows.min() == 0 or cols.min() == 0 or rows.max() == changed.shape[0] - 1 or \
            cols.max() == changed.shape[1] - 1
        return math.ceil(extent / s), bool(edge)

    exact_radius, unbounded = radius(1e-6)
    # global operations or a field past the probe: size the overlap on what moves the output by 1/40 level
    overlap = min(radius(1e-4)[0], MAX_OVERLAP) if unbounded else exact_radius
    return Field(padded_side(max(overlap, 1), model.multiple_of), exact_radius, unbounded, size)


def tiling_verdict(proto: onnx.ModelProto, model: ThirdParty, field: Field, fixed_window: int = 0,
                   batch_one: bool = False) -> Tiling:
    """What tiling changes on a test image: tiles of at least 48 pixels (twice the overlap) against the whole
    image, or for a fixed-window graph, the engine's tiles against PyTorch's whole-image output."""
    overlap = field.overlap
    tile = padded_side(max(48, 2 * overlap), model.multiple_of)
    difference = _tiling_difference(proto, model, overlap, tile, fixed_window, batch_one)
    if not field.unbounded and difference <= 1:
        return Tiling(overlap, True, f"exact (receptive field {field.radius} input pixels)")
    if difference <= 1:  # the contract's promise for tiles: the whole-image result within one 8-bit level
        return Tiling(overlap, True, f"exact to one level: {field.why}, yet tiles overlapping by {overlap} "
                                     "matched the whole image within 1 level of 255 on a test image")
    why = field.why or "windowed attention or position-dependent operations"
    return Tiling(overlap, False, f"approximate: {why}; tiles overlapping by {overlap} differed from the "
                                  f"whole image by up to {difference} levels of 255 on a test image")


def proto_dtype(proto: onnx.ModelProto) -> type:
    elem = proto.graph.input[0].type.tensor_type.elem_type
    return np.float16 if elem == onnx.TensorProto.FLOAT16 else np.float32


def _tiling_difference(proto: onnx.ModelProto, model: ThirdParty, overlap: int, tile: int,
                       fixed_window: int = 0, batch_one: bool = False) -> int:
    """Largest 8-bit difference between the tiled output and the whole-image output of a test picture: 2.5 tiles
    of ``tile``, or for a fixed window, 1.5 windows through the engine's tiles against PyTorch on the whole."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = onnx.ModelProto()
        probe.CopyFrom(proto)
        attach_metadata(probe, ModelInfo(scale=model.scale, tile_overlap=overlap, multiple_of=model.multiple_of,
                                         min_size=model.min_size, fixed_window=fixed_window,
                                         max_batch=1 if batch_one else 0))
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, path)
        runner = load_model(path, "cpu")
        if fixed_window:  # no whole image through a fixed graph: PyTorch's whole-image output is the reference
            side = padded_side(fixed_window * 3 // 2, model.multiple_of)
            image = (photo_like(side, side)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
            with torch.no_grad():
                reference = model.module(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255))
            whole = levels(reference[0].numpy().transpose(1, 2, 0))
            tiled = upscale_picture(runner, Picture(image), UpscaleOptions()).pixels.astype(int)
            return int(np.abs(whole - tiled).max())
        side = tile * 5 // 2
        image = (photo_like(side, side + tile // 2)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        whole = upscale_picture(runner, Picture(image), UpscaleOptions(tile=0)).pixels.astype(int)
        tiled = upscale_picture(runner, Picture(image), UpscaleOptions(tile=tile)).pixels.astype(int)
    return int(np.abs(whole - tiled).max())


