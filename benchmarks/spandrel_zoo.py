"""Every architecture spandrel knows, at its default configuration (the released one for most), through `upscale`.

    python benchmarks/spandrel_zoo.py [--only DCTLSA,DITN] [--timeout 1200] [--rows zoo.jsonl] [--markdown]
    python benchmarks/spandrel_zoo.py --against-pytorch DCTLSA

For each architecture in spandrel's registry: the model class built with its defaults and random weights (no
downloads), saved as a ``.pth``, then converted by `upscale-export` (in a child process with a time limit) and,
when that succeeds, run through the engine: the conversion's form (dynamic graph, fixed window, or the reason it
fails), its difference to PyTorch in 8-bit levels over every input shape the engine gives it, whether tiles
reproduce the whole image (or by how many levels they differ), and output MP/s on this CPU on a 128x128 input
(the engine's default tiling, median of 2 after a warm-up). What is not an RGB upscaler (face restoration,
inpainting, denoisers at scale 1) is listed as refused, with the one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def architectures() -> list[str]:
    from upscale.export.third_party import import_spandrel

    import_spandrel()
    from spandrel import MAIN_REGISTRY

    return [a.architecture.id for a in MAIN_REGISTRY.architectures()]


def build(arch_id: str):
    """The architecture's model class (the one named like it, else the first), built with its defaults."""
    import torch
    from upscale.export.third_party import import_spandrel

    import_spandrel()
    module = importlib.import_module(f"spandrel.architectures.{arch_id}")
    classes = [v for v in vars(module).values() if inspect.isclass(v) and issubclass(v, torch.nn.Module)]
    cls = next((c for c in classes if c.__name__ == arch_id), classes[0])
    required = {n: _REQUIRED[n] for n, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is inspect.Parameter.empty and n in _REQUIRED}
    required.update(RELEASED.get(arch_id, {}))
    torch.manual_seed(0)
    described = ", ".join(f"{k}={v}" for k, v in required.items())
    return cls(**required), f"{cls.__name__}({described})"


_SWIN = {"upscale": 4, "img_size": 64, "window_size": 8, "embed_dim": 180, "depths": [6] * 6,
         "num_heads": [6] * 6, "mlp_ratio": 2, "upsampler": "pixelshuffle", "resi_connection": "1conv"}
RELEASED = {
    # where the class's defaults are not an upscaler (scale 1, or window sizes that do not divide): the
    # configuration of the authors' x4 release
    "SwinIR": _SWIN, "Swin2SR": _SWIN,
    "HAT": {**_SWIN, "window_size": 16, "compress_ratio": 3, "squeeze_factor": 30, "overlap_ratio": 0.5},
    "DRCT": {"upscale": 4, "upsampler": "pixelshuffle", "window_size": 16},
    "ATD": {"upscale": 4, "upsampler": "pixelshuffle", "window_size": 16},
    "GRL": {"upscale": 4, "upsampler": "pixelshuffle"},
    "SAFMN": {"dim": 36},  # SAFMN_DF2K_x4: 36 dims, 8 blocks
    "SAFMNBCIE": {"dim": 64, "upscaling_factor": 4},  # the NTIRE 2024 release: 64 dims, 6 blocks of 6 layers
    # the configuration spandrel's loader starts from (the fal.ai AuraSR release: 617M parameters)
    "AuraSR": {"dim": 64, "image_size": None, "input_image_size": None,
               "style_network": {"dim_in": 128, "dim_out": 512, "depth": 4}},
}


_REQUIRED = {"num_in_ch": 3, "num_out_ch": 3, "in_nc": 3, "out_nc": 3, "in_ch": 3, "out_ch": 3, "in_channels": 3,
             "out_channels": 3, "upscale": 4, "scale": 4}
"""Values for constructor arguments some classes require (RGB in and out, the common 4x)."""


def one(arch_id: str) -> dict:
    """Convert and measure one architecture (run in a child process)."""
    import numpy as np
    import torch
    from upscale.export.graph import photo_like
    from upscale.export.onnx_export import export_checkpoint

    from upscale import load_model
    from upscale.errors import UpscaleError
    from upscale.images import Picture
    from upscale.picture import UpscaleOptions, upscale_picture

    row: dict[str, object] = {"architecture": arch_id}
    try:
        model, name = build(arch_id)
    except Exception as exc:
        row.update(result="no", why=f"spandrel's class does not build with its defaults: {exc}"[:200])
        return row
    row["configuration"] = f"{name} defaults, {sum(p.numel() for p in model.parameters()):,} parameters"
    with tempfile.TemporaryDirectory() as tmp:
        weights, out = Path(tmp) / f"{arch_id}.pth", Path(tmp) / f"{arch_id}.onnx"
        torch.save(model.state_dict(), weights)
        start = time.perf_counter()
        try:
            summary = export_checkpoint(weights, out)
        except UpscaleError as exc:
            text = str(exc).split(": ", 1)[-1]
            refused = any(k in text for k in ("face-restoration", "inpainting", "restoration model", "RGB-to-RGB",
                                              "square inputs"))
            row.update(result="refused" if refused else "no", why=text[:400])
            return row
        row.update(result="fixed window" if "fixed" in summary.shapes else "dynamic",
                   export_s=round(time.perf_counter() - start, 1), parity=summary.parity_levels,
                   tiling=summary.tiling, shapes=summary.shapes, scale=summary.scale)
        runner = load_model(out, "cpu")
        image = (photo_like(128, 128)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        upscale_picture(runner, Picture(image), UpscaleOptions())
        times = []
        for _ in range(2):
            t = time.perf_counter()
            upscale_picture(runner, Picture(image), UpscaleOptions())
            times.append(time.perf_counter() - t)
        row["output_mp_s"] = round(128 * 128 * summary.scale**2 / 1e6 / statistics.median(times), 3)
    return row


def against_pytorch(arch_id: str) -> dict:
    """`upscale dir`'s engine against spandrel's PyTorch module on whole 16, 32 and 64 px images and a 500x400
    photo-like picture at the automatic tile: the largest difference in 8-bit levels on each."""
    import numpy as np
    import torch
    from upscale.export.graph import photo_like
    from upscale.export.onnx_export import export_checkpoint
    from upscale.export.third_party import load_third_party

    from upscale import load_model
    from upscale.images import Picture
    from upscale.picture import UpscaleOptions, upscale_picture

    model, name = build(arch_id)
    row: dict[str, object] = {"architecture": arch_id, "configuration": name}
    with tempfile.TemporaryDirectory() as tmp:
        weights, out = Path(tmp) / f"{arch_id}.pth", Path(tmp) / f"{arch_id}.onnx"
        torch.save(model.state_dict(), weights)
        summary = export_checkpoint(weights, out)
        row["form"] = summary.shapes
        reference = load_third_party(weights).module  # spandrel's own module, as spandrel loads the file
        runner = load_model(out, "cpu")
        for h, w in [(16, 16), (32, 32), (64, 64), (400, 500)]:
            image = (photo_like(h, w, seed=h)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
            got = upscale_picture(runner, Picture(image), UpscaleOptions()).pixels.astype(int)
            with torch.no_grad():
                want = reference(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255))[0]
            want = np.round(want.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(int)
            row[f"{w}x{h}"] = int(np.abs(got - want).max())
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| architecture | configuration | converts | vs PyTorch (8-bit levels) | tiles | output MP/s |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        config = r.get("configuration", "-")
        if r["result"] in ("no", "refused", "timeout"):
            verdict = {"no": "**no**", "refused": "refused", "timeout": "**no** (time limit)"}[r["result"]]
            lines.append(f"| {r['architecture']} | {config} | {verdict}: {r.get('why', '')} | - | - | - |")
            continue
        tiling = str(r["tiling"])
        tiles = "exact" if tiling.startswith("exact (") else tiling
        form = "dynamic" if r["result"] == "dynamic" else r["shapes"].split(" (")[0]
        lines.append(f"| {r['architecture']} | {config} | {form} ({r['export_s']} s) | {r['parity']} | {tiles} | "
                     f"{r['output_mp_s']} (x{r['scale']}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated architecture ids")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per architecture")
    parser.add_argument("--rows", type=Path, help="append each row as a JSON line here (resumable)")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--against-pytorch", metavar="ID", help="only: the engine against PyTorch on whole 16/32/64 px "
                                                               "images and a 500x400 picture (levels)")
    args = parser.parse_args()
    if args.against_pytorch:
        print(json.dumps(against_pytorch(args.against_pytorch)), flush=True)
        return
    if args.one:
        print(json.dumps(one(args.one)), flush=True)
        return
    done = {}
    if args.rows and args.rows.exists():
        done = {r["architecture"]: r for r in map(json.loads, args.rows.read_text().splitlines())}
    ids = args.only.split(",") if args.only else architectures()
    rows = []
    for arch_id in ids:
        if arch_id in done:
            rows.append(done[arch_id])
            continue
        try:
            child = subprocess.run([sys.executable, __file__, "--one", arch_id], capture_output=True, text=True,
                                   timeout=args.timeout, cwd=ROOT)
            lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
            row = json.loads(lines[-1]) if lines else {
                "architecture": arch_id, "result": "no",
                "why": (child.stderr.strip().splitlines() or [f"crashed (exit {child.returncode})"])[-1][:300]}
        except subprocess.TimeoutExpired:
            row = {"architecture": arch_id, "result": "timeout", "why": f"over {args.timeout} s on this CPU"}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.rows:
            with args.rows.open("a") as f:
                f.write(json.dumps(row) + "\n")
    import torch

    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    if args.markdown:
        print(markdown(rows))


if __name__ == "__main__":
    main()
