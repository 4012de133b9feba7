"""The honest peer of `upscale dir`: the simple onnxruntime loop a user with an ONNX model writes.

    python benchmarks/simple_ort_loop.py MODEL.onnx IN_DIR OUT_DIR [--png-compression 6]

One session with onnxruntime's defaults, each whole image in one run, Pillow to read and write, one file after
the other: about ten lines. `benchmarks/throughput.py` times it against `upscale dir` at equal PNG settings.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("inputs", type=Path)
    parser.add_argument("outputs", type=Path)
    parser.add_argument("--png-compression", type=int, default=6)
    args = parser.parse_args()
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    args.outputs.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in args.inputs.iterdir() if p.is_file()):
        x = np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255
        y = session.run(None, {name: x})[0][0]
        image = Image.fromarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))
        image.save(args.outputs / f"{path.stem}.png", compress_level=args.png_compression)


if __name__ == "__main__":
    main()
