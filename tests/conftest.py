"""Shared fixtures: tiny ONNX models built here (no network, no GPU, no ../shared data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from upscale.export.metadata import attach_metadata

from upscale.contract import ModelInfo


def build_conv_model(scale: int = 2, with_metadata: bool = True, seed: int = 0) -> onnx.ModelProto:
    """Two 3x3 convolutions and a pixel shuffle: receptive-field radius 2, real arithmetic, fast.

    The output adds the nearest-neighbour upscaled input, so it looks like an image (and stays near [0,1]).
    """
    rng = np.random.default_rng(seed)
    hidden = 8
    w1 = (rng.standard_normal((hidden, 3, 3, 3)) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal(hidden) * 0.05).astype(np.float32)
    w2 = (rng.standard_normal((3 * scale * scale, hidden, 3, 3)) * 0.05).astype(np.float32)
    b2 = np.zeros(3 * scale * scale, np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["h1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("Conv", ["h2", "w2", "b2"], ["h3"], pads=[1, 1, 1, 1]),
        helper.make_node("DepthToSpace", ["h3"], ["residual"], blocksize=scale, mode="CRD"),
        helper.make_node("Resize", ["input", "", "scales"], ["base"], mode="nearest"),
        helper.make_node("Add", ["base", "residual"], ["output"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")]]
    inits.append(numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "sH", "sW"])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if with_metadata:
        attach_metadata(model, ModelInfo(scale=scale, architecture="tiny-test", tile_overlap=2,
                                         description="test model"))
    onnx.checker.check_model(model)
    return model


def build_nearest_model(scale: int = 2) -> onnx.ModelProto:
    """Each pixel repeated scale x scale times: every output pixel is an input pixel, so a test can check a whole
    file's trip (decoding, orientation, depth, encoding) exactly, against another decoder."""
    nodes = [helper.make_node("Resize", ["input", "", "scales"], ["output"], mode="nearest")]
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    graph = helper.make_graph(
        nodes, "nearest", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, "sH", "sW"])], initializer=[scales],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    attach_metadata(model, ModelInfo(scale=scale, architecture="nearest-test", tile_overlap=0,
                                     description="pixel repetition"))
    return model


@pytest.fixture(scope="session")
def nearest_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "nearest-x2.onnx"
    onnx.save(build_nearest_model(2), path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny-x2.onnx"
    onnx.save(build_conv_model(2), path)
    return path


@pytest.fixture(scope="session")
def bare_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same network with no metadata, like a third-party export."""
    path = tmp_path_factory.mktemp("models") / "bare-x3.onnx"
    onnx.save(build_conv_model(3, with_metadata=False), path)
    return path


def photo(height: int = 40, width: int = 56, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 image (random noise is a poor stand-in for a photo)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [
        127 + 100 * np.sin(xx / (3 + c) + rng.uniform(0, 6)) * np.cos(yy / (4 + c) + rng.uniform(0, 6))
        for c in range(channels)
    ]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


@pytest.fixture
def plenty_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline's memory budget made independent of what the machine has free right now (other jobs may hold
    most of it), for tests about ordering and batching rather than memory."""
    from upscale import pipeline
    from upscale.memory import Budget

    monkeypatch.setattr(pipeline, "budget", lambda max_memory=None: Budget(1 << 40, "test"))
