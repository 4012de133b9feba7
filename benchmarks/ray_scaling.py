"""Scaling of `upscale dir --engine ray` with the number of model actors, on this machine.

    python benchmarks/ray_scaling.py [--model M] [--count 16] [--size 640x480] [--workers 1 2] [--json]

Runs the same generated folder through a local Ray instance with each worker count (one CPU and one
onnxruntime thread per actor), plus the local engine for reference; prints seconds, output MP/s and the
speed-up over one worker (medians of --repeats runs). On 2 cores, 2 workers can at best double one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import photo_like


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="upscale-ray-"))
    try:
        w, h = (int(v) for v in args.size.split("x"))
        src = work / "in"
        src.mkdir()
        for i in range(args.count):
            Image.fromarray(photo_like(h, w, i)).save(src / f"{i:03d}.png")
        out_mp = args.count * w * h / 1e6

        def run(extra: list[str], tag: str) -> float:
            times = []
            for r in range(args.repeats):
                out = work / f"{tag}-{r}"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "upscale", "dir", str(src), str(out), "--model", args.model,
                                "--device", "cpu", "--quiet", *extra], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                times.append(time.perf_counter() - start)
            return statistics.median(times)

        rows = {"local engine": run([], "local")}
        for n in args.workers:
            rows[f"ray, {n} worker(s)"] = run(["--engine", "ray", "--ray-workers", str(n), "--threads", "1"], f"ray{n}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = rows[f"ray, {args.workers[0]} worker(s)"]
    result = {name: {"seconds": round(t, 2), "input_mp_s": round(out_mp / t, 3), "vs_first_ray": round(first / t, 2)}
              for name, t in rows.items()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, r in result.items():
            print(f"{name:>20}: {r['seconds']:7.2f} s  {r['input_mp_s']:.3f} input MP/s  x{r['vs_first_ray']}")


if __name__ == "__main__":
    main()
