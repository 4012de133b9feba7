"""Does an int8 model keep its float twin's picture? Y-PSNR of both and their pixel differences, clean and JPEG.

    python benchmarks/int8_quality.py --model fast-x2 ../shared/datasets/val/Set5 ../shared/datasets/val/Set14 \
        [--own 8] [--degrade clean --degrade jpeg:75] [--by-detail]

For each folder (and ``--own N``: N photographs of scikit-image's sample data, brought to BSD100's 481x321), the
`upscale eval` protocol (HR cropped to the scale, LR by MATLAB bicubic, then each ``--degrade``): the float model
(``MODEL``) and its int8 twin (``MODEL-int8``) through the engine, on the same inputs. Prints, per set and input
kind, both mean Y-PSNRs and their difference, and the int8 output's distance to the float output in 8-bit levels:
the 99.99th percentile and the maximum over every pixel and channel, and how many values per million lie more than
4 levels away (under 100, the 99.99th percentile is 4 or less: how far from that line a twin is). ``--by-detail``
splits the pixels by the detail the float model adds to bicubic interpolation (|float - bicubic|, in levels) and
gives the share of pixels and the differences in each band: where the int8 twin departs from its float self.
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from upscale import load_model
from upscale.bicubic import imresize
from upscale.evaluate import evaluate, model_upscaler, summarise

OWN_SIZE = (481, 321)  # BSD100's pictures (landscape)


def own_pictures(folder: Path, count: int) -> Path:
    """``count`` of scikit-image's bundled colour photographs, centre-cropped to 3:2 and resized to 481x321."""
    from skimage import data

    # (not "cat": scikit-image's cat is chelsea again)
    names = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "colorwheel",
             "retina"]
    folder.mkdir(parents=True, exist_ok=True)
    for name in names[:count]:
        pixels = getattr(data, name)()[..., :3]
        h, w = pixels.shape[:2]
        ch, cw = (h, round(h * 1.5)) if w / h >= 1.5 else (round(w / 1.5), w)
        top, left = (h - ch) // 2, (w - cw) // 2
        crop = Image.fromarray(np.ascontiguousarray(pixels[top : top + ch, left : left + cw]))
        crop.resize(OWN_SIZE, Image.Resampling.LANCZOS).save(folder / f"{name}.png")
    return folder


DETAIL_BANDS = (0, 5, 10, 20, 40, 80, 256)  # |float - bicubic| in 8-bit levels


def recording(upscaler, scale: int | None = None):
    """The upscaler, keeping each output (the two models see the same inputs in the same order) and, given the
    ``scale``, the input's bicubic enlargement beside it."""
    outputs: list[np.ndarray] = []
    bicubic: list[np.ndarray] = []

    def run(lr: np.ndarray) -> np.ndarray:
        out = upscaler(lr)
        outputs.append(out.astype(np.int16))
        if scale is not None:
            bicubic.append(imresize(lr, scale).astype(np.int16))
        return out

    return run, outputs, bicubic


def by_detail(float_out: list[np.ndarray], int8_out: list[np.ndarray], bicubic: list[np.ndarray]) -> list[dict]:
    """Share of pixels and int8-vs-float differences per band of the float model's added detail."""
    detail = np.concatenate([np.abs(f - b).ravel() for f, b in zip(float_out, bicubic, strict=True)])
    diffs = np.concatenate([np.abs(f - q).ravel() for f, q in zip(float_out, int8_out, strict=True)])
    bands = []
    for low, high in itertools.pairwise(DETAIL_BANDS):
        inside = diffs[(detail >= low) & (detail < high)]
        if inside.size:
            bands.append({"detail": f"{low}-{high - 1}", "share": round(100 * inside.size / diffs.size, 3),
                          "p99_99_levels": float(np.percentile(inside, 99.99)), "max_levels": int(inside.max()),
                          "mean_levels": round(float(inside.mean()), 3)})
    return bands


def compare(folder: Path, scale: int, float_model, int8_model, degradation: str) -> dict:
    float_run, float_out, bicubic = recording(model_upscaler(float_model, scale), scale)
    int8_run, int8_out, _ = recording(model_upscaler(int8_model, scale))
    float_psnr = next(iter(summarise(evaluate([folder], scale, float_run, degradation)).values()))["psnr"]
    int8_psnr = next(iter(summarise(evaluate([folder], scale, int8_run, degradation)).values()))["psnr"]
    diffs = np.concatenate([np.abs(a - b).ravel() for a, b in zip(float_out, int8_out, strict=True)])
    return {"set": folder.name, "input": degradation, "images": len(float_out), "float_psnr": round(float_psnr, 3),
            "int8_psnr": round(int8_psnr, 3), "delta_db": round(int8_psnr - float_psnr, 3),
            "p99_99_levels": float(np.percentile(diffs, 99.99)), "max_levels": int(diffs.max()),
            "mean_levels": round(float(diffs.mean()), 3),
            "over_4_levels_ppm": round(1e6 * float(np.mean(diffs > 4)), 1),
            "by_detail": by_detail(float_out, int8_out, bicubic)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", type=Path, nargs="*")
    parser.add_argument("--model", default="fast-x2", help="the float model; its int8 twin is MODEL-int8")
    parser.add_argument("--int8", help="the int8 model (default: the bundled MODEL-int8); a file to try one")
    parser.add_argument("--own", type=int, default=0, help="also N photographs of your own at 481x321")
    parser.add_argument("--degrade", action="append", help="input kinds (default: clean and jpeg:75)")
    parser.add_argument("--by-detail", action="store_true", help="also the differences by the detail added")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    float_model = load_model(args.model, "cpu")
    int8_model = load_model(args.int8 or f"{args.model}-int8", "cpu")
    scale = float_model.scale
    with tempfile.TemporaryDirectory() as tmp:
        folders = list(args.folders) + ([own_pictures(Path(tmp) / "own-481x321", args.own)] if args.own else [])
        rows = [compare(folder, scale, float_model, int8_model, kind) for folder in folders
                for kind in args.degrade or ["clean", "jpeg:75"]]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{args.model} (float32) vs {args.model}-int8, x{scale}")
    print("| set | input | images | float Y-PSNR | int8 Y-PSNR | difference | 99.99th pct. | max | mean "
          "| over 4 levels (per million) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['input']} | {r['images']} | {r['float_psnr']:.3f} | {r['int8_psnr']:.3f} | "
              f"{r['delta_db']:+.3f} dB | {r['p99_99_levels']:g} | {r['max_levels']} | {r['mean_levels']} | "
              f"{r['over_4_levels_ppm']:g} |")
    if args.by_detail:
        print("\n| set | input | detail (levels) | share of pixels | 99.99th pct. | max | mean |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            for band in r["by_detail"]:
                print(f"| {r['set']} | {r['input']} | {band['detail']} | {band['share']:g}% | "
                      f"{band['p99_99_levels']:g} | {band['max_levels']} | {band['mean_levels']} |")


if __name__ == "__main__":
    main()
