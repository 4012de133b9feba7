"""What Ray costs against the local engine on the same cores, and what a GPU node needs to be kept fed.

    python benchmarks/ray_scaling.py [--model M] [--count 200] [--size 512x384] [--workers N] [--json]

One generated folder of photo-like PNGs runs through `upscale dir` on the local engine and on a local Ray instance
with ``--workers`` files at once (default: one per core, one onnxruntime thread each), both with all the
machine's cores: the overhead ratio is Ray's seconds over the local engine's. Also printed: the bytes that
travel through Ray per image (a task's pickled arguments and result: paths and numbers, never pixels), and the
CPU seconds each image's decode and encode cost (the local engine's report), which is what sizes the CPU side of
a GPU node: a GPU that upscales G images a second needs about G times that many cores for decoding and encoding.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import photo_like


def run(src: Path, out: Path, report: Path, model: str, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "upscale", "dir", str(src), str(out), "--model", model, "--device", "cpu",
                    "--quiet", "--report", str(report), *extra], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bytes_through_ray(src: Path, model: str) -> int:
    """A task's pickled arguments plus its pickled result, for one file (what Ray carries for it)."""
    from ray import cloudpickle  # what Ray pickles task arguments with

    from upscale.engines import ModelSpec
    from upscale.job import FileResult, Job, OutputOptions, Status
    from upscale.picture import UpscaleOptions

    path = sorted(src.iterdir())[0]
    job = Job(path, path.with_suffix(".out.png"), "PNG", (512, 384))
    arguments = (ModelSpec(model, "cpu", 1, None), [job], UpscaleOptions(), OutputOptions(), None)
    result = FileResult(str(path), str(job.output), Status.OK, input_size=(512, 384), output_size=(1024, 768),
                        output_bytes=1_000_000, seconds=0.5, decode_seconds=0.01, upscale_seconds=0.4,
                        write_seconds=0.09)
    return len(cloudpickle.dumps(arguments)) + len(cloudpickle.dumps([result]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", default="512x384")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="upscale-ray-"))
    try:
        w, h = (int(v) for v in args.size.split("x"))
        src = work / "in"
        src.mkdir()
        for i in range(args.count):
            Image.fromarray(photo_like(h, w, i)).save(src / f"{i:03d}.png")
        local = run(src, work / "local", work / "local.json", args.model, [])
        ray = run(src, work / "ray", work / "ray.json", args.model,
                  ["--engine", "ray", "--ray-workers", str(args.workers), "--threads", "1"])
        files = json.loads((work / "local.json").read_text())["files"]
        io_seconds = sum(f["decode_seconds"] + f["write_seconds"] for f in files) / len(files)
        same = all((work / "local" / p.name).read_bytes() == p.read_bytes() for p in (work / "ray").iterdir())
        carried = bytes_through_ray(src, args.model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"photos": args.count, "size": args.size, "cores": os.cpu_count(), "local_seconds": round(local, 2),
              "ray_seconds": round(ray, 2), "ray_over_local": round(ray / local, 2), "outputs_identical": same,
              "bytes_through_ray_per_image": carried, "decode_plus_encode_cpu_seconds_per_image": round(io_seconds, 4)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.count} photos of {args.size}, {result['cores']} cores")
    print(f"  local engine        {local:7.2f} s")
    print(f"  ray, {args.workers} worker(s)     {ray:7.2f} s   overhead ratio {ray / local:.2f}  "
          f"(outputs identical: {same})")
    print(f"  through Ray per image: {carried} bytes (arguments + result)")
    print(f"  decode + encode per image: {io_seconds:.4f} CPU s -> a GPU doing G images/s needs ~{io_seconds:.3f} x G "
          "cores to feed it")


if __name__ == "__main__":
    main()
