"""A bicubic-interpolation ONNX model: the bundled default until a trained model ships, and the
`bicubic` reference that learned models must beat.

One ONNX ``Resize`` node, cubic with a = -0.5 (the Keys kernel MATLAB and Pillow use), half-pixel
centres, borders replicated. Each output pixel reads a 4x4 input neighbourhood, so a tile overlap of
2 input pixels joins tiles exactly.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from upscale.contract import ModelInfo

from .metadata import attach_metadata

OPSET = 17


def build_bicubic_model(scale: int) -> onnx.ModelProto:
    """The ONNX model that upscales by ``scale`` with bicubic interpolation, metadata included."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "sH", "sW"])
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    roi = numpy_helper.from_array(np.zeros(0, np.float32), "roi")
    node = helper.make_node(
        "Resize", ["input", "roi", "scales"], ["output"], mode="cubic", cubic_coeff_a=-0.5,
        coordinate_transformation_mode="half_pixel", exclude_outside=0,
    )
    graph = helper.make_graph([node], f"bicubic_x{scale}", [x], [y], initializer=[roi, scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="upscale-export")
    model.ir_version = 8
    info = ModelInfo(
        scale=scale, architecture="bicubic", tile_overlap=2,
        description=f"bicubic interpolation x{scale} (no learned weights; a baseline and fallback)",
    )
    attach_metadata(model, info)
    onnx.checker.check_model(model)
    return model
