"""`upscale dir --model fast-x2` against `--model default` and against the simple onnxruntime loop, end to end.

    python benchmarks/fast_model.py [--fast fast-x2] [--images DIR] [--count 16] [--size 481x321] [--repeats 3]

The targets, on the same photos and PNG level: the fast model at least 1.8x faster than the default
through `upscale dir` (PNG level 1), and at least 2x the simple onnxruntime loop (`simple_ort_loop.py`: one
session, whole images, Pillow) running the default model. Every run is a fresh process (start-up included);
the three commands take turns within each repeat, so a slow spell on a shared machine hits them alike, and the
median is reported. Generated photo-like images by default (BSD100's 481x321), or a folder of your own.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image
from throughput import HERE, cpu_name, generated_photos, run_cli, timed  # benchmarks/ is on the path as a script

from upscale.registry import resolve_model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", default="fast-x2", help="the fast model (bundled name or path)")
    parser.add_argument("--default", default="default", help="the model it is compared with")
    parser.add_argument("--images", type=Path, help="folder of images (default: generated)")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", default="481x321", help="WxH of generated images")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 6], help="PNG compression levels to compare")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    fast, default = resolve_model_path(args.fast), resolve_model_path(args.default)
    work = Path(tempfile.mkdtemp(prefix="upscale-fast-"))
    try:
        args.images = args.images or generated_photos(work / "in", args.count, args.size)
        inputs = sorted(p for p in args.images.iterdir() if p.is_file())
        pixels = sum(math.prod(Image.open(p).size) for p in inputs)

        def upscale_dir(model: Path, level: int, out: Path) -> list[str]:
            return [sys.executable, "-m", "upscale", "dir", str(args.images), str(out), "--model", str(model),
                    "--device", "cpu", "--quiet", "--format", "png", "--png-compression", str(level)]

        def simple_loop(model: Path, level: int, out: Path) -> list[str]:
            return [sys.executable, str(HERE / "simple_ort_loop.py"), str(model), str(args.images), str(out),
                    "--png-compression", str(level)]

        commands = {"fast_dir": (upscale_dir, fast), "default_dir": (upscale_dir, default),
                    "default_simple_loop": (simple_loop, default)}
        result: dict = {"cpu": cpu_name(), "images": len(inputs), "input_megapixels": round(pixels / 1e6, 2),
                        "fast": fast.name, "default": default.name, "repeats": args.repeats, "levels": {}}
        for level in args.levels:
            times: dict[str, list[float]] = {name: [] for name in commands}
            for r in range(args.repeats):
                for name, (make, model) in commands.items():
                    out = work / f"{name}-{level}-{r}"
                    command = make(model, level, out)
                    times[name].append(timed(lambda command=command: run_cli(command)))
                    shutil.rmtree(out, ignore_errors=True)
            median = {name: statistics.median(t) for name, t in times.items()}
            result["levels"][level] = {
                **{f"{name}_s": round(t, 3) for name, t in median.items()},
                "fast_over_default_dir": round(median["default_dir"] / median["fast_dir"], 2),
                "fast_over_default_simple_loop": round(median["default_simple_loop"] / median["fast_dir"], 2),
                "default_dir_over_simple_loop": round(median["default_simple_loop"] / median["default_dir"], 2),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['cpu']}: {result['images']} images, {result['input_megapixels']} MP in; "
          f"{result['fast']} vs {result['default']}, median of {args.repeats}")
    for level, row in result["levels"].items():
        print(f"PNG level {level}: " + ", ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
