"""What the float graphs' DepthToSpace costs on the CPU, and what the int8 twin gains over a float graph without it.

    python benchmarks/shuffle_cost.py [--model fast-x2] [--rounds 8]

The float models shuffle pixels with one DepthToSpace (the detail added to the bicubic phases first), which a GPU
runs exactly; onnxruntime's CPU kernel for it is slow. The int8 twins shuffle with a ConvTranspose of one-hot
weights (exact on the CPU). This times, on a batch of two 408x408 windows (as `int8_speed.py`), one onnxruntime
session each (all threads), taking turns, best of five per round: ``MODEL`` as shipped, ``MODEL`` with every
DepthToSpace replaced by that ConvTranspose (the same output, bit for bit, checked here), and ``MODEL-int8``. The
int8 gain over the second is its gain over a float graph written for the CPU.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from upscale.export.int8_export import one_hot_shuffle

from upscale.registry import resolve_model_path


def without_depth_to_space(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with each DepthToSpace (CRD) as a one-hot ConvTranspose."""
    graph = proto.graph
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "DepthToSpace":
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attributes.get("mode", b"DCR") != b"CRD":
            raise ValueError(f"{node.name}: only CRD DepthToSpace is rewritten")
        block = attributes["blocksize"]
        weight = f"{node.name or index}.one_hot"
        graph.initializer.append(numpy_helper.from_array(one_hot_shuffle(block), weight))
        graph.node.remove(node)
        graph.node.insert(index, helper.make_node("ConvTranspose", [node.input[0], weight], list(node.output),
                                                  strides=[block, block], kernel_shape=[block, block]))
    return proto


def session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fast-x2")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    shipped = onnx.load(resolve_model_path(args.model))
    rewritten = without_depth_to_space(onnx.load(resolve_model_path(args.model)))
    sessions = {args.model: session(shipped.SerializeToString()),
                f"{args.model} without DepthToSpace": session(rewritten.SerializeToString()),
                f"{args.model}-int8": session(resolve_model_path(f"{args.model}-int8").read_bytes())}
    batch = np.random.default_rng(0).random((2, 3, 408, 408), dtype=np.float32)
    outputs = [s.run(None, {s.get_inputs()[0].name: batch})[0] for s in list(sessions.values())[:2]]
    if not np.array_equal(*outputs):
        raise SystemExit("the rewritten float graph does not give the same output")
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(args.rounds):
        for name, s in sessions.items():
            feed = {s.get_inputs()[0].name: batch}
            for _ in range(5):
                start = time.perf_counter()
                s.run(None, feed)
                best[name] = min(best[name], time.perf_counter() - start)
    names = list(sessions)
    print(json.dumps({"ms": {n: round(v * 1000, 1) for n, v in best.items()},
                      "float_rewritten_over_shipped": round(best[names[0]] / best[names[1]], 2),
                      "int8_over_shipped_float": round(best[names[0]] / best[names[2]], 2),
                      "int8_over_rewritten_float": round(best[names[1]] / best[names[2]], 2)}, indent=2))


if __name__ == "__main__":
    main()
