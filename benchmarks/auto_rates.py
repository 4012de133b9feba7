"""How often does `--model auto`'s rule err? False alarms on clean pictures and misses on degraded ones, by size.

    python benchmarks/auto_rates.py ../shared/datasets/val/Set5 ../shared/datasets/val/Set14 [--downscales 1 2 4]

Each image (RGB) is shrunk by MATLAB bicubic by each downscale (1 = as it is), which sets the input size; then
every variant goes through the rule exactly as `upscale dir` runs it (`upscale.evidence.gather`, `upscale.auto
.decide`): ``clean`` (should stay clean), JPEG at quality 75 and 50 decoded and kept as pixels without their
tables (as a PNG re-save would: only blockiness and noise can tell), the same as JPEG files (tables known), and
Gaussian noise of sigma 5 and 10 (should all be called degraded). Prints rates per downscale and variant.
"""

from __future__ import annotations

import argparse
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from upscale.auto import decide
from upscale.bicubic import imresize
from upscale.evidence import gather
from upscale.images import image_extensions

VARIANTS = ("clean", "jpeg75-pixels", "jpeg50-pixels", "jpeg75-file", "jpeg50-file", "noise5", "noise10")


def variant(lr: np.ndarray, name: str, seed: int) -> tuple[np.ndarray, int | None]:
    """(pixels, JPEG quality from the tables or None) for one variant of ``lr``."""
    if name == "clean":
        return lr, None
    if name.startswith("jpeg"):
        quality = int(name[4:6])
        buffer = io.BytesIO()
        Image.fromarray(lr).save(buffer, "JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        return decoded, quality if name.endswith("file") else None
    sigma = float(name[5:])
    noise = np.random.default_rng(seed).normal(0, sigma, lr.shape)
    return np.clip(np.round(lr + noise), 0, 255).astype(np.uint8), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--downscales", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    known = image_extensions()
    paths = [p for f in args.folders for p in sorted(f.iterdir()) if p.suffix.lower() in known]
    rows = []
    for d in args.downscales:
        wrong: dict[str, int] = defaultdict(int)
        reasons: dict[str, Counter] = defaultdict(Counter)
        sizes = []
        for i, path in enumerate(paths):
            hr = np.asarray(Image.open(path).convert("RGB"))
            hr = hr[: hr.shape[0] - hr.shape[0] % d, : hr.shape[1] - hr.shape[1] % d]
            lr = hr if d == 1 else imresize(hr, 1 / d)
            sizes.append(lr.shape[0] * lr.shape[1])
            for name in VARIANTS:
                pixels, quality = variant(lr, name, i)
                degraded, why = decide(gather(pixels, quality))
                if degraded != (name != "clean"):
                    wrong[name] += 1
                    reasons[name][why.split(" ")[0] if degraded else "clean"] += 1
        side = int(np.sqrt(np.median(sizes)))
        row = {"downscale": d, "median_side": side, "images": len(paths),
               **{name: wrong[name] / len(paths) for name in VARIANTS},
               "false_alarm_causes": dict(reasons["clean"])}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    header = "| downscale | median side | images | false alarms (clean) | " + " | ".join(
        f"misses {n}" for n in VARIANTS[1:]) + " |"
    print(header)
    print("|" + " --- |" * (header.count("|") - 1))
    for r in rows:
        causes = ", ".join(f"{k} {v}" for k, v in r["false_alarm_causes"].items())
        print(f"| 1/{r['downscale']} | {r['median_side']} px | {r['images']} | {r['clean']:.0%}"
              + (f" ({causes})" if causes else "") + " | "
              + " | ".join(f"{r[n]:.0%}" for n in VARIANTS[1:]) + " |")


if __name__ == "__main__":
    main()
