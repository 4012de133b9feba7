"""The bundled bicubic model is exactly onnxruntime's own cubic Resize (a = -0.5, half-pixel)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from upscale.export.bicubic import build_bicubic_model

from upscale.bicubic import keys_kernel, phase_taps


def resize_reference(scale: int) -> bytes:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    node = helper.make_node("Resize", ["input", "roi", "scales"], ["output"], mode="cubic", cubic_coeff_a=-0.5,
                            coordinate_transformation_mode="half_pixel")
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
             numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")]
    model = helper.make_model(helper.make_graph([node], "r", [x], [y], initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_polyphase_conv_equals_cubic_resize(scale: int) -> None:
    ours = ort.InferenceSession(build_bicubic_model(scale).SerializeToString())
    ref = ort.InferenceSession(resize_reference(scale))
    x = np.random.default_rng(scale).random((2, 3, 13, 9), dtype=np.float32)
    assert np.abs(ours.run(None, {"input": x})[0] - ref.run(None, {"input": x})[0]).max() < 1e-5


def test_taps_sum_to_one_and_kernel_is_keys() -> None:
    assert np.allclose(phase_taps(4).sum(axis=1), 1.0)
    assert keys_kernel(np.array([0.0, 1.0, 2.0])).tolist() == [1.0, 0.0, 0.0]
    assert keys_kernel(np.array(0.5)) == pytest.approx(0.5625)
