"""Third-party architectures, one by one: does each export, run, tile exactly, match PyTorch, and how fast is it?

    python benchmarks/third_party.py [--only ESRGAN,Compact] [--markdown]

Weights are random, in the released layouts (tests/third_party_weights.py), at the released sizes for ESRGAN
(RealESRGAN_x4plus: 64 features, 23 blocks) and Compact (realesr-general-x4v3: 64 features, 32 convolutions) and
at small test configurations for the rest. Each file goes through `upscale-export` (in-process), then:
max |onnxruntime - PyTorch| on a 64x72 photo-like image, the tiling verdict written in the metadata, and the
engine's speed in output MP/s on a 128x128 input (whole image, median of 3, after a warm-up) on this CPU.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from upscale.export.onnx_export import export_checkpoint, photo_like  # noqa: E402
from upscale.export.third_party import import_spandrel  # noqa: E402

from tests.third_party_weights import compact_general_x4v3, esrgan_x4plus, vendored  # noqa: E402
from upscale import load_model  # noqa: E402
from upscale.engine import UpscaleOptions, upscale_picture  # noqa: E402
from upscale.errors import UpscaleError  # noqa: E402
from upscale.images import Picture  # noqa: E402


def candidates() -> dict[str, tuple[str, object]]:
    """name -> (configuration, state dict factory)."""
    import_spandrel()

    def real_cugan():
        from spandrel.architectures.RealCUGAN import UpCunet2x

        return UpCunet2x(in_channels=3, out_channels=3).state_dict()

    def dat():
        from spandrel.architectures.DAT import DAT

        return DAT(upscale=2, embed_dim=24, depth=[2, 2], num_heads=[2, 2], split_size=[2, 4],
                   expansion_factor=2).state_dict()

    return {
        "ESRGAN": ("RealESRGAN_x4plus layout, released size (64 nf, 23 blocks), x4",
                   lambda: esrgan_x4plus(nf=64, blocks=23)),
        "Compact": ("realesr-general-x4v3 layout, released size (64 nf, 32 convs), x4",
                    lambda: compact_general_x4v3(nf=64, convs=32)),
        "SPAN": ("16 features, x2", lambda: vendored("SPAN")),
        "SwinIR": ("24 dims, 2x2 blocks, window 8, x2", lambda: vendored("SwinIR")),
        "OmniSR": ("16 features, 1 block, x2", lambda: vendored("OmniSR")),
        "PLKSR": ("16 dims, 2 blocks, x2", lambda: vendored("PLKSR")),
        "RealCUGAN": ("UpCunet2x, released size, x2", real_cugan),
        "DAT": ("24 dims, 2x2 blocks, x2", dat),
    }


def try_one(name: str, make, folder: Path) -> dict:
    row: dict[str, object] = {"architecture": name}
    weights = folder / f"{name}.pth"
    torch.save(make(), weights)
    out = folder / f"{name}.onnx"
    start = time.perf_counter()
    try:
        summary = export_checkpoint(weights, out)
    except UpscaleError as exc:
        why = re.sub(r"\x1b\[[0-9;]*m", "", str(exc).split(": ", 1)[-1])
        row.update(exports=False, why=why[:300])
        return row
    row.update(exports=True, export_s=round(time.perf_counter() - start, 1), tiling=summary.tiling,
               params=summary.params, parity=f"{summary.parity_max_abs:.1e}")
    spandrel = import_spandrel()
    module = spandrel.ModelLoader().load_from_file(str(weights)).model.eval()
    model = load_model(out, "cpu")
    image = (photo_like(64, 72)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    got = upscale_picture(model, Picture(image), UpscaleOptions(tile=0)).pixels.astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255))[0]
    want = np.rint(want.clamp(0, 1).numpy().transpose(1, 2, 0) * 255)
    row["max_diff_levels"] = int(np.abs(got - want).max())
    big = (photo_like(128, 128)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    upscale_picture(model, Picture(big), UpscaleOptions(tile=0))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        upscale_picture(model, Picture(big), UpscaleOptions(tile=0))
        times.append(time.perf_counter() - t)
    row["output_mp_s"] = round(128 * 128 * model.scale**2 / 1e6 / statistics.median(times), 3)
    row["scale"] = model.scale
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated architecture names")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    table = candidates()
    names = args.only.split(",") if args.only else list(table)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            config, make = table[name]
            row = try_one(name, make, Path(tmp))
            row["configuration"] = config
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}")
    if args.markdown:
        print("| architecture | configuration | exports | runs, max diff to PyTorch | tiles | output MP/s |")
        print("| --- | --- | --- | --- | --- | --- |")
        for r in rows:
            if not r["exports"]:
                print(f"| {r['architecture']} | {r['configuration']} | no: {r['why']} | - | - | - |")
                continue
            tiling = str(r["tiling"])
            tiles = "exactly" if tiling.startswith("exact") else tiling.removeprefix("approximate: ")
            print(f"| {r['architecture']} | {r['configuration']} | yes ({r['export_s']} s) | yes, "
                  f"{r['max_diff_levels']} levels | {tiles} | {r['output_mp_s']} (x{r['scale']}) |")


if __name__ == "__main__":
    main()
