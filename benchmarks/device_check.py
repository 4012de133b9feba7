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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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


def run_stage(report: dict, name: str, fn: Callable[[], dict]) -> None:
    """Run a stage, store its result or its error under ``name``, never raise."""
    start = time.perf_counter()
    try:
        report[name] = fn()
    except Exception as exc:  # a broken stage must not cost the rest of the device call
        report[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    report[name + "_seconds"] = round(time.perf_counter() - start, 2)
    print(f"[{name}] {json.dumps(report[name])[:2000]}", flush=True)


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


@dataclass
class Check:
    """What every stage reads: the device, the options, the report so far and the photo folder."""

    args: argparse.Namespace
    kind: str
    sizes: list[tuple[int, int]]
    report: dict[str, object]
    passed: dict[str, bool] = field(default_factory=dict)
    inputs: Path | None = None
    count: int = 0
    megapixels_out: float = 0.0

    @property
    def device(self) -> str:
        return self.args.device

    def against_upscale_dir(self, seconds: float) -> dict:
        """A peer's seconds and images/s, and how many times `upscale dir` (PNG, end to end) was faster."""
        rows = {"seconds": round(seconds, 2), "images_s": round(self.count / seconds, 3)}
        e2e = self.report.get("end_to_end", {})
        if isinstance(e2e, dict) and "png_default" in e2e:
            rows["upscale_dir_speedup"] = round(seconds / e2e["png_default"]["seconds"], 2)
        return rows


def device_choice(check: Check) -> dict:
    """`--device auto` picks a GPU, `upscale dir` names it, and `--device D` loads (with its note)."""
    reason = unusable_reason(check.kind)
    auto = str(load_model("default", "auto").device)
    asked = load_model("default", check.device)
    check.passed["auto_picks_a_gpu"] = auto != "cpu" or check.device == "cpu"
    work = Path(tempfile.mkdtemp())
    try:
        (work / "in").mkdir()
        Image.fromarray(photo_like(64, 80, 0)).save(work / "in" / "a.png")
        said = subprocess.run([sys.executable, "-m", "upscale", "dir", str(work / "in"), str(work / "out")],
                              capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line = next((x for x in said.stderr.splitlines() if x.startswith("model ")), said.stderr[-300:])
    check.passed["auto_says_it"] = f"on {auto}" in line
    return {"unusable_reason": reason, "auto": auto, "asked": str(asked.device), "note": asked.note,
            "dir_says": line}


def agreement(check: Check) -> dict:
    """Every bundled learned model on the CPU and the device, whole and tiled: float32 within 1/255, float16 2/255."""
    rows = {}
    image = photo_like(*check.sizes[0], 1)
    for name in [n for n in bundled_models() if not n.startswith("bicubic")]:
        bound = 2 / 255 if name.endswith("fp16") else 1 / 255
        cpu, gpu = load_model(name, "cpu"), load_model(name, check.device)
        worst = 0.0
        for tile in (0, 128):
            opts = UpscaleOptions(tile=tile, batch_size=4)
            a = upscale_picture(cpu, Picture(image), opts).pixels.astype(np.float32)
            b = upscale_picture(gpu, Picture(image), opts).pixels.astype(np.float32)
            worst = max(worst, float(np.abs(a - b).max()) / 255)
        rows[name] = {"max_abs": round(worst, 5), "bound": round(bound, 5), "ok": worst <= bound + 1e-9,
                      "ran": gpu.path.stem, "note": gpu.note}
        check.passed[f"agree_{name}"] = rows[name]["ok"]
    return rows


def compute_mp_s(check: Check) -> dict:
    """Output MP/s on the device, float32 and float16, by tile and batch size."""
    rows = {}
    tiles = [128, 256] if check.args.quick else [256, 512, 1024]
    batches = [1, 4] if check.args.quick else [1, 4, 8, 16]
    for name in ("repsr-x2", "repsr-x2-fp16", "repsr-x4", "repsr-x4-fp16"):
        model = load_model(name, check.device)
        for tile in tiles:
            for batch in batches:
                if tile * tile * batch > 1024 * 1024 * 16:
                    continue
                x = np.random.default_rng(0).random((batch, 3, tile, tile), dtype=np.float32)
                rows[f"{name} tile {tile} batch {batch}"] = rate(model, x, 2 if check.args.quick else 5)
    return rows


def write_photos(check: Check, work: Path) -> None:
    """The end-to-end folder: ``count`` photo-like PNGs at the check's sizes."""
    check.count = 4 if check.args.quick else check.args.count
    check.inputs = work / "in"
    check.inputs.mkdir()
    for i in range(check.count):
        h, w = check.sizes[i % len(check.sizes)]
        Image.fromarray(photo_like(h, w, i)).save(check.inputs / f"{i:03d}.png", compress_level=1)
        check.megapixels_out += h * w * 4 / 1e6


def end_to_end(check: Check, work: Path) -> dict:
    """`upscale dir --device D` on the folder, PNG and JPEG, with the GPU's busy fraction."""
    rows = {"images": check.count, "output_mp": round(check.megapixels_out, 1),
            "pools": vars(IOWorkers.for_device(check.kind))}
    for label, extra in (("png_default", []), ("jpeg", ["--format", "jpg"])):
        with GpuBusy() as busy:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "upscale", "dir", str(check.inputs), str(work / f"out-{label}"),
                            "--device", check.device, "-q", *extra], check=True, timeout=1800)
            seconds = time.perf_counter() - start
        rows[label] = {"seconds": round(seconds, 2), "images_s": round(check.count / seconds, 3),
                       "output_mp_s": round(check.megapixels_out / seconds, 2), "gpu_busy": busy.fraction}
    return rows


def io_floor(check: Check, work: Path) -> dict:
    """Decode, encode and write the same outputs with no model, on as many threads as the pipeline's pools."""
    paths = sorted(check.inputs.iterdir())
    workers = IOWorkers.for_device(check.kind)
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
        rows[label] = {"seconds": round(seconds, 2), "images_s": round(check.count / seconds, 3)}
        e2e = check.report.get("end_to_end", {})
        if isinstance(e2e, dict) and label in e2e:
            rows[label]["pipeline_fraction_of_floor"] = round(seconds / e2e[label]["seconds"], 3)
    return rows


def simple_ort_loop(check: Check, work: Path) -> dict:
    """The peer a user writes: one onnxruntime session on the same provider, whole images, Pillow."""
    from upscale.registry import resolve_model_path

    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "simple_ort_loop.py"),
                    str(resolve_model_path("default")), str(check.inputs), str(work / "out-simple"), "--device",
                    check.kind], check=True, timeout=3600)
    return check.against_upscale_dir(time.perf_counter() - start)


def pytorch_eager(check: Check, work: Path) -> dict:
    """The same network in PyTorch eager, image by image (CUDA and the CPU only)."""
    if check.kind not in ("cuda", "cpu"):
        return {"skipped": "PyTorch eager runs on CUDA or the CPU only"}
    import torch
    from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint

    net = model_from_checkpoint(load_checkpoint(check.args.checkpoint)).eval().to(check.device)
    out = work / "out-torch"
    out.mkdir()
    start = time.perf_counter()
    for path in sorted(check.inputs.iterdir()):
        x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1).copy())
        with torch.no_grad():
            y = net(x[None].to(check.device).float().div(255))[0].clamp(0, 1).mul(255).round().byte()
        Image.fromarray(y.permute(1, 2, 0).cpu().numpy()).save(out / path.name)  # Pillow's default level
    return check.against_upscale_dir(time.perf_counter() - start)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda[:N], webgpu[:N], directml[:N], coreml (the check) or "
                                                          "cpu (a dry run of the script)")
    parser.add_argument("--count", type=int, default=100, help="photos in the end-to-end folder")
    parser.add_argument("--quick", action="store_true", help="small sizes and counts (a dry run)")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "checkpoints/repsr-x2/best.pt")
    parser.add_argument("--json-out", type=Path)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    check = Check(args, parse_device(args.device)[0], [(120, 160), (200, 240)] if args.quick else SIZES,
                  {"device": args.device, "cpu_cores": os.cpu_count()})
    for name, fn in (("device_choice", device_choice), ("agreement", agreement), ("compute_mp_s", compute_mp_s)):
        run_stage(check.report, name, lambda fn=fn: fn(check))
    work = Path(tempfile.mkdtemp())
    try:
        write_photos(check, work)
        for name, fn in (("end_to_end", end_to_end), ("io_floor", io_floor), ("simple_ort_loop", simple_ort_loop),
                         ("pytorch_eager", pytorch_eager)):
            run_stage(check.report, name, lambda fn=fn: fn(check, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    check.report["passed"] = check.passed
    check.report["ok"] = bool(check.passed) and all(check.passed.values())
    text = json.dumps(check.report, indent=2)
    if args.json_out:
        args.json_out.write_text(text)
    print(text)
    return 0 if check.report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
