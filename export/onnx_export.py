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
from upscale.train.arch import SRNet
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint

from upscale.contract import ModelInfo
from upscale.errors import TrainingError
from upscale.files import write_atomic

from .graph import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    OPSET,
    ExportSummary,
    lower_for_onnxruntime,
    photo_like,
    strip_node_metadata,
)
from .metadata import attach_metadata

_PARITY_SIZES = ((37, 53), (96, 64))


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
    rng = np.random.default_rng(0)
    for h, w in _PARITY_SIZES:
        for x in (rng.random((1, 3, h, w), dtype=np.float32), photo_like(h, w)):
            got = session.run(None, {"input": x.astype(dtype)})[0].astype(np.float32)
            with torch.no_grad():
                want = reference(torch.from_numpy(x)).numpy()
            if got.shape != want.shape:
                raise TrainingError(f"onnxruntime gave {got.shape}, PyTorch {want.shape}")
            worst = max(worst, float(np.abs(got - want).max()))
    return worst


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
    proto = to_onnx(folded, fp16)
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
    error = parity(proto, folded, fp16)
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    if error > tolerance:
        raise TrainingError(f"{checkpoint}: onnxruntime differs from PyTorch by {error:.2e} "
                            f"(> {tolerance:.0e}); not written")
    write_atomic(output, proto.SerializeToString())
    return ExportSummary(output, summary.name, summary.scale, summary.params, summary.macs_per_output_pixel,
                         summary.receptive_field, output.stat().st_size, error, tolerance, fp16)
