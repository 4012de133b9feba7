"""Does int8 pay? onnxruntime's static quantisation of a model, measured for speed and pixels against float32.

    python benchmarks/int8.py --model fast-x2 --calibration ../shared/datasets/train/T91 \
        [--val ../shared/datasets/val/Set5 --val ../shared/datasets/val/Set14] [--keep int8.onnx]

What a new user would try (issue 14): `onnxruntime.quantization.quantize_static`, QDQ format, int8 weights per
channel, uint8 activations, MinMax calibration on --calibration images (LR inputs: bicubic downscales of them),
after onnxruntime's `quant_pre_process`. Then, with the engine's session options, in one run:

- compute: output MP/s of float32 and int8 on batches of two 408x408 windows (the engine's automatic batch);
- pixels: mean and max absolute difference, in 8-bit levels, of the two models' outputs on the --val images
  (or generated photo-like ones);
- quality: Y-PSNR of each on --val (`upscale eval`'s protocol), if given.

The contract metadata (scale, overlap...) is copied onto the quantised model, so `--keep FILE` gives a model
`upscale dir --model FILE` runs.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image
from throughput import cpu_name, photo_like  # benchmarks/ is on the path when run as a script

from upscale import load_model
from upscale.bicubic import imresize
from upscale.evaluate import evaluate, model_upscaler, summarise
from upscale.model import _session_options
from upscale.registry import resolve_model_path


class LowResImages(CalibrationDataReader):
    """Calibration batches: bicubic half-size copies of images, cropped to 96x96 LR, one per batch."""

    def __init__(self, folder: Path | None, scale: int, name: str, limit: int = 32) -> None:
        if folder is None:
            images = [photo_like(192, 192, seed) for seed in range(limit)]
        else:
            paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".bmp", ".tif"})
            images = [np.asarray(Image.open(p).convert("RGB")) for p in paths[:limit]]
        batches = []
        for image in images:
            lr = imresize(image[: image.shape[0] // scale * scale, : image.shape[1] // scale * scale], 1 / scale)
            crop = lr[:96, :96].astype(np.float32).transpose(2, 0, 1)[None] / 255
            batches.append({name: np.ascontiguousarray(crop)})
        self.batches = iter(batches)

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def quantise(source: Path, target: Path, calibration: Path | None, scale: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # dynamic H, W
        name = onnx.load(str(prepared)).graph.input[0].name
        quantize_static(str(prepared), str(target), LowResImages(calibration, scale, name),
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8)
    quantised, original = onnx.load(str(target)), onnx.load(str(source))
    del quantised.metadata_props[:]
    quantised.metadata_props.extend(original.metadata_props)  # the contract: scale, overlap, provenance
    onnx.save(quantised, str(target))


def mp_per_s(path: Path, scale: int, repeats: int = 5) -> float:
    session = ort.InferenceSession(str(path), _session_options(None), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = np.random.default_rng(0).random((2, 3, 408, 408), dtype=np.float32)
    session.run(None, {name: batch})
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {name: batch})
        best = min(best, time.perf_counter() - start)
    return 2 * 408 * 408 * scale * scale / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fast-x2")
    parser.add_argument("--calibration", type=Path, help="folder of HR images (default: generated)")
    parser.add_argument("--val", type=Path, action="append", default=[], help="HR folder to score on (repeatable)")
    parser.add_argument("--keep", type=Path, help="also save the quantised model here")
    args = parser.parse_args()

    source = resolve_model_path(args.model)
    scale = load_model(source, "cpu").scale
    with tempfile.TemporaryDirectory() as tmp:
        target = args.keep or Path(tmp) / "int8.onnx"
        quantise(source, target, args.calibration, scale)
        # Alternate the two twice, best of each: a noisy neighbour hits both alike.
        speed = {"float32": 0.0, "int8": 0.0}
        for _ in range(2):
            for label, path in (("float32", source), ("int8", target)):
                speed[label] = max(speed[label], mp_per_s(path, scale))
        fp32, int8 = load_model(source, "cpu"), load_model(target, "cpu")
        images = [np.asarray(Image.open(p).convert("RGB")) for folder in args.val for p in sorted(folder.iterdir())
                  if p.is_file()] or [photo_like(160, 240, seed) for seed in range(4)]
        diffs = []
        for image in images:
            a, b = model_upscaler(fp32, scale)(image), model_upscaler(int8, scale)(image)
            diffs.append(np.abs(a.astype(np.int16) - b.astype(np.int16)))
        result = {"cpu": cpu_name(), "model": source.name, "calibration": str(args.calibration or "generated"),
                  "float32_mp_s": round(speed["float32"], 2), "int8_mp_s": round(speed["int8"], 2),
                  "int8_speedup": round(speed["int8"] / speed["float32"], 2),
                  "mean_abs_diff_levels": round(float(np.mean([d.mean() for d in diffs])), 3),
                  "max_abs_diff_levels": int(max(d.max() for d in diffs))}
        if args.val:
            for label, model in (("float32", fp32), ("int8", int8)):
                scores = summarise(evaluate(args.val, scale, model_upscaler(model, scale)))
                result[f"{label}_psnr"] = {k: round(v["psnr"], 3) for k, v in scores.items()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
