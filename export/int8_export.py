"""A quantisation-aware checkpoint (`repsr-relu-int8`) -> QDQ ONNX that onnxruntime runs on integer kernels.

The graph is written node by node rather than traced: what onnxruntime fuses is a fixed pattern, and tracing
fake-quantisation leaves the weights as float constants behind a QuantizeLinear. Here each body convolution is
``DequantizeLinear(int8 weight, per channel) -> Conv (int32 bias) [-> Relu] -> QuantizeLinear(uint8) ->
DequantizeLinear``, which onnxruntime folds into one QLinearConv (a ReLU before a zero-point-0 quantisation is
dropped as redundant). The first and the last convolutions run in float32 on the same numbers (their int8 weights
already multiplied by their steps, or with ``float_ends`` their weights as trained): the first reads the 3-channel
picture, too narrow for the integer kernel to gain (float32 there made the graph 2-7% faster), and the last writes
float32; behind a DequantizeLinear onnxruntime would not give them its blocked-layout float kernel, and ahead of a
QuantizeLinear it would quantise float weights its own way. The first reads the float32 input as it is (PyTorch
rounds it to 8-bit levels first: the same numbers for 8-bit pictures). The bicubic branch and the residual sum are
float32 too, and the pixel shuffle is a ConvTranspose with one-hot weights: exact on the CPU (a product by 1 plus
products by 0) and twice as fast as onnxruntime's DepthToSpace; the float graphs keep DepthToSpace, since a GPU may
run a ConvTranspose in TF32 and round. `integer_convolutions` checks the folded graph: a model whose convolutions
stayed float between Q/DQ pairs would be slower than float32, so it is refused, not shipped.
"""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from upscale.train.quantised import RepSRInt8, weight_scales

from upscale.errors import TrainingError

from .graph import OPSET, levels, parity_inputs

IR_VERSION = 9  # what onnxruntime 1.17 and later read (onnx would write its own newest)
INTEGER_CONVOLUTIONS = frozenset({"QLinearConv", "NhwcQLinearConv", "ConvInteger"})


class _Graph:
    """Nodes and initialisers of the graph being written, with names made unique."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def constant(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attributes: object) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def requantise(self, tensor: str, name: str, scale: float, zero_point: int) -> str:
        """QuantizeLinear then DequantizeLinear: the uint8 tensor the next integer kernel reads."""
        s = self.constant(f"{name}.scale", np.array(scale, np.float32))
        z = self.constant(f"{name}.zero_point", np.array(zero_point, np.uint8))
        quantised = self.node("QuantizeLinear", [tensor, s, z], f"{name}.q")
        return self.node("DequantizeLinear", [quantised, s, z], f"{name}.dq")


def _convolution(graph: _Graph, name: str, conv: torch.nn.Conv2d, source: str, input_scale: float,
                 float_weight: torch.Tensor | None = None) -> str:
    """An int8-weight convolution reading a tensor of step ``input_scale``, its bias in int32 as onnxruntime's
    integer kernel wants. With ``float_weight`` (the first and last, as the network computes them: int8 levels
    times their steps, or unrounded) a float kernel, the bias in float32."""
    if float_weight is not None:
        w = graph.constant(f"{name}.weight", float_weight.detach().numpy().astype(np.float32))
        b = graph.constant(f"{name}.bias", conv.bias.detach().numpy().astype(np.float32))
        return graph.node("Conv", [source, w, b], f"{name}.out", pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    weight = conv.weight.detach().double()
    scales = weight_scales(weight).double()
    levels = torch.round(weight / scales[:, None, None, None]).clamp(-127, 127).numpy().astype(np.int8)
    w = graph.node("DequantizeLinear", [graph.constant(f"{name}.weight", levels),
                                        graph.constant(f"{name}.weight_scale", scales.numpy().astype(np.float32)),
                                        graph.constant(f"{name}.weight_zero", np.zeros(len(scales), np.int8))],
                   f"{name}.weight.dq", axis=0)
    bias_scales = (input_scale * scales).numpy()
    bias = np.round(conv.bias.detach().double().numpy() / bias_scales).astype(np.int32)
    b = graph.node("DequantizeLinear", [graph.constant(f"{name}.bias", bias),
                                        graph.constant(f"{name}.bias_scale", bias_scales.astype(np.float32)),
                                        graph.constant(f"{name}.bias_zero", np.zeros(len(scales), np.int32))],
                   f"{name}.bias.dq", axis=0)
    return graph.node("Conv", [source, w, b], f"{name}.out", pads=[1, 1, 1, 1], kernel_shape=[3, 3])


def _bicubic_phases(graph: _Graph, model: RepSRInt8) -> str:
    """The float32 bicubic enlargement of the input before its pixel shuffle: edge padding, then a grouped 5x5
    convolution to the scale x scale phases of each channel."""
    pads = graph.constant("bicubic.pads", np.array([0, 0, 2, 2, 0, 0, 2, 2], np.int64))
    padded = graph.node("Pad", ["input", pads], "bicubic.padded", mode="edge")
    weight = graph.constant("bicubic.weight", model.upsample.conv.weight.detach().numpy().astype(np.float32))
    return graph.node("Conv", [padded, weight], "bicubic.phases", group=3, kernel_shape=[5, 5])


def one_hot_shuffle(scale: int, channels: int = 3) -> np.ndarray:
    """ConvTranspose weights that do DepthToSpace in CRD order: input channel c*s*s + i*s + j is output channel
    c's pixel (i, j) of each s x s block."""
    weight = np.zeros((channels * scale * scale, channels, scale, scale), np.float32)
    for c, i, j in itertools.product(range(channels), range(scale), range(scale)):
        weight[(c * scale + i) * scale + j, c, i, j] = 1
    return weight


def to_qdq_onnx(model: RepSRInt8) -> onnx.ModelProto:
    """The int8 network as a QDQ graph with dynamic batch, height and width."""
    graph = _Graph()
    h, step = "input", 1 / 255
    for i, (conv, observed) in enumerate(zip(model.convs[:-1], model.ranges, strict=True)):
        first = model.weight(0) if i == 0 else None
        h = graph.node("Relu", [_convolution(graph, f"conv{i}", conv, h, step, first)], f"conv{i}.relu")
        step, zero_point = observed.qparams()
        h = graph.requantise(h, f"conv{i}.act", step, zero_point)
    last = len(model.ranges)
    h = _convolution(graph, f"conv{last}", model.convs[-1], h, step, model.weight(last))
    # the pixel shuffle is linear: adding the detail to the bicubic phases first shuffles once, a quarter the sum
    summed = graph.node("Add", [h, _bicubic_phases(graph, model)], "phases")
    shuffle = graph.constant("shuffle.weight", one_hot_shuffle(model.scale))
    graph.node("ConvTranspose", [summed, shuffle], "output", strides=[model.scale] * 2, kernel_shape=[model.scale] * 2)
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", 3, dims[0], dims[1]])
          for name, dims in (("input", ("H", "W")), ("output", ("H_out", "W_out")))]
    proto = helper.make_model(helper.make_graph(graph.nodes, "repsr-relu-int8", [io[0]], [io[1]],
                                                graph.initializers),
                              opset_imports=[helper.make_opsetid("", OPSET)], producer_name="upscale-export",
                              ir_version=IR_VERSION)
    onnx.checker.check_model(proto)
    return proto


def optimised_op_types(proto: onnx.ModelProto) -> list[str]:
    """Node types of the graph onnxruntime's CPU engine really runs (after all its fusions)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # its warning that the saved graph is for this machine only: that is the point
    with tempfile.TemporaryDirectory() as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimised.onnx")
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]


def integer_layers(model: RepSRInt8) -> int:
    """How many of the network's convolutions the graph runs on integer kernels: all but the first and last."""
    return len(model.convs) - 2


def integer_convolutions(proto: onnx.ModelProto, expected: int) -> int:
    """How many convolutions onnxruntime runs on integer kernels; TrainingError when fewer than ``expected``."""
    types = optimised_op_types(proto)
    integer = sum(t in INTEGER_CONVOLUTIONS for t in types)
    if integer < expected:
        float_convs = sum("Conv" in t and t not in INTEGER_CONVOLUTIONS for t in types)
        raise TrainingError(f"onnxruntime folded only {integer} of {expected} convolutions into integer kernels "
                            f"({float_convs} float ones remain): not written")
    return integer


INT8_MAX_LEVELS = 8  # largest torch-vs-onnxruntime difference in 8-bit levels an int8 export may show
INT8_P999_LEVELS = 4  # ... and at the 99.9th percentile (measured: 2-3; see int8_parity)


def int8_parity(proto: onnx.ModelProto, reference: RepSRInt8) -> tuple[int, float]:
    """(max, 99.9th percentile) of |onnxruntime - PyTorch| in 8-bit levels on 8-bit inputs (random and photo-like,
    two sizes). They differ: PyTorch's float convolutions and onnxruntime's integer ones agree to ~1e-5, but an
    activation that close to a rounding boundary takes the neighbouring step, and that step travels through every
    layer after it (1 in 400 activations per layer; 20-40% of output pixels then differ, mostly by 1 level, at
    most 4 on trained networks). A wrong graph (a scale, a zero point, a bias) differs by tens of levels."""
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    diffs = []
    for x in parity_inputs():
        x = np.round(x * 255).astype(np.float32) / 255
        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        diffs.append(np.abs(levels(session.run(None, {"input": x})[0]) - levels(want)).ravel())
    every = np.concatenate(diffs)
    max_levels, p999 = int(every.max()), float(np.percentile(every, 99.9))
    if max_levels > INT8_MAX_LEVELS or p999 > INT8_P999_LEVELS:
        raise TrainingError(f"onnxruntime's int8 graph differs from PyTorch by up to {max_levels} levels (99.9th "
                            f"percentile {p999:g}; bounds {INT8_MAX_LEVELS} and {INT8_P999_LEVELS}): not written")
    return max_levels, p999
