"""The CUDA path, checked and timed: run this on a machine with an NVIDIA GPU.

    python benchmarks/cuda_check.py --model model.onnx [--fp16-model model-fp16.onnx] [--json]

1. says whether onnxruntime can really use CUDA here (and why not, in one line, if it cannot);
2. runs the same 512x512 tiles on the CPU and on CUDA (and the float16 variant), checks the outputs agree
   (float32 within 1e-3, float16 within 2e-2) and prints tile throughput in output MP/s for each;
3. runs `upscale dir --device cuda` end to end on generated images and prints output MP/s.
Exit code 0 when every check passed, 1 otherwise. The machines this project develops on have no GPU;
the script is prepared for when one is lent (see README, Performance).
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

import numpy as np
from PIL import Image

from upscale import load_model
from upscale.device import cuda_unusable_reason
from upscale.errors import DeviceError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import photo_like


def tile_rate(model, tiles: np.ndarray, repeats: int = 5) -> tuple[float, np.ndarray]:
    out = model(tiles)  # warm-up (and cuDNN algorithm search)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = model(tiles)
        times.append(time.perf_counter() - start)
    return out.shape[0] * out.shape[2] * out.shape[3] / 1e6 / statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--fp16-model")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, object] = {"cuda_unusable_reason": cuda_unusable_reason()}
    ok = report["cuda_unusable_reason"] is None
    tiles = np.random.default_rng(0).random((4, 3, 512, 512), dtype=np.float32)
    cpu = load_model(args.model, "cpu")
    report["cpu_tile_mp_s"], reference = tile_rate(cpu, tiles, repeats=2)
    if ok:
        try:
            for name, path, bound in [("cuda_fp32", args.model, 1e-3), ("cuda_fp16", args.fp16_model, 2e-2)]:
                if path is None:
                    continue
                model = load_model(path, "cuda")
                rate, out = tile_rate(model, tiles)
                error = float(np.abs(out - reference).max())
                report[f"{name}_tile_mp_s"], report[f"{name}_max_abs_vs_cpu"] = rate, error
                ok &= error <= bound
            report["auto_device"] = str(load_model(args.model, "auto").device)
            ok &= report["auto_device"].startswith("cuda")
            work = Path(tempfile.mkdtemp())
            try:
                (work / "in").mkdir()
                for i in range(args.count):
                    Image.fromarray(photo_like(1080, 1920, i)).save(work / "in" / f"{i}.png")
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "upscale", "dir", str(work / "in"), str(work / "out"),
                                "--model", args.model, "--device", "cuda", "--quiet"], check=True)
                seconds = time.perf_counter() - start
                report["upscale_dir_cuda_output_mp_s"] = args.count * 1920 * 1080 * cpu.scale**2 / 1e6 / seconds
            finally:
                shutil.rmtree(work, ignore_errors=True)
        except (DeviceError, subprocess.CalledProcessError) as exc:
            report["error"] = str(exc)
            ok = False
    report["ok"] = ok
    print(json.dumps(report, indent=2) if args.json else "\n".join(f"{k:>30}: {v}" for k, v in report.items()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
