"""Checkpoint -> self-describing ONNX model, checked against PyTorch before it is trusted.

Steps: rebuild the network from the checkpoint (EMA weights when present), fold re-parameterised
branches, export with dynamic N/H/W through ``torch.export`` (opset 18), write the model contract's
metadata, run ``onnx.checker``, then compare onnxruntime with PyTorch on a random input and on a
photo-like image at two sizes each. A float32 model must agree to 1e-4; ``fp16`` writes float16
weights and I/O and is held to a looser bound.
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from upscale.train.arch import ArchSummary, SRNet
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint
from upscale.train.quantised import RepSRInt8

from upscale.contract import ModelInfo
from upscale.errors import TrainingError
from upscale.files import write_atomic

from .graph import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    OPSET,
    ExportSummary,
    lower_for_onnxruntime,
    parity_inputs,
    strip_node_metadata,
)
from .int8_export import INT8_MAX_LEVELS, int8_parity, integer_convolutions, integer_layers, to_qdq_onnx
from .metadata import attach_metadata


def to_onnx(model: SRNet, fp16: bool = False) -> onnx.ModelProto:
    """Export a (folded) network with dynamic batch, height and width."""
    model = lower_for_onnxruntime(copy.deepcopy(model).eval())
    example = torch.rand(1, 3, 32, 32)
    if fp16:
        model, example = model.half(), example.half()
    batch, height, width = torch.export.Dim("N"), torch.export.Dim("H", min=1), torch.export.Dim("W", min=1)
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # e.g. "torchvision is not installed": noise, not news
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), input_names=["input"], output_names=["output"], opset_version=OPSET,
            dynamic_shapes={"x": {0: batch, 2: height, 3: width}}, dynamo=True, verbose=False,
        )
    onnx_logger.setLevel(level)
    program.optimize()
    buffer = io.BytesIO()
    program.save(buffer)
    return strip_node_metadata(buffer.getvalue())


def parity(model_proto: onnx.ModelProto, reference: SRNet, fp16: bool) -> float:
    """Largest |onnxruntime - PyTorch float32| over random and photo-like inputs at two sizes."""
    session = ort.InferenceSession(model_proto.SerializeToString(), providers=["CPUExecutionProvider"])
    dtype = np.float16 if fp16 else np.float32
    worst = 0.0
    for x in parity_inputs():
        got = session.run(None, {"input": x.astype(dtype)})[0].astype(np.float32)
        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise TrainingError(f"onnxruntime gave {got.shape}, PyTorch {want.shape}")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def _write_int8(proto: onnx.ModelProto, model: RepSRInt8, output: Path, summary: ArchSummary) -> ExportSummary:
    """An int8 graph is written only when onnxruntime runs all its convolutions on integer kernels and agrees
    with the network's fake-quantised PyTorch form (`int8_export`)."""
    integer = integer_convolutions(proto, integer_layers(model))
    max_levels, p999 = int8_parity(proto, model)
    write_atomic(output, proto.SerializeToString())
    return ExportSummary(output, summary.name, summary.scale, summary.params, summary.macs_per_output_pixel,
                         summary.receptive_field, output.stat().st_size, float(max_levels), INT8_MAX_LEVELS, False,
                         parity_levels=f"max {max_levels} levels, 99.9th percentile {p999:g}",
                         dtype=f"int8: {integer} integer convolutions; float32 first and last ones, bicubic branch")


def export_checkpoint(checkpoint: Path, output: Path, fp16: bool = False, validation: str = "",
                      training_data: str = "", purpose: str = "") -> ExportSummary:
    """Write ``output`` from ``checkpoint`` (ours, or any weight file spandrel knows: the content decides, and
    `third_party` converts the others); raises TrainingError when it cannot be loaded, is not an RGB upscaler,
    or parity fails (nothing written)."""
    from .third_party import export_third_party, is_upscale_checkpoint

    if Path(checkpoint).is_file() and not is_upscale_checkpoint(Path(checkpoint)):
        return export_third_party(Path(checkpoint), output, fp16)
    state = load_checkpoint(checkpoint)
    model = model_from_checkpoint(state).eval()
    folded = model.fold().eval()
    with torch.no_grad():
        probe = torch.rand(1, 3, 24, 20)
        fold_error = float((folded(probe) - model(probe)).abs().max())
    if fold_error > 1e-4:
        raise TrainingError(f"{checkpoint}: folding changed the network's output by {fold_error:.2e}")
    quantised = folded.quantised
    if quantised and fp16:
        raise TrainingError(f"{checkpoint}: an int8 network is written as int8; --fp16 does not apply")
    proto = to_qdq_onnx(folded) if quantised else to_onnx(folded, fp16)
    summary = model.describe()
    config = state.get("config", {})
    if not validation and state.get("best_psnr", float("-inf")) > 0:
        sets = ", ".join(Path(v).name for v in config.get("val", []))
        validation = f"mean Y-PSNR {state['best_psnr']:.2f} dB on {sets}"
    info = ModelInfo(
        scale=summary.scale, architecture=summary.name, tile_overlap=summary.receptive_field,
        training_data=training_data or ", ".join(Path(d).name for d in config.get("data", [])),
        validation=validation,
        description=f"{summary.name} x{summary.scale}, {summary.params:,} parameters, "
                    f"{summary.macs_per_output_pixel:,.0f} MACs per output pixel, step {state.get('step')}"
                    + (", float16" if fp16 else "") + (f"; {purpose}" if purpose else ""),
    )
    attach_metadata(proto, info)
    onnx.checker.check_model(proto)
    if quantised:
        return _write_int8(proto, folded, output, summary)
    error = parity(proto, folded, fp16)
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    if error > tolerance:
        raise TrainingError(f"{checkpoint}: onnxruntime differs from PyTorch by {error:.2e} "
                            f"(> {tolerance:.0e}); not written")
    write_atomic(output, proto.SerializeToString())
    return ExportSummary(output, summary.name, summary.scale, summary.params, summary.macs_per_output_pixel,
                         summary.receptive_field, output.stat().st_size, error, tolerance, fp16)
