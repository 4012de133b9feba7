"""The tiled engine's compute throughput against raw onnxruntime on the same tiles, over image sizes x tiles.

    python benchmarks/engine_map.py [--model default] [--megapixels 0.1 0.5 2 6 12] [--tiles auto 0 128 256 512 1024]

For each image size (input megapixels, 3:2) and tile setting, two numbers in output megapixels per second:

- engine: `upscale.tiling.upscale_array` on a uint8 image in memory, as `upscale dir` runs it (windows cut and
  converted, batches split over the CPU lanes, cores stitched and quantised into the output);
- raw: one onnxruntime session with every thread (the simple loop's session) running the very windows the
  engine plans, pre-made as float32 batches outside the timing: the model's cost on those tiles and nothing
  else. The ratio engine/raw is what the engine's own work (or its lanes) costs or gains; the target is
  at least 0.90 in every cell.

A third column gives raw onnxruntime on the whole image (one window, no overlap): what tiling costs against
the simple loop's way, overlap included. Each time is the best of --repeats. No I/O: decode and encode are
measured by benchmarks/throughput.py.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import onnxruntime as ort
from throughput import cpu_name  # benchmarks/ is on the path when run as a script

from upscale import load_model
from upscale.model import _session_options
from upscale.pixels import to_unit_float
from upscale.tiling import max_batch_pixels, plan_tiles, tile_batches, upscale_array, windows_to_batch


def timed(run, *args, calls: int = 1) -> float:
    """Seconds per call of ``run(*args)``, over ``calls`` calls in a row."""
    start = time.perf_counter()
    for _ in range(calls):
        run(*args)
    return (time.perf_counter() - start) / calls


def calls_for(seconds: float, least: float = 0.5) -> int:
    """Calls per timing so that one timing lasts at least ``least`` seconds: a 40 ms run timed once is at the
    mercy of one scheduler hiccup on a shared machine."""
    return max(1, math.ceil(least / max(seconds, 1e-6)))


def image_of(megapixels: float, seed: int = 0) -> np.ndarray:
    width = round(math.sqrt(megapixels * 1e6 * 3 / 2))
    height = round(width * 2 / 3)
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def planned_batches(pixels: np.ndarray, tile: int | None, overlap: int, scale: int, batch_size: int,
                    lanes: int) -> list:
    """The float32 NCHW batches the engine feeds for this image and tile setting (the same grouping, lanes
    included), made by the engine's own `windows_to_batch`."""
    h, w = pixels.shape[:2]
    groups = tile_batches(plan_tiles(h, w, tile, overlap, scale), batch_size, max_batch_pixels(scale), lanes)
    return [windows_to_batch(pixels, group) for group in groups]


def run_batches(session: ort.InferenceSession, name: str, batches: list[np.ndarray]) -> None:
    for batch in batches:
        session.run(None, {name: batch})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--megapixels", type=float, nargs="+", default=[0.1, 0.5, 2, 6, 12])
    parser.add_argument("--tiles", nargs="+", default=["auto", "0", "128", "256", "512", "1024"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="also print the cells as one JSON line")
    args = parser.parse_args()

    model = load_model(args.model, device="cpu")
    raw = ort.InferenceSession(str(model.path), _session_options(None), providers=["CPUExecutionProvider"])
    name = raw.get_inputs()[0].name
    dtype = np.float16 if "float16" in raw.get_inputs()[0].type else np.float32
    scale, overlap = model.scale, model.info.tile_overlap
    print(f"CPU: {cpu_name()} ({len(__import__('os').sched_getaffinity(0))} cores); model {model.path.name} "
          f"x{scale}, overlap {overlap}; output MP/s, best of {args.repeats}")
    print(f"{'input MP':>8} {'tile':>5} {'windows':>8} {'engine':>7} {'raw':>7} {'eng/raw':>7} {'whole':>7}")
    cells = []
    for mp in args.megapixels:
        pixels = image_of(mp)
        out_mp = pixels.shape[0] * pixels.shape[1] * scale * scale / 1e6
        whole = np.ascontiguousarray(to_unit_float(pixels[None]).transpose(0, 3, 1, 2)).astype(dtype)
        calls = calls_for(timed(raw.run, None, {name: whole}))  # and warm-up: the first run of a shape plans it
        whole_s = min(timed(raw.run, None, {name: whole}, calls=calls) for _ in range(args.repeats))
        for label in args.tiles:
            tile = None if label == "auto" else int(label)
            batches = [b.astype(dtype) for b in planned_batches(pixels, tile, overlap, scale, args.batch_size,
                                                                    model.parallelism)]
            window_px = sum(b.shape[0] * b.shape[2] * b.shape[3] for b in batches)
            calls = calls_for(timed(run_batches, raw, name, batches))  # also the warm-up of these window shapes
            raw_s = engine_s = float("inf")
            for _ in range(args.repeats):  # taking turns: a slow spell on a shared machine hits both alike
                raw_s = min(raw_s, timed(run_batches, raw, name, batches, calls=calls))
                engine_s = min(engine_s, timed(upscale_array, model, pixels, scale, overlap, tile, args.batch_size,
                                               calls=calls))
            cell = {"megapixels": mp, "tile": label, "windows_over_image": window_px / pixels[..., 0].size,
                    "engine_mp_s": out_mp / engine_s, "raw_mp_s": out_mp / raw_s, "whole_mp_s": out_mp / whole_s}
            cell["engine_over_raw"] = cell["engine_mp_s"] / cell["raw_mp_s"]
            cells.append(cell)
            print(f"{mp:>8g} {label:>5} {cell['windows_over_image']:>7.2f}x {cell['engine_mp_s']:>7.2f} "
                  f"{cell['raw_mp_s']:>7.2f} {cell['engine_over_raw']:>7.2f} {cell['whole_mp_s']:>7.2f}", flush=True)
    worst = min(cells, key=lambda c: c["engine_over_raw"])
    print(f"worst engine/raw: {worst['engine_over_raw']:.2f} at {worst['megapixels']:g} MP, tile {worst['tile']}")
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "model": model.path.name, "cells": cells}))


if __name__ == "__main__":
    main()
