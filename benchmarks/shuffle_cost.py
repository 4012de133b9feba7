"""What the float graphs' pixel shuffle costs on the CPU, and what the int8 twin gains over a float graph without it.

    python benchmarks/shuffle_cost.py [--model fast-x2] [--rounds 8]

The float models shuffle pixels with one DepthToSpace, the detail added to the bicubic phases first; the graphs
exported before shuffled the two and added them at full size (`scripts/shuffle_once.py`). A DepthToSpace is exact on
a GPU, but onnxruntime's CPU kernel for it is slow. The int8 twins shuffle with a ConvTranspose of one-hot weights
(exact on the CPU). This times, on a batch of two 408x408 windows (as `int8_speed.py`), one onnxruntime session each
(all threads), taking turns, best of five per round: ``MODEL`` shuffling twice (rebuilt here), ``MODEL`` as shipped,
``MODEL`` with its DepthToSpace replaced by that ConvTranspose (the three give the same output, bit for bit, checked
here), and ``MODEL-int8`` where it ships. The int8 gain over the third is its gain over a float graph written for
the CPU.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from throughput import timed  # benchmarks/ is on the path when run as a script
from upscale.export.int8_export import one_hot_shuffle

from upscale.registry import bundled_models, resolve_model_path


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


def shuffled_twice(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` (ending in Add then DepthToSpace) as exported before: each addend shuffled, then added."""
    graph = proto.graph
    shuffle = graph.node[-1]
    add = next(node for node in graph.node if node.output[0] == shuffle.input[0])
    if shuffle.op_type != "DepthToSpace" or add.op_type != "Add":
        raise ValueError("the graph does not end in Add, DepthToSpace")
    graph.node.remove(shuffle)
    graph.node.remove(add)
    for i, addend in enumerate(add.input):
        node = helper.make_node("DepthToSpace", [addend], [f"shuffled{i}"], name=f"shuffle{i}")
        node.attribute.extend(shuffle.attribute)
        graph.node.append(node)
    graph.node.append(helper.make_node("Add", ["shuffled0", "shuffled1"], list(shuffle.output), name="sum"))
    return proto


def session(model: bytes) -> ort.InferenceSession:
    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fast-x2")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    path = resolve_model_path(args.model)
    floats = {f"{args.model} shuffling twice": shuffled_twice(onnx.load(path)), args.model: onnx.load(path),
              f"{args.model} without DepthToSpace": without_depth_to_space(onnx.load(path))}
    sessions = {name: session(proto.SerializeToString()) for name, proto in floats.items()}
    twin = f"{args.model}-int8"
    if twin in bundled_models():
        sessions[twin] = session(resolve_model_path(twin).read_bytes())
    batch = np.random.default_rng(0).random((2, 3, 408, 408), dtype=np.float32)
    first, *others = [s.run(None, {s.get_inputs()[0].name: batch})[0] for s in list(sessions.values())[:3]]
    if not all(np.array_equal(first, other) for other in others):
        raise SystemExit("the rewritten float graphs do not give the same output")
    best = dict.fromkeys(sessions, float("inf"))
    for _ in range(args.rounds):
        for name, s in sessions.items():
            feed = {s.get_inputs()[0].name: batch}
            best[name] = min(best[name], *(timed(lambda s=s, f=feed: s.run(None, f)) for _ in range(5)))
    twice, shipped, rewritten, *int8 = best.values()
    ratios = {"shipped_over_twice": round(twice / shipped, 2), "rewritten_over_shipped": round(shipped / rewritten, 2)}
    if int8:
        ratios |= {"int8_over_shipped_float": round(shipped / int8[0], 2),
                   "int8_over_rewritten_float": round(rewritten / int8[0], 2)}
    print(json.dumps({"ms": {n: round(v * 1000, 1) for n, v in best.items()}, **ratios}, indent=2))

if __name__ == "__main__":
    main()
