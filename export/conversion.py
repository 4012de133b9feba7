"""A third-party PyTorch module as an ONNX graph that runs at every shape the engine gives it.

Exporters fail in many ways on the world's architectures (traced shape arithmetic, windowed attention, a batch
size baked in), so `convert` tries them in turn and keeps the first graph that matches PyTorch (`parity`) at
every engine shape, falling back to one fixed window the engine pads each tile to.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import onnx
import torch
from torch import nn

from upscale.errors import TrainingError
from upscale.model import padded_side

from .graph import lower_for_onnxruntime
from .graph import strip_node_metadata as _strip
from .parity import Parity, engine_shapes, measure_parity, short_reason
from .patches import export_friendly
from .receptive_field import Tiling, receptive_field, tiling_verdict

if TYPE_CHECKING:
    from .third_party import ThirdParty

PROBE_SIZE = 96  # input pixels: an impulse's influence is measured within this square (dynamic graphs)
FIXED_WINDOW = 256
"""Input side of the fallback graph for models no exporter makes dynamic (rounded up to their size needs); its
batch is one image (the runner feeds a batch's images one by one)."""


@dataclass(frozen=True)
class Conversion:
    """The graph that passed, how it was made, and what the engine must know to feed it."""

    proto: onnx.ModelProto
    exporter: str
    parity: Parity
    tiling: Tiling
    fixed_window: int = 0
    shapes: str = "any size"
    multiple_of: int = 0  # the input multiple the graph needs (0: the model's own)
    batch_one: bool = False  # the graph takes one image a run (its batch size was traced in)


MULTIPLES = (8, 16, 32, 64)
"""Input multiples tried when a dynamic graph fails at some sizes: traced padding arithmetic (to a window or a
stride) is often right whenever no padding is needed, so the engine pads to the multiple instead."""


def _multiples_to_try(own: int) -> list[int]:
    return [own, *(m for m in MULTIPLES if m > own and m % own == 0)]


def convert(model: ThirdParty, fp16: bool) -> Conversion:
    """The model as an ONNX graph that runs at every shape the engine gives it and matches PyTorch there.

    Dynamic N/H/W first (TorchScript exporter, then ``torch.export``), each checked in 8-bit levels at
    `engine_shapes` with the overlap measured on it, at the model's own size multiple and then at larger ones
    (`MULTIPLES`); where none works (traced shape arithmetic, windowed attention), one fixed square window that
    the engine pads every tile to. TrainingError naming each attempt's
    reason when nothing works. PReLU is rewritten in the form onnxruntime runs fast (as for our own models), and
    layers whose shape arithmetic does not trace get their export-friendly form (`patches`); the parity checks
    compare with the untouched module."""
    lowered = lower_for_onnxruntime(copy.deepcopy(model.module)).eval()
    if fp16:
        lowered = lowered.half()
    return _convert(model, export_friendly(lowered, model.architecture), fp16)


def _convert(model: ThirdParty, lowered: nn.Module, fp16: bool) -> Conversion:
    reasons: list[str] = []
    for multiple in _multiples_to_try(model.multiple_of):
        candidate = replace(model, multiple_of=multiple)
        for dynamo, batch_one in ((False, False), (False, True), (True, False), (True, True)):
            name = ("torch.export" if dynamo else "TorchScript") + (", one image a run" if batch_one else "")
            label = name if multiple == model.multiple_of else f"{name}, sizes padded to multiples of {multiple}"
            try:
                side = padded_side(max(PROBE_SIZE, model.min_size), multiple)
                example = torch.rand(1, 3, side, side + 2 * multiple)
                proto = _strip(trace(lowered, example.half() if fp16 else example, dynamo,
                                     multiple=multiple, batch_one=batch_one))
                field = receptive_field(proto, candidate, side)
                shapes = engine_shapes(candidate, field.overlap)
                parity = measure_parity(proto.SerializeToString(), model.module, shapes, fp16,
                                        batch_of_two=not batch_one)
                if not parity.within(fp16):
                    reasons.append(f"{label}: differs from PyTorch by {parity}")
                    continue
                # more shapes: tiles of 48 and up, a whole picture
                tiling = tiling_verdict(proto, candidate, field, batch_one=batch_one)
            except Exception as exc:  # exporters and graphs fail in many ways; the next attempt may not
                reasons.append(f"{label}: {short_reason(exc)[:160]}")
                continue
            padded = "" if multiple == model.multiple_of else \
                f", padded to multiples of {multiple} (the graph's shape arithmetic needs it)"
            return Conversion(proto, name, parity, tiling, multiple_of=multiple, batch_one=batch_one,
                              shapes=f"any size{padded}" + ("; one image a run" if batch_one else ""))
    window = padded_side(max(FIXED_WINDOW, model.min_size), model.multiple_of)
    why = "; ".join(reasons)
    try:
        example = torch.rand(1, 3, window, window)
        proto = _strip(trace(lowered, example.half() if fp16 else example, False, fixed=True))
        field = receptive_field(proto, model, window)
        if field.overlap * 4 > window:
            raise ValueError(f"its receptive field ({field.overlap} pixels) leaves too little of a {window} window")
        parity = measure_parity(proto.SerializeToString(), model.module, [(window, window)], fp16, batch_of_two=False)
        if not parity.within(fp16):
            raise ValueError(f"differs from PyTorch by {parity}")
        tiling = tiling_verdict(proto, model, field, window)
    except Exception as exc:  # the fallback fails for its own reasons
        raise TrainingError(f"{model.architecture} does not convert: {why}; fixed {window}x{window}: "
                            f"{short_reason(exc)[:160]}") from None
    shapes = f"fixed {window}x{window} windows, each tile padded to it (no dynamic graph: {why[:300]})"
    return Conversion(proto, "TorchScript, fixed window", parity, tiling, window, shapes, model.multiple_of)


def trace(module: nn.Module, example: torch.Tensor, dynamo: bool, fixed: bool = False, multiple: int = 1,
            batch_one: bool = False) -> bytes:
    """One exporter's graph (bytes); its failures are exceptions, summarised by `convert` in one line, so torch's
    own logging of them (pages of tracebacks from torch.export's guards) stays quiet."""
    logging.disable(logging.ERROR)  # torch's loggers have handlers of their own: a logger level would not do
    try:
        return _trace_quietly(module, example, dynamo, fixed, multiple, batch_one)
    finally:
        logging.disable(logging.NOTSET)


def _trace_quietly(module: nn.Module, example: torch.Tensor, dynamo: bool, fixed: bool, multiple: int,
                    batch_one: bool) -> bytes:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if not dynamo:
            buffer = io.BytesIO()
            # a fixed graph is fixed in all four dimensions: traced shape arithmetic may bake the batch in too
            axes = {} if fixed else {"input": {2: "H", 3: "W"}, "output": {2: "sH", 3: "sW"}}
            if not fixed and not batch_one:
                axes["input"][0] = axes["output"][0] = "N"
            torch.onnx.export(module, (example,), buffer, input_names=["input"], output_names=["output"],
                              opset_version=17, dynamo=False, dynamic_axes=axes)
            return buffer.getvalue()
        Dim = torch.export.Dim
        # sides as multiples (H = m * _H): what torch.export asks for where the model pads to a window or stride
        dims = {2: Dim("H", min=1), 3: Dim("W", min=1)} if multiple == 1 else \
            {2: multiple * Dim("_H", min=1), 3: multiple * Dim("_W", min=1)}
        if not batch_one:
            dims[0] = Dim("N")
        program = torch.onnx.export(module, (example,), input_names=["input"], output_names=["output"],
                                    opset_version=18, dynamic_shapes={"x": dims}, dynamo=True, verbose=False)
        program.optimize()
        buffer = io.BytesIO()
        program.save(buffer)
        return buffer.getvalue()


