"""How much int8 gains over float32 for network shapes of your choosing, before training any of them.

    python benchmarks/int8_shapes.py [--scale 2] [--shapes 16x12,32x6,32x4] [--rounds 4]

For each CHANNELSxDEPTH: a `repsr-relu` (folded, as `upscale-export` writes it) and its `repsr-relu-int8` twin (as
`export.int8_export` writes it), both with random weights: the work, not the weights, sets the time. One
onnxruntime session each with one thread (the engine gives each of its two sessions half the cores), one 408x408
window, taking turns, best of three per round; the multiply-adds per output pixel say what the shape costs in
float. `fast-x2` is 16x12 at scale 2, `fast-x4` 32x10 at scale 4.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
import onnxruntime as ort
import torch
from throughput import timed  # benchmarks/ is on the path when run as a script
from upscale.export.int8_export import to_qdq_onnx
from upscale.export.onnx_export import to_onnx
from upscale.train.arch import create_model


def session(proto: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def pair(scale: int, channels: int, depth: int) -> tuple[ort.InferenceSession, ort.InferenceSession, float]:
    """(float session, int8 session, multiply-adds per output pixel) for one shape."""
    float_model = create_model("repsr-relu", scale, channels=channels, depth=depth).eval().fold().eval()
    twin = create_model("repsr-relu-int8", scale, channels=channels, depth=depth).eval()
    for observed in twin.ranges:  # ranges as after training: frozen, here at 1.0
        observed.range.fill_(1.0)
        observed.frozen.fill_(True)
    return (session(to_onnx(float_model)), session(to_qdq_onnx(twin.fold().eval())),
            float_model.describe().macs_per_output_pixel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--shapes", default="16x12,32x6,32x4", help="CHANNELSxDEPTH, comma-separated")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    window = {"input": np.random.default_rng(0).random((1, 3, 408, 408), dtype=np.float32)}
    results = {}
    for shape in args.shapes.split(","):
        channels, depth = (int(v) for v in shape.split("x"))
        float_session, int8_session, macs = pair(args.scale, channels, depth)
        best = [float("inf"), float("inf")]
        for _ in range(args.rounds):
            for i, s in enumerate((float_session, int8_session)):
                s.run(None, window)
                best[i] = min(best[i], *(timed(lambda s=s: s.run(None, window)) for _ in range(3)))
        results[shape] = {"macs_per_output_pixel": round(macs), "float_ms": round(best[0] * 1000, 1),
                          "int8_ms": round(best[1] * 1000, 1), "int8_over_float": round(best[0] / best[1], 2)}
    print(json.dumps({"scale": args.scale, **results}, indent=2))


if __name__ == "__main__":
    main()
