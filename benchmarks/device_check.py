"""A GPU checked and timed in one run, whatever its kind: CUDA, WebGPU, DirectML or Core ML.

    python benchmarks/device_check.py --device webgpu [--count 100] [--quick] [--json-out report.json]

Each stage records its numbers (or its error) and the run goes on, so one run yields everything:
1. the device is usable (`upscale devices`' reason otherwise), `--device auto` picks a GPU (and `upscale dir`
   says so), `--device D` works, with its note (a float32 file for a float16 one, a share on the CPU);
2. agreement of the CPU and the device for every bundled learned model, whole images and tiled batches (float32
   within 1/255, float16 within 2/255);
3. compute throughput on the device (output MP/s) for float32 and float16 by tile size and batch size;
4. `upscale dir --device D` end to end on a folder of real-size photos (2-12 MP) as PNG at the default level and
   as JPEG: seconds, images/s, GPU busy fraction (NVIDIA: nvidia-smi sampled every 100 ms), against the
   I/O-only floor (decode + encode + write of the same outputs on as many threads as the pipeline's pools);
5. the peer a GPU user would pick: the simple onnxruntime loop on the same provider
   (`benchmarks/simple_ort_loop.py --device D`), and on CUDA the same network in PyTorch eager.
Exit 0 when every check passed. `--device cpu` runs the same stages on the CPU (a dry run of the script, not a
measurement of a GPU); SwiftShader's WebGPU says nothing of a GPU's speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from upscale import load_model
from upscale.decoding import read_image
from upscale.device import parse_device
from upscale.encoding import encode
from upscale.files import write_atomic
from upscale.images import Picture
from upscale.picture import UpscaleOptions, upscale_picture
from upscale.pipeline import IOWorkers
from upscale.providers import unusable_reason
from upscale.registry import bundled_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from throughput import photo_like

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(1080, 1920), (1536, 2048), (2448, 3264), (3000, 4000)]  # 2, 3, 8 and 12 MP


def stage(report: dict, name: str):
    """Decorator: run a stage, store its result or its error under ``name``, never raise."""

    def wrap(fn):
        start = time.perf_counter()
        try:
            report[name] = fn()
        except Exception as exc:  # a broken stage must not cost the rest of the device call
            report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
        report[name + "_seconds"] = round(time.perf_counter() - start, 2)
        print(f"[{name}] {json.dumps(report[name])[:2000]}", flush=True)
        return fn

    return wrap


class GpuBusy:
    """Mean GPU utilisation while the block runs, from nvidia-smi sampled every 100 ms (None without it)."""

    def __enter__(self) -> GpuBusy:
        self.samples: list[float] = []
        self.proc = None
        if shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                          "-lms", "100"], stdout=subprocess.PIPE, text=True)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append(float(line.strip().split(",")[0]))

    def __exit__(self, *exc: object) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=5)

    @property
    def fraction(self) -> float | None:
        return round(statistics.mean(self.samples) / 100, 3) if self.samples else None


def rate(model, batch: np.ndarray, repeats: int) -> float:
    """Output MP/s of ``model`` on ``batch`` (median of ``repeats`` after a warm-up)."""
    model(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = model(batch)
        times.append(time.perf_counter() - start)
    return round(out.shape[0] * out.shape[2] * out.shape[3] / 1e6 / statistics.median(times), 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda[:N], webgpu[:N], directml[:N], coreml (the check) or "
                                                          "cpu (a dry run of the script)")
    parser.add_argument("--count", type=int, default=100, help="photos in the end-to-end folder")
    parser.add_argument("--quick", action="store_true", help="small sizes and counts (a dry run)")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints/repsr-x2/best.pt")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    device = args.device
    kind = parse_device(device)[0]
    sizes = [(120, 160), (200, 240)] if args.quick else SIZES
    report: dict[str, object] = {"device": device, "cpu_cores": os.cpu_count()}
    passed: dict[str, bool] = {}

    @stage(report, "device_choice")
    def _() -> dict:
        reason = unusable_reason(kind)
        auto = str(load_model("default", "auto").device)
        asked = load_model("default", device)
        chosen = str(asked.device)
        passed["auto_picks_a_gpu"] = auto != "cpu" or device == "cpu"
        work = Path(tempfile.mkdtemp())
        try:
            (work / "in").mkdir()
            Image.fromarray(photo_like(64, 80, 0)).save(work / "in" / "a.png")
            said = subprocess.run([sys.executable, "-m", "upscale", "dir", str(work / "in"), str(work / "out")],
                                  capture_output=True, text=True, timeout=300)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        line = next((x for x in said.stderr.splitlines() if x.startswith("model ")), said.stderr[-300:])
        passed["auto_says_it"] = f"on {auto}" in line
        return {"unusable_reason": reason, "auto": auto, "asked": chosen, "note": asked.note, "dir_says": line}

    @stage(report, "agreement")
    def _() -> dict:
        rows = {}
        image = photo_like(*sizes[0], 1)
        for name in [n for n in bundled_models() if not n.startswith("bicubic")]:
            bound = 2 / 255 if name.endswith("fp16") else 1 / 255
            cpu, gpu = load_model(name, "cpu"), load_model(name, device)
            worst = 0.0
            for tile in (0, 128):
                opts = UpscaleOptions(tile=tile, batch_size=4)
                a = upscale_picture(cpu, Picture(image), opts).pixels.astype(np.float32)
                b = upscale_picture(gpu, Picture(image), opts).pixels.astype(np.float32)
                worst = max(worst, float(np.abs(a - b).max()) / 255)
            rows[name] = {"max_abs": round(worst, 5), "bound": round(bound, 5), "ok": worst <= bound + 1e-9,
                          "ran": gpu.path.stem, "note": gpu.note}
            passed[f"agree_{name}"] = rows[name]["ok"]
        return rows

    @stage(report, "compute_mp_s")
    def _() -> dict:
        rows = {}
        tiles = [128, 256] if args.quick else [256, 512, 1024]
        batches = [1, 4] if args.quick else [1, 4, 8, 16]
        for name in ("repsr-x2", "repsr-x2-fp16", "repsr-x4", "repsr-x4-fp16"):
            model = load_model(name, device)
            for tile in tiles:
                for batch in batches:
                    if tile * tile * batch > 1024 * 1024 * 16:
                        continue
                    x = np.random.default_rng(0).random((batch, 3, tile, tile), dtype=np.float32)
                    rows[f"{name} tile {tile} batch {batch}"] = rate(model, x, 2 if args.quick else 5)
        return rows

    work = Path(tempfile.mkdtemp())
    count = 4 if args.quick else args.count
    inputs = work / "in"
    inputs.mkdir()
    for i in range(count):
        h, w = sizes[i % len(sizes)]
        Image.fromarray(photo_like(h, w, i)).save(inputs / f"{i:03d}.png", compress_level=1)
    megapixels_out = sum(Image.open(p).size[0] * Image.open(p).size[1] for p in inputs.iterdir()) * 4 / 1e6
    workers = IOWorkers.for_device(kind)

    @stage(report, "end_to_end")
    def _() -> dict:
        rows = {"images": count, "output_mp": round(megapixels_out, 1), "pools": vars(workers)}
        for label, extra in (("png_default", []), ("jpeg", ["--format", "jpg"])):
            out = work / f"out-{label}"
            with GpuBusy() as busy:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "upscale", "dir", str(inputs), str(out), "--device", device,
                                "-q", *extra], check=True, timeout=1800)
                seconds = time.perf_counter() - start
            rows[label] = {"seconds": round(seconds, 2), "images_s": round(count / seconds, 3),
                           "output_mp_s": round(megapixels_out / seconds, 2), "gpu_busy": busy.fraction}
        return rows

    @stage(report, "io_floor")
    def _() -> dict:
        paths = sorted(inputs.iterdir())
        model = load_model("default", device)
        rows = {}
        for label, fmt in (("png_default", "PNG"), ("jpeg", "JPEG")):
            out = work / f"floor-{label}"
            out.mkdir()

            def one(path: Path, fmt: str = fmt, out: Path = out) -> None:
                picture = read_image(path)
                big = Picture(np.repeat(np.repeat(picture.pixels, 2, 0), 2, 1))  # output-sized, no model
                data, _ = encode(big, fmt)
                write_atomic(out / (path.stem + (".png" if fmt == "PNG" else ".jpg")), data)

            start = time.perf_counter()
            with ThreadPoolExecutor(workers.decoders + workers.encoders) as pool:
                list(pool.map(one, paths))
            seconds = time.perf_counter() - start
            rows[label] = {"seconds": round(seconds, 2), "images_s": round(count / seconds, 3)}
            e2e = report.get("end_to_end", {})
            if isinstance(e2e, dict) and label in e2e:
                rows[label]["pipeline_fraction_of_floor"] = round(seconds / e2e[label]["seconds"], 3)
        del model
        return rows

    def against_upscale_dir(seconds: float) -> dict:
        """A peer's seconds and images/s, and how many times `upscale dir` (PNG, end to end) was faster."""
        rows = {"seconds": round(seconds, 2), "images_s": round(count / seconds, 3)}
        e2e = report.get("end_to_end", {})
        if isinstance(e2e, dict) and "png_default" in e2e:
            rows["upscale_dir_speedup"] = round(seconds / e2e["png_default"]["seconds"], 2)
        return rows

    @stage(report, "simple_ort_loop")
    def _() -> dict:
        from upscale.registry import resolve_model_path

        out = work / "out-simple"
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "simple_ort_loop.py"),
                        str(resolve_model_path("default")), str(inputs), str(out), "--device",
                        kind], check=True, timeout=3600)
        return against_upscale_dir(time.perf_counter() - start)

    @stage(report, "pytorch_eager")
    def _() -> dict:
        if kind not in ("cuda", "cpu"):
            return {"skipped": "PyTorch eager runs on CUDA or the CPU only"}
        import torch
        from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint

        net = model_from_checkpoint(load_checkpoint(args.checkpoint)).eval().to(device)
        out = work / "out-torch"
        out.mkdir()
        start = time.perf_counter()
        for path in sorted(inputs.iterdir()):
            x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1).copy())
            with torch.no_grad():
                y = net(x[None].to(device).float().div(255))[0].clamp(0, 1).mul(255).round().byte()
            Image.fromarray(y.permute(1, 2, 0).cpu().numpy()).save(out / path.name)  # Pillow's default level
        return against_upscale_dir(time.perf_counter() - start)

    shutil.rmtree(work, ignore_errors=True)
    report["passed"] = passed
    report["ok"] = bool(passed) and all(passed.values())
    text = json.dumps(report, indent=2)
    if args.json_out:
        args.json_out.write_text(text)
    print(text)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
