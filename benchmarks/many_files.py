"""Many small files: `upscale dir` against the simple onnxruntime loop on folders of thumbnails, and on 2 MP photos.

    python benchmarks/many_files.py [--count 5000] [--sizes 32 64 128] [--big-count 200] [--model fast-x2]

For each size, a folder of ``--count`` generated PNGs (photo-like, `throughput.generated_photos`) is upscaled by
`upscale dir` (PNG level 1, all cores), by `upscale dir --threads 1`, and by the simple loop
(`benchmarks/simple_ort_loop.py`: one session, one image at a time, Pillow, PNG level 1), taking turns, each a
fresh process writing a fresh folder. Printed per size: seconds, files per second, the ratio to the simple loop,
and the per-file overhead: (wall time - the model's own time on the same images, one session) / files, in ms.
A skip-everything re-run of `upscale dir` is timed too. ``--big-count`` 2 MP photos (1632x1224) give the contrast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from throughput import cpu_name, generated_photos  # benchmarks/ is on the path when run as a script

from upscale.registry import resolve_model_path

HERE = Path(__file__).resolve().parent


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def model_seconds(model: Path, folder: Path) -> float:
    """The model alone on every image (decoded beforehand), one session, one image per run."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    inputs = [np.asarray(Image.open(p).convert("RGB"), np.float32).transpose(2, 0, 1)[None] / 255
              for p in sorted(folder.iterdir())]
    session.run(None, {name: inputs[0]})
    start = time.perf_counter()
    for x in inputs:
        session.run(None, {name: x})
    return time.perf_counter() - start


def measure(folder: Path, count: int, model: str, work: Path) -> dict:
    path = resolve_model_path(model)
    upscale = [sys.executable, "-m", "upscale", "dir", str(folder)]
    runs = {
        "upscale dir": lambda out: timed([*upscale, str(out), "-m", model, "--png-compression", "1", "-q"]),
        "upscale dir --threads 1": lambda out: timed([*upscale, str(out), "-m", model, "--png-compression", "1",
                                                      "-q", "--threads", "1"]),
        "simple loop": lambda out: timed([sys.executable, str(HERE / "simple_ort_loop.py"), str(path), str(folder),
                                          str(out), "--png-compression", "1"]),
    }
    seconds = {}
    for name, run in runs.items():  # taking turns, each into a fresh folder
        out = work / name.replace(" ", "_")
        seconds[name] = run(out)
        if name == "upscale dir":
            seconds["re-run, all skipped"] = timed([*upscale, str(out), "-m", model, "-q"])
        shutil.rmtree(out)
    compute = model_seconds(path, folder)
    simple = seconds["simple loop"]
    return {"files": count, "model_seconds": round(compute, 2),
            **{name: {"seconds": round(s, 2), "files_per_s": round(count / s, 1),
                      "vs_simple_loop": round(simple / s, 2),
                      "overhead_ms_per_file": round((s - compute) / count * 1000, 2)}
               for name, s in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--big-count", type=int, default=200)
    parser.add_argument("--model", default="fast-x2")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cases = [(f"{s}x{s}", args.count) for s in args.sizes] + \
            ([("1632x1224", args.big_count)] if args.big_count else [])
        for size, count in cases:
            folder = generated_photos(work / f"in-{size}", count, size)
            rows[size] = measure(folder, count, args.model, work)
            print(json.dumps({size: rows[size]}), flush=True)
            shutil.rmtree(folder)
    print(f"CPU: {cpu_name()}")
    print("| images | upscale dir | --threads 1 | simple loop | upscale dir vs simple loop | per-file overhead "
          "(upscale dir / simple loop) | re-run, all skipped |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size, r in rows.items():
        u, t, s = r["upscale dir"], r["upscale dir --threads 1"], r["simple loop"]
        print(f"| {r['files']:,} x {size} | {u['seconds']} s ({u['files_per_s']}/s) | {t['seconds']} s | "
              f"{s['seconds']} s ({s['files_per_s']}/s) | **{u['vs_simple_loop']}x** | "
              f"{u['overhead_ms_per_file']} / {s['overhead_ms_per_file']} ms | "
              f"{r['re-run, all skipped']['seconds']} s |")


if __name__ == "__main__":
    main()
