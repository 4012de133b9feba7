"""Rewrite float ONNX upscalers that shuffle twice so that they shuffle once, the same output to the bit.

    python scripts/shuffle_once.py upscale/models/*.onnx

Graphs exported before `upscale-export` added the detail to the bicubic phases ahead of the pixel shuffle end in
``DepthToSpace(detail) + DepthToSpace(bicubic phases)``. A DepthToSpace is a permutation, so
``DepthToSpace(detail + phases)`` is the same sum of the same numbers in the same places, with one DepthToSpace
instead of two (onnxruntime's CPU kernel for it is slow: `benchmarks/shuffle_cost.py`). Everything else in the file
(weights, names, metadata) stays. A file is written only if onnxruntime gives bit-identical outputs before and after
on two inputs; files without the pattern are left alone.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper


def shuffle_once(proto: onnx.ModelProto) -> bool:
    """Rewrite ``proto`` in place; False when its graph does not end in two DepthToSpace and their Add."""
    graph = proto.graph
    producers = {out: node for node in graph.node for out in node.output}
    output = graph.output[0].name
    add = producers.get(output)
    if add is None or add.op_type != "Add":
        return False
    shuffles = [producers.get(name) for name in add.input]
    if any(s is None or s.op_type != "DepthToSpace" for s in shuffles):
        return False
    if shuffles[0].attribute != shuffles[1].attribute:
        return False
    for node in (add, *shuffles):
        graph.node.remove(node)
    summed = f"{output}.phases"
    graph.node.append(helper.make_node("Add", [shuffles[0].input[0], shuffles[1].input[0]], [summed], name=summed))
    last = helper.make_node("DepthToSpace", [summed], [output], name=shuffles[0].name)
    last.attribute.extend(shuffles[0].attribute)
    graph.node.append(last)
    return True


def outputs(model: bytes) -> list[np.ndarray]:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    dtype = np.float16 if "float16" in feed.type else np.float32
    rng = np.random.default_rng(0)
    return [session.run(None, {feed.name: rng.random((1, 3, h, w)).astype(dtype)})[0] for h, w in ((37, 53), (64, 48))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", type=Path, nargs="+")
    for path in parser.parse_args().files:
        proto = onnx.load(path)
        before = proto.SerializeToString()
        if not shuffle_once(proto):
            print(f"{path}: left alone")
            continue
        after = proto.SerializeToString()
        if not all(np.array_equal(a, b) for a, b in zip(outputs(before), outputs(after), strict=True)):
            raise SystemExit(f"{path}: the rewritten graph gives other numbers; not written")
        path.write_bytes(after)
        print(f"{path}: shuffles once")


if __name__ == "__main__":
    main()
