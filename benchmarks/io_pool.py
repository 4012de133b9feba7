"""Is `upscale dir` fed fast enough when the model is fast? Decode/encode thread pools against the I/O floor.

    python benchmarks/io_pool.py [--count 24 --size 1600x1200 --png-compression 6 --pools 1x1,1x2,2x4]

With a GPU the model is no longer the bill: decoding and encoding are. This stands the bundled bicubic model
(a few operations per pixel: near-free, like a model on a GPU) in for the fast model, runs the folder through
`run_pipelined` with each pool (decoders x encoders), and compares with the I/O floor: decode, plus encode and
write of the already upscaled images, alone, on as many threads as the pool has. Prints images/s for each,
the pipeline's fraction of its floor, and which pool `IOWorkers.for_device` picks for a CPU and a GPU here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from upscale import load_model
from upscale.decoding import read_image
from upscale.encoding import encode
from upscale.files import write_atomic
from upscale.job import OutputOptions
from upscale.picture import UpscaleOptions, upscale_picture
from upscale.pipeline import IOWorkers, run_pipelined
from upscale.planning import plan_directory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import photo_like


def pipeline_seconds(model, folder: Path, out: Path, output: OutputOptions, workers: IOWorkers) -> float:
    jobs, _ = plan_directory(folder, out, output)
    start = time.perf_counter()
    run_pipelined(model, jobs, UpscaleOptions(), output, lambda job, result: None, workers=workers)
    return time.perf_counter() - start


def floor_seconds(paths: list[Path], upscaled: list, out: Path, output: OutputOptions, threads: int) -> float:
    """Decode every input and encode + write every (already computed) output, on ``threads`` threads."""

    def one(i: int) -> None:
        read_image(paths[i])
        data, _ = encode(upscaled[i], "PNG", output.quality, output.png_compression)
        write_atomic(out / paths[i].name, data)

    start = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(len(paths))))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--size", default="1600x1200")
    parser.add_argument("--png-compression", type=int, default=6)
    parser.add_argument("--pools", default="1x1,1x2,2x2,1x4,2x4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    model = load_model("bicubic-x2", "cpu")
    output = OutputOptions(png_compression=args.png_compression, overwrite=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        for i in range(args.count):
            Image.fromarray(photo_like(height, width, i)).save(folder / f"{i:03d}.png", compress_level=1)
        paths = sorted(folder.iterdir())
        upscaled = [upscale_picture(model, read_image(p), UpscaleOptions()) for p in paths]
        for pool in args.pools.split(","):
            decoders, encoders = (int(v) for v in pool.split("x"))
            workers = IOWorkers(decoders, encoders)
            out = Path(tmp) / f"out-{pool}"
            piped = statistics.median(pipeline_seconds(model, folder, out, output, workers)
                                      for _ in range(args.repeats))
            floor = statistics.median(floor_seconds(paths, upscaled, out, output, decoders + encoders)
                                      for _ in range(args.repeats))
            rows.append({"pool": pool, "pipeline_images_s": round(args.count / piped, 3),
                         "io_floor_images_s": round(args.count / floor, 3),
                         "fraction_of_floor": round(floor / piped, 3)})
    cores = os.cpu_count() or 1
    result = {"cpu_cores": cores, "images": args.count, "size": args.size, "png_compression": args.png_compression,
              "picked_for_cpu": vars(IOWorkers.for_device("cpu", cores)),
              "picked_for_gpu": vars(IOWorkers.for_device("cuda", cores)),
              "picked_for_gpu_16_cores": vars(IOWorkers.for_device("cuda", 16)), "pools": rows}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        if key != "pools":
            print(f"{key:>24}: {value}")
    print(f"{'pool (dec x enc)':>18} {'pipeline img/s':>15} {'I/O floor img/s':>16} {'fraction':>9}")
    for row in rows:
        print(f"{row['pool']:>18} {row['pipeline_images_s']:>15.3f} {row['io_floor_images_s']:>16.3f} "
              f"{row['fraction_of_floor']:>9.3f}")


if __name__ == "__main__":
    main()
