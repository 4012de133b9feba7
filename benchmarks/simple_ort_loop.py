"""The honest peer of `upscale dir`: the simple onnxruntime loop a user with an ONNX model writes.

    python benchmarks/simple_ort_loop.py MODEL.onnx IN_DIR OUT_DIR [--png-compression 6] [--device cpu]

One session with onnxruntime's defaults, each whole image in one run, Pillow to read and write, one file after
the other: about ten lines. `benchmarks/throughput.py` times it against `upscale dir` at equal PNG settings, and
`benchmarks/device_check.py` on a GPU (``--device cuda``, ``webgpu``, ``directml``, ``coreml``: the provider as
its own documentation says to ask for it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def open_session(model: str, device: str) -> ort.InferenceSession:
    """The session a user writes for ``device``: a providers list, or for WebGPU the plugin's three steps."""
    if device == "webgpu":
        import onnxruntime_ep_webgpu

        ort.register_execution_provider_library("webgpu", onnxruntime_ep_webgpu.get_library_path())
        options = ort.SessionOptions()
        options.add_provider_for_devices([d for d in ort.get_ep_devices()
                                          if d.ep_name == "WebGpuExecutionProvider"][:1], {})
        return ort.InferenceSession(model, options)
    provider = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "directml": "DmlExecutionProvider",
                "coreml": "CoreMLExecutionProvider"}[device]
    return ort.InferenceSession(model, providers=[provider, "CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("inputs", type=Path)
    parser.add_argument("outputs", type=Path)
    parser.add_argument("--png-compression", type=int, default=6)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "webgpu", "directml", "coreml"])
    args = parser.parse_args()
    session = open_session(args.model, args.device)
    name = session.get_inputs()[0].name
    args.outputs.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in args.inputs.iterdir() if p.is_file()):
        x = np.asarray(Image.open(path).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255
        y = session.run(None, {name: x})[0][0]
        image = Image.fromarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0))
        image.save(args.outputs / f"{path.stem}.png", compress_level=args.png_compression)


if __name__ == "__main__":
    main()
