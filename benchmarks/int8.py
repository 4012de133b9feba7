"""Does int8 pay? onnxruntime's static quantisation of a model, measured for speed and pixels against float32.

    python benchmarks/int8.py --model fast-x2 --calibration ../shared/datasets/train/T91 \
        [--val ../shared/datasets/val/Set5 --val ../shared/datasets/val/Set14] [--keep int8.onnx]

What a new user would try (issue 14): `onnxruntime.quantization.quantize_static`, QDQ format, int8 weights per
channel, uint8 activations, MinMax calibration on --calibration images (LR inputs: bicubic downscales of them),
after onnxruntime's `quant_pre_process`. Then, with the engine's session options, in one run:

- two int8 variants: every convolution quantised, and only the body's (those a ReLU follows), which keeps the
  bicubic branch, the last layer and the residual sum in float32;
- compute: output MP/s of float32 and int8 on batches of two 408x408 windows (the engine's automatic batch);
- pixels: mean and max absolute difference, in 8-bit levels, of the two models' outputs on the --val images
  (or generated photo-like ones);
- quality: Y-PSNR of each on --val (`upscale eval`'s protocol), if given.

The contract metadata (scale, overlap...) is copied onto the quantised models, so `--keep FILE` (the body-only
variant) gives a model `upscale dir --model FILE` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
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
from upscale.images import image_extensions
from upscale.model import _session_options
from upscale.registry import resolve_model_path


class LowResImages(CalibrationDataReader):
    """Calibration batches: bicubic half-size copies of images, cropped to 96x96 LR, one per batch."""

    def __init__(self, folder: Path | None, scale: int, name: str, limit: int = 32) -> None:
        if folder is None:
            images = [photo_like(192, 192, seed) for seed in range(limit)]
        else:
            paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in image_extensions())
            images = [np.asarray(Image.open(p).convert("RGB")) for p in paths[:limit]]
        batches = []
        for image in images:
            lr = imresize(image[: image.shape[0] // scale * scale, : image.shape[1] // scale * scale], 1 / scale)
            crop = lr[:96, :96].astype(np.float32).transpose(2, 0, 1)[None] / 255
            batches.append({name: np.ascontiguousarray(crop)})
        self.batches = iter(batches)

    def get_next(self) -> dict | None:
        return next(self.batches, None)


def unactivated_convs(model: onnx.ModelProto) -> list[str]:
    """Convolutions whose output no Relu reads: the last layer (the residual detail) and the fixed bicubic one."""
    relu_inputs = {n.input[0] for n in model.graph.node if n.op_type == "Relu"}
    return [n.name for n in model.graph.node if n.op_type == "Conv" and n.output[0] not in relu_inputs]


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def quantise(source: Path, target: Path, calibration: Path | None, scale: int, body_only: bool) -> None:
    """Quantise every convolution, or with ``body_only`` those followed by a ReLU: the bicubic branch, the last
    layer and the residual sum stay float32, so the image's coarse content is not rounded to 256 levels twice."""
    source, target = source.resolve(), target.resolve()
    with tempfile.TemporaryDirectory() as tmp, _working_directory(Path(tmp)):
        # onnxruntime's quantisation tools leave files in the working directory (sym_shape_infer_temp.onnx, an
        # augmented model's external .data): here, that is the temporary folder, never the user's.
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)  # dynamic H, W
        graph = onnx.load(str(prepared))
        extra = {"op_types_to_quantize": ["Conv", "Relu"], "nodes_to_exclude": unactivated_convs(graph)} \
            if body_only else {}
        quantize_static(str(prepared), str(target), LowResImages(calibration, scale, graph.graph.input[0].name),
                        quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, **extra)
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
        paths = {"float32": source, "int8": Path(tmp) / "int8.onnx", "int8-body": args.keep or Path(tmp) / "body.onnx"}
        quantise(source, paths["int8"], args.calibration, scale, body_only=False)
        quantise(source, paths["int8-body"], args.calibration, scale, body_only=True)
        # Take turns twice, best of each: a noisy neighbour hits all alike.
        speed = dict.fromkeys(paths, 0.0)
        for _ in range(2):
            for label, path in paths.items():
                speed[label] = max(speed[label], mp_per_s(path, scale))
        models = {label: load_model(path, "cpu") for label, path in paths.items()}
        images = [np.asarray(Image.open(p).convert("RGB")) for folder in args.val for p in sorted(folder.iterdir())
                  if p.is_file()] or [photo_like(160, 240, seed) for seed in range(4)]
        reference = [model_upscaler(models["float32"], scale)(image).astype(np.int16) for image in images]
        result: dict = {"cpu": cpu_name(), "model": source.name, "calibration": str(args.calibration or "generated")}
        for label, model in models.items():
            row: dict = {"mp_s": round(speed[label], 2), "speedup": round(speed[label] / speed["float32"], 2)}
            if label != "float32":
                diffs = [np.abs(model_upscaler(model, scale)(image) - ref) for image, ref in zip(images, reference,
                                                                                               strict=True)]
                row.update({"mean_abs_diff_levels": round(float(np.mean([d.mean() for d in diffs])), 3),
                            "max_abs_diff_levels": int(max(d.max() for d in diffs))})
            if args.val:
                scores = summarise(evaluate(args.val, scale, model_upscaler(model, scale)))
                row["psnr"] = {k: round(v["psnr"], 3) for k, v in scores.items()}
            result[label] = row
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
