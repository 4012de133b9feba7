"""Throughput of `upscale dir` against what a user would otherwise do, and against the machine's limit.

    python benchmarks/throughput.py --checkpoint RUN/best.pt --model model.onnx [--images DIR] [--json]

On one folder of images (generated photo-like ones unless --images is given) and one model, in one run:

1. ``upscale dir`` end to end (a subprocess, start-up included): output megapixels per second, at the
   same PNG level as the naive way (--png-compression, default 6 = Pillow's) and at the tool's default;
2. the naive way (`benchmarks/naive_upscale.py`, also a subprocess): the PyTorch checkpoint of the same
   model in eager mode on each whole image, saved with Pillow's defaults, one after the other;
2a. the simple onnxruntime loop (`benchmarks/simple_ort_loop.py`): one session, whole images, Pillow, the
   same PNG level: the peer a user with an ONNX model would write;
3. onnxruntime compute alone on pre-decoded tiles (no I/O): achieved FLOP/s from the model's counted
   MACs, and its fraction of the CPU's peak, both nominal (cores x FMA lanes x FMA units x 2 x clock,
   derivation printed) and measured in the same run (onnxruntime's own fp32 GEMM, `gemm_peak`);
4. decode + encode + write alone, with the same output settings.

Each is the median of --repeats runs. Prints the ratios (1)/(2), (1)/((3)+(4)), and (3)'s fraction of peak,
with the machine, model and settings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import shape_inference
from PIL import Image

from upscale import load_model
from upscale.decoding import read_image
from upscale.encoding import encode
from upscale.files import write_atomic
from upscale.images import DEFAULT_PNG_COMPRESSION
from upscale.picture import UpscaleOptions, upscale_picture
from upscale.tiling import AUTO_TILE, max_batch_pixels, plan_tiles, tile_batches, windows_to_batch

HERE = Path(__file__).resolve().parent


def photo_like(height: int, width: int, seed: int) -> np.ndarray:
    """Smooth shapes, edges, texture and a little noise: compresses like a photo, not like noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(10, min(height, width) / 2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None]
        img = np.where(mask, rng.uniform(0, 255, 3), img)
    img += 20 * np.sin(xx / rng.uniform(2, 9))[..., None] + rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def generated_photos(folder: Path, count: int, size: str) -> Path:
    """``count`` `photo_like` PNGs of ``size`` ("WxH") in a new ``folder``: the benchmarks' default input."""
    w, h = (int(v) for v in size.split("x"))
    folder.mkdir()
    for i in range(count):
        Image.fromarray(photo_like(h, w, i)).save(folder / f"{i:03d}.png")
    return folder


def conv_macs_per_output_pixel(path: Path, probe: int = 64) -> float:
    """Multiply-adds of every Conv node per output pixel, from the ONNX graph with inferred shapes."""
    model = onnx.load(path)
    graph = model.graph
    inp = graph.input[0]
    dims = inp.type.tensor_type.shape.dim
    for i, value in enumerate((1, 3, probe, probe)):
        dims[i].ClearField("dim_param")
        dims[i].dim_value = value
    inferred = shape_inference.infer_shapes(model).graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.value_info) + list(inferred.output)}
    weights = {t.name: list(t.dims) for t in graph.initializer}
    total = 0
    for node in graph.node:
        if node.op_type == "Conv":
            cout, cin_per_group, kh, kw = weights[node.input[1]]
            _, _, h, w = shapes[node.output[0]]
            total += h * w * cout * cin_per_group * kh * kw
    _, _, out_h, out_w = shapes[graph.output[0].name]
    return total / (out_h * out_w)


def cpu_peak() -> tuple[float, str]:
    """Peak fp32 FLOP/s of this CPU and how it was derived (Linux /proc/cpuinfo)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((line.split(":")[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags and "fma" in flags else 4
    units = 2  # FMA pipes per core on current x86 server cores (Zen 2-4, Skylake-SP and later)
    freq_file = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if freq_file.exists():
        ghz = int(freq_file.read_text()) / 1e6
    else:
        mhz = [float(line.split(":")[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
        ghz = max(mhz) / 1000 if mhz else 2.0
    cores = len(os.sched_getaffinity(0))
    peak = cores * lanes * units * 2 * ghz * 1e9
    how = (f"{cores} cores x {lanes} fp32 lanes ({'AVX-512' if lanes == 16 else 'AVX2+FMA' if lanes == 8 else 'SSE'})"
           f" x {units} FMA units x 2 flops x {ghz:.2f} GHz = {peak / 1e9:.1f} GFLOP/s")
    return peak, how


def gemm_peak(n: int = 2048, repeats: int = 5) -> float:
    """fp32 FLOP/s of onnxruntime's own GEMM (MLAS, the kernels its convolutions use) on this machine, now."""
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
                              [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in ("a", "b")],
                              [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    feed = {"a": a, "b": a}
    session.run(None, feed)
    best = min(timed(lambda: session.run(None, feed)) for _ in range(repeats))
    return 2 * n**3 / best


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_cli(args: list[str]) -> None:
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="ONNX model (path or bundled name)")
    parser.add_argument("--checkpoint", type=Path, help="PyTorch checkpoint of the same model, for the naive way")
    parser.add_argument("--images", type=Path, help="folder of images (default: generated)")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--size", default="640x480", help="WxH of generated images")
    parser.add_argument("--png-compression", type=int, default=6, help="6 = Pillow's default, for equal settings")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="upscale-bench-"))
    try:
        args.images = args.images or generated_photos(work / "in", args.count, args.size)
        inputs = sorted(p for p in args.images.iterdir() if p.is_file())
        model = load_model(args.model, "cpu")
        scale = model.scale
        sizes = [Image.open(p).size for p in inputs]
        out_mp = sum(w * h for w, h in sizes) * scale * scale / 1e6

        # 1. upscale dir, end to end
        e2e = []
        for r in range(args.repeats):
            out = work / f"e2e{r}"
            e2e.append(timed(lambda out=out: run_cli(
                [sys.executable, "-m", "upscale", "dir", str(args.images), str(out), "--model", str(model.path),
                 "--device", "cpu", "--quiet", "--format", "png", "--png-compression", str(args.png_compression)])))
        e2e_bytes = sum(p.stat().st_size for p in (work / "e2e0").iterdir())

        # 1b. upscale dir with its own default PNG level (what users get without options)
        fast = []
        for r in range(args.repeats):
            out = work / f"fast{r}"
            fast.append(timed(lambda out=out: run_cli(
                [sys.executable, "-m", "upscale", "dir", str(args.images), str(out), "--model", str(model.path),
                 "--device", "cpu", "--quiet", "--format", "png"])))
        fast_bytes = sum(p.stat().st_size for p in (work / "fast0").iterdir())

        # 2a. the simple onnxruntime loop (the peer a user with an ONNX model would write), same PNG level
        simple = []
        for r in range(args.repeats):
            out = work / f"simple{r}"
            loop = [sys.executable, str(HERE / "simple_ort_loop.py"), str(model.path), str(args.images), str(out),
                    "--png-compression", str(args.png_compression)]
            simple.append(timed(lambda loop=loop: run_cli(loop)))

        # 2. the naive way
        naive, naive_bytes = [], None
        if args.checkpoint:
            for r in range(args.repeats):
                out = work / f"naive{r}"
                script = [sys.executable, str(HERE / "naive_upscale.py"), str(args.checkpoint)]
                naive.append(timed(lambda out=out, script=script: run_cli([*script, str(args.images), str(out)])))
            naive_bytes = sum(p.stat().st_size for p in (work / "naive0").iterdir())

        # 3. onnxruntime compute alone, on the engine's own tiles, pre-decoded, batched as the engine
        # batches them (equal-shaped tiles of one image together, up to its batch size)
        tiles = []
        for p in inputs:
            pixels = read_image(p).pixels
            planned = plan_tiles(pixels.shape[0], pixels.shape[1], None, model.info.tile_overlap, model.scale)
            for group in tile_batches(planned, UpscaleOptions().batch_size, max_batch_pixels(model.scale)):
                tiles.append(windows_to_batch(pixels, group))
        tile_out_px = sum(t.shape[0] * t.shape[2] * t.shape[3] for t in tiles) * scale * scale
        model(tiles[0])  # warm-up
        compute = [timed(lambda: [model(t) for t in tiles]) for _ in range(args.repeats)]
        macs = conv_macs_per_output_pixel(model.path)
        big = np.random.default_rng(0).random((1, 3, AUTO_TILE, AUTO_TILE), dtype=np.float32)
        model(big)  # warm-up for this shape
        big_time = statistics.median(timed(lambda: model(big)) for _ in range(max(7, args.repeats)))
        big_flops = 2 * macs * AUTO_TILE * AUTO_TILE * scale * scale / big_time
        peak, peak_how = cpu_peak()
        measured_peak = gemm_peak()

        # 4. decode + encode + write alone, same output settings, on the model's real outputs (made
        # beforehand, untimed): compression time depends on the content
        upscaled = [upscale_picture(model, read_image(p)) for p in inputs]

        def io_only(r: int) -> None:
            target = work / f"io{r}"
            for p, pic in zip(inputs, upscaled, strict=True):
                read_image(p)
                data, _ = encode(pic, "PNG", png_compression=args.png_compression)
                write_atomic(target / p.name, data)

        io = [timed(lambda r=r: io_only(r)) for r in range(args.repeats)]

        m = {k: statistics.median(v) for k, v in {"e2e": e2e, "compute": compute, "io": io}.items()}
        result = {
            "machine": {"cpu": platform.processor() or cpu_name(), "cores": len(os.sched_getaffinity(0)),
                        "python": platform.python_version(), "onnxruntime": ort.__version__},
            "model": {"path": str(model.path), "architecture": model.info.architecture, "scale": scale,
                      "macs_per_output_pixel": round(macs)},
            "settings": {"images": len(inputs), "input_sizes": sorted(set(sizes)), "format": "png",
                         "png_compression": args.png_compression, "repeats": args.repeats, "tile": AUTO_TILE},
            "output_megapixels": round(out_mp, 2),
            "upscale_dir_s": round(m["e2e"], 3), "upscale_dir_mp_s": round(out_mp / m["e2e"], 3),
            "upscale_dir_output_bytes": e2e_bytes,
            "upscale_dir_default_png_level": DEFAULT_PNG_COMPRESSION,
            "upscale_dir_default_level_s": round(statistics.median(fast), 3),
            "upscale_dir_default_level_output_bytes": fast_bytes,
            "compute_only_s": round(m["compute"], 3),
            "compute_gflop_s": round(2 * macs * tile_out_px / m["compute"] / 1e9, 2),
            "compute_big_tile_gflop_s": round(big_flops / 1e9, 2),
            "cpu_peak_gflop_s": round(peak / 1e9, 1), "cpu_peak_derivation": peak_how,
            "compute_fraction_of_peak": round(big_flops / peak, 3),
            "measured_peak_gflop_s": round(measured_peak / 1e9, 1),
            "measured_peak_how": "onnxruntime MatMul 2048x2048x2048 float32, all cores, best of 5",
            "compute_fraction_of_measured_peak": round(big_flops / measured_peak, 3),
            "simple_loop_s": round(statistics.median(simple), 3),
            "speedup_vs_simple_loop": round(statistics.median(simple) / m["e2e"], 2),
            "io_only_s": round(m["io"], 3),
            "e2e_over_compute_plus_io": round(m["e2e"] / (m["compute"] + m["io"]), 3),
        }
        if naive:
            result.update({"naive_s": round(statistics.median(naive), 3),
                           "naive_mp_s": round(out_mp / statistics.median(naive), 3), "naive_output_bytes": naive_bytes,
                           "speedup_vs_naive": round(statistics.median(naive) / m["e2e"], 2),
                           "speedup_vs_naive_default_level": round(
                               statistics.median(naive) / statistics.median(fast), 2)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


if __name__ == "__main__":
    main()
