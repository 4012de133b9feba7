"""What both exports share: the graph's lowering for onnxruntime, the test picture, the tolerances, the summary.

Our checkpoints (`onnx_export`) and third-party weight files (`third_party`) are two callers of this module;
neither imports the other's internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

OPSET = 18
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2


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
    dtype: str = ""  # what the arithmetic is, where float16/float32 does not say it (int8 graphs)


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth image with edges: gradients, a disc and stripes, (1,3,H,W) float32 in [0,1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    disc = ((yy - height / 2) ** 2 + (xx - width / 3) ** 2 < (min(height, width) / 4) ** 2).astype(np.float32)
    planes = [0.5 + 0.3 * np.sin(xx / (4 + c) + yy / 7) * disc + 0.2 * (xx / width) for c in range(3)]
    img = np.stack(planes) + rng.normal(0, 0.01, (3, height, width)).astype(np.float32)
    return np.clip(img, 0, 1)[None].astype(np.float32)


def parity_inputs() -> list[np.ndarray]:
    """The inputs an export is checked on: random and photo-like, at two odd sizes."""
    rng = np.random.default_rng(0)
    return [x for h, w in ((37, 53), (96, 64)) for x in (rng.random((1, 3, h, w), dtype=np.float32), photo_like(h, w))]


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


def strip_node_metadata(data: bytes) -> onnx.ModelProto:
    """The exported graph without torch's per-node debug records (stack traces with this machine's paths)."""
    proto = onnx.load_from_string(data)
    for node in proto.graph.node:
        del node.metadata_props[:]
    return proto


def levels(x: np.ndarray) -> np.ndarray:
    """Model output in [0, 1] as the 8-bit levels a file gets (clipped, rounded): parity is judged in these."""
    return np.round(np.clip(x, 0, 1) * 255).astype(np.int32)
