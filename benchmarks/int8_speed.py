"""Does int8 pay on this CPU? A model's int8 twin against its float32 self, in the model's compute and end to end.

    python benchmarks/int8_speed.py [--model fast-x2] [--int8 FILE] [--images DIR] [--count 12] [--repeats 3]

Prints the CPU and its int8 dot-product instructions, then:

- compute: output megapixels per second of ``MODEL`` and ``MODEL-int8`` through the engine's own model object
  (`upscale.load_model`: its sessions and threads) on a batch of two 408x408 windows, the engine's usual batch;
  best of five batches in each of ``--rounds`` rounds, the two taking turns; the ratio of the bests and each
  round's ratio (how much the machine's load moved it);
- end to end: `upscale dir` with ``--precision fp32`` and ``--precision int8`` (PNG level 1, fresh processes),
  and the simple onnxruntime loop a user writes (`simple_ort_loop.py`: one session, whole images, Pillow, PNG level
  1) with the float32 model, taking turns in each repeat; median seconds and ratios. The photos are 0.5 to 2 MP
  (scikit-image's sample photographs resized to 800x600, 1200x800 and 1600x1200), or a folder of your own; from
  the int8 run's report, the share of the time spent decoding and writing says how much they dilute the gain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from throughput import HERE, cpu_name, run_cli, timed  # benchmarks/ is on the path when run as a script

from upscale import load_model
from upscale.precision import int8_dot_product
from upscale.registry import resolve_model_path

SIZES = ((800, 600), (1200, 800), (1600, 1200))  # 0.48, 0.96 and 1.92 MP


def photos(folder: Path, count: int) -> Path:
    """``count`` photographs of scikit-image's sample data at the three sizes, as PNG."""
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket"]
    folder.mkdir()
    for i in range(count):
        pixels = getattr(data, names[i % len(names)])()[..., :3]
        Image.fromarray(pixels).resize(SIZES[i % len(SIZES)], Image.Resampling.LANCZOS).save(folder / f"{i:02d}.png")
    return folder


def compute_mp_s(model, repeats: int = 5) -> float:
    """Output megapixels per second of ``model`` (an engine model object): best of ``repeats`` batches."""
    batch = np.random.default_rng(0).random((2, 3, 408, 408), dtype=np.float32)
    model(batch)
    best = min(timed(lambda: model(batch)) for _ in range(repeats))
    return 2 * 408 * 408 * model.scale**2 / best / 1e6


def dilution(report: Path) -> dict[str, float]:
    """Shares of the files' own time: decoding, the model, writing (from `upscale dir --report`)."""
    files = [f for f in json.loads(report.read_text())["files"] if f["status"] == "ok"]
    parts = {k: sum(f[f"{k}_seconds"] for f in files) for k in ("decode", "upscale", "write")}
    total = sum(parts.values())
    return {k: round(v / total, 3) for k, v in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fast-x2")
    parser.add_argument("--int8", help="the int8 model (default: the bundled MODEL-int8); a file to try one")
    parser.add_argument("--images", type=Path, help="a folder of photos (default: generated, 0.5-2 MP)")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs of each command")
    parser.add_argument("--rounds", type=int, default=5, help="compute rounds, the two models taking turns")
    args = parser.parse_args()
    twin = args.int8 or f"{args.model}-int8"
    result: dict = {"cpu": cpu_name(), "int8_dot_product": int8_dot_product() or "none", "model": args.model}

    models = {name: load_model(name, "cpu") for name in (args.model, twin)}
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):  # taking turns: the machine's load moves both alike
        for name, model in models.items():
            speeds[name].append(compute_mp_s(model))
    best = {name: max(v) for name, v in speeds.items()}
    ratios = [q / f for f, q in zip(speeds[args.model], speeds[twin], strict=True)]
    result["compute_mp_s"] = {name: round(v, 2) for name, v in best.items()}
    result["compute_ratio"] = round(best[twin] / best[args.model], 2)
    result["compute_ratio_per_round"] = [round(r, 2) for r in ratios]

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.images or photos(Path(tmp) / "photos", args.count)
        upscale = [sys.executable, "-m", "upscale", "dir", str(folder)]
        commands = {
            "upscale dir fp32": lambda out: [*upscale, out, "-m", args.model, "--precision", "fp32", "--device",
                                             "cpu", "--png-compression", "1"],
            "upscale dir int8": lambda out: [*upscale, out, *(["-m", args.int8] if args.int8 else
                                                              ["-m", args.model, "--precision", "int8"]),
                                             "--device", "cpu", "--png-compression", "1", "--report",
                                             str(Path(tmp) / "r.json")],
            "simple loop fp32": lambda out: [sys.executable, str(HERE / "simple_ort_loop.py"),
                                             str(resolve_model_path(args.model)), str(folder), out,
                                             "--png-compression", "1"],
        }
        seconds: dict[str, list[float]] = {name: [] for name in commands}
        for repeat in range(args.repeats):
            for name, command in commands.items():
                args_now = command(str(Path(tmp) / f"out-{repeat}-{name.replace(' ', '-')}"))
                seconds[name].append(timed(lambda a=args_now: run_cli(a)))
        median = {name: statistics.median(v) for name, v in seconds.items()}
        pixels = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in folder.iterdir()) / 1e6
        result["end_to_end"] = {"files": len(list(folder.iterdir())), "input_mp": round(pixels, 2),
                                **{name: round(v, 2) for name, v in median.items()},
                                "int8_over_fp32": round(median["upscale dir fp32"] / median["upscale dir int8"], 2),
                                "int8_over_simple_loop": round(median["simple loop fp32"]
                                                               / median["upscale dir int8"], 2)}
        result["int8_run_time_shares"] = dilution(Path(tmp) / "r.json")
    result["date"] = time.strftime("%Y-%m-%d")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
