"""A bicubic-interpolation ONNX model (bundled as `bicubic-x2`): the reference that learned models must beat,
and a near-free model that stands in for a fast one when measuring the pipeline.

Bicubic upscaling by an integer factor s is a polyphase filter: output pixel s*i + p reads input
pixels i-2 .. i+2 with fixed weights that depend only on the phase p. So the model is an edge pad,
one grouped 5x5 convolution to 3*s*s channels and a pixel shuffle (DepthToSpace): the Keys kernel with
a = -0.5 (MATLAB's and Pillow's), half-pixel centres, borders replicated. This runs many times faster
in onnxruntime than its cubic ``Resize`` kernel, and each output pixel reads a 5x5 neighbourhood, so a
tile overlap of 2 input pixels joins tiles exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from upscale.bicubic import phase_taps
from upscale.contract import ModelInfo

from .metadata import attach_metadata

OPSET = 17


def build_bicubic_model(scale: int) -> onnx.ModelProto:
    """The ONNX model that upscales by ``scale`` with bicubic interpolation, metadata included."""
    taps = phase_taps(scale)
    kernels = np.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 5, 5)  # phase (py, px)
    weight = np.tile(kernels, (3, 1, 1, 1)).astype(np.float32)  # channel-major: DepthToSpace CRD order
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "sH", "sW"])
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="edge"),
        helper.make_node("Conv", ["padded", "weight"], ["phases"], group=3, kernel_shape=[5, 5]),
        helper.make_node("DepthToSpace", ["phases"], ["output"], blocksize=scale, mode="CRD"),
    ]
    inits = [
        numpy_helper.from_array(np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64), "pads"),
        numpy_helper.from_array(weight, "weight"),
    ]
    graph = helper.make_graph(nodes, f"bicubic_x{scale}", [x], [y], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="upscale-export")
    model.ir_version = 8
    info = ModelInfo(
        scale=scale, architecture="bicubic", tile_overlap=2,
        description=f"bicubic interpolation x{scale} (no learned weights; a baseline and fallback)",
    )
    attach_metadata(model, info)
    onnx.checker.check_model(model)
    return model
