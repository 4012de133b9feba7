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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from upscale.train.arch import SRNet
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint

from upscale.contract import ModelInfo
from upscale.errors import TrainingError
from upscale.files import write_atomic

from .metadata import attach_metadata

OPSET = 18
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2
_PARITY_SIZES = ((37, 53), (96, 64))


@dataclass(frozen=True)
class ExportSummary:
    path: Path
    arch: str
    scale: int
    params: int
    macs_per_output_pixel: float | None  # None where not counted (third-party architectures)
    receptive_field: int
    file_bytes: int
    parity_max_abs: float
    tolerance: float
    fp16: bool
    tiling: str = "exact"
    parity_levels: str = ""  # third-party conversions: the difference in 8-bit levels over the engine's shapes
    shapes: str = "any size"


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth image with edges: gradients, a disc and stripes, (1,3,H,W) float32 in [0,1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (min(height, width) / 4) ** 2).astype(np.float32)
    planes = [0.5 + 0.3 * np.sin(xx / (4 + c) + yy / 7) * disc + 0.2 * (xx / width) for c in range(3)]
    img = np.stack(planes) + rng.normal(0, 0.01, (3, height, width)).astype(np.float32)
    return np.clip(img, 0, 1)[None].astype(np.float32)


class PReLUAsReluMix(nn.Module):
    """PReLU written as ``slope * x + (1 - slope) * relu(x)``: the same function, in the ops onnxruntime runs fast.

    onnxruntime's CPU PRelu kernel works outside its blocked (NCHWc) convolution layout, so each PReLU
    cost a layout round trip and a slow broadcast: 34% of `repsr-x2`'s kernel time on a 344x264 tile.
    Written this way, the per-channel products become depthwise 1x1 convolutions and the sum fuses into
    them, all in the blocked layout: the whole network ran in 188 ms instead of 236-258 ms.
    """

    def __init__(self, prelu: nn.PReLU) -> None:
        super().__init__()
        slope = prelu.weight.detach().clone().reshape(1, -1, 1, 1)
        self.register_buffer("slope", slope)
        self.register_buffer("keep", 1 - slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.slope + torch.relu(x) * self.keep


def lower_for_onnxruntime(model: nn.Module) -> nn.Module:
    """Replace, in place, every PReLU by its onnxruntime-friendly form (see `PReLUAsReluMix`)."""
    for name, child in model.named_children():
        if isinstance(child, nn.PReLU):
            setattr(model, name, PReLUAsReluMix(child))
        else:
            lower_for_onnxruntime(child)
    return model


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
    proto = onnx.load_from_string(buffer.getvalue())
    for node in proto.graph.node:  # torch's per-node debug records: stack traces with this machine's paths
        del node.metadata_props[:]
    return proto


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
    """Write ``output`` from ``checkpoint`` (ours, or any weight file spandrel knows: the content decides);
    raises TrainingError when it cannot be loaded, is not an RGB upscaler, or parity fails (nothing written)."""
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
