"""Peak memory of `upscale dir` per output megapixel: 2x and 4x, 8 and 16 bit, PNG (streamed) and JPEG.

    python benchmarks/memory.py [--megapixels 12] [--json]

Each case is one `upscale dir` process on one generated photo-like image whose output has about
``--megapixels`` MP; its peak resident set (the child's ru_maxrss) minus the same process on a 64x64 image
(interpreter, onnxruntime and the model) is divided by the output megapixels. The budget is 8 bytes
per output pixel plus 400 MB for 8-bit RGB/RGBA/grey.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import photo_like

from upscale.deep_color import encode_png16

_MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def peak_rss_bytes(command: list[str]) -> tuple[int, float]:
    """Run ``command`` under a small measuring process; (its peak RSS in bytes, seconds). A child's ru_maxrss
    includes the memory its parent had when forking it (Linux keeps the pre-exec high-water mark), so the
    parent must be small: a bare interpreter, not this script."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command], check=True, capture_output=True, text=True)
    return int(done.stdout.strip()) * 1024, time.perf_counter() - start


def make_image(path: Path, height: int, width: int, deep: bool, alpha: bool) -> None:
    rgb = photo_like(height, width, 0)
    if deep:
        planes = (rgb.astype(np.uint16) * 257)
        if alpha:
            planes = np.dstack([planes, np.full((height, width), 50000, np.uint16)])
        path.write_bytes(encode_png16(planes, compress_level=1))
    else:
        image = Image.fromarray(np.dstack([rgb, np.full((height, width), 200, np.uint8)]) if alpha else rgb)
        image.save(path, compress_level=1)


def one_case(args: argparse.Namespace, scale: int, deep: bool, alpha: bool, fmt: str) -> dict:
    model = "repsr-x2" if scale == 2 else "repsr-x4"
    side = math.sqrt(args.megapixels * 1e6 / scale**2 / 1.333)
    height, width = int(side), int(side * 1.333)
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "in", Path(tmp) / "out"
        folder.mkdir()
        # Made by another process: a child's ru_maxrss counts the parent's memory it was forked with (Linux
        # keeps the pre-exec high-water mark), so the image arrays must never live in this one.
        subprocess.run([sys.executable, __file__, "--make", str(folder / "a.png"), f"{height},{width},{int(deep)},"
                        f"{int(alpha)}"], check=True)
        command = [sys.executable, "-m", "upscale", "dir", str(folder), str(out), "-m", model, "-q",
                   "--format", fmt]
        peak, seconds = peak_rss_bytes(command)
    out_mp = height * width * scale**2 / 1e6
    return {"scale": scale, "bits": 16 if deep else 8, "alpha": alpha, "format": fmt, "input": f"{width}x{height}",
            "output_mp": round(out_mp, 1), "peak_rss_mb": round(peak / 1e6), "seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=12.0, help="output megapixels of each case")
    parser.add_argument("--case", help="scale,bits,alpha,format: run only this case (internal)")
    parser.add_argument("--make", nargs=2, metavar=("PATH", "H,W,DEEP,ALPHA"), help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.make:
        height, width, deep, alpha = (int(v) for v in args.make[1].split(","))
        make_image(Path(args.make[0]), height, width, bool(deep), bool(alpha))
        return
    if args.case:  # a fresh process per case: ru_maxrss of children is a high-water mark
        scale, bits, alpha, fmt = args.case.split(",")
        if scale == "0":
            with tempfile.TemporaryDirectory() as tmp:
                folder = Path(tmp) / "in"
                folder.mkdir()
                subprocess.run([sys.executable, __file__, "--make", str(folder / "a.png"), "64,64,0,0"], check=True)
                peak, _ = peak_rss_bytes([sys.executable, "-m", "upscale", "dir", str(folder), str(Path(tmp) / "o"),
                                          "-m", "repsr-x4" if bits == "4" else "repsr-x2", "-q"])
            print(json.dumps({"baseline_rss_mb": round(peak / 1e6)}))
            return
        print(json.dumps(one_case(args, int(scale), bits == "16", alpha == "1", fmt)))
        return
    rows = []
    baseline = {}
    for scale in (2, 4):
        done = subprocess.run([sys.executable, __file__, "--case", f"0,{scale},0,png"], capture_output=True,
                              text=True, check=True)
        baseline[scale] = json.loads(done.stdout)["baseline_rss_mb"]
    for case in ["2,8,0,png", "2,8,1,png", "2,8,0,jpg", "2,16,0,png", "2,16,1,png", "4,8,0,png", "4,8,1,png",
                 "4,16,0,png"]:
        done = subprocess.run([sys.executable, __file__, "--case", case, "--megapixels", str(args.megapixels)],
                              capture_output=True, text=True, check=True)
        row = json.loads(done.stdout)
        row["baseline_rss_mb"] = baseline[row["scale"]]
        row["bytes_per_output_pixel"] = round((row["peak_rss_mb"] - row["baseline_rss_mb"]) / row["output_mp"], 2)
        row["budget_mb"] = round(8 * row["output_mp"] + 400)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if not args.json:
        print(f"{'case':>24} {'output MP':>9} {'peak MB':>8} {'base MB':>8} {'B/out px':>9} {'budget MB':>9}")
        for r in rows:
            case = f"x{r['scale']} {r['bits']}-bit {'RGBA' if r['alpha'] else 'RGB'} {r['format']}"
            print(f"{case:>24} {r['output_mp']:>9} {r['peak_rss_mb']:>8} {r['baseline_rss_mb']:>8} "
                  f"{r['bytes_per_output_pixel']:>9} {r['budget_mb']:>9}")


if __name__ == "__main__":
    main()
