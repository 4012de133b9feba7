"""Does `--model auto` pick well? A mixed folder, half JPEG quality 50 and half clean PNG, through `upscale dir`.

    python benchmarks/auto_choice.py ../shared/datasets/val/Set5 ../shared/datasets/val/Set14 [--quality 50]
    python benchmarks/auto_choice.py FOLDER --clean-only --limit 50 --models repsr-x2,auto   # false alarms' cost

Each HR image is cropped to a multiple of 2 and shrunk by the evaluation's MATLAB bicubic; alternate images
are saved as JPEG at ``--quality`` and as PNG (``--clean-only``: all as PNG, to measure what auto's false alarms
cost on pictures that were never compressed). The folder is upscaled by `upscale dir` with the clean default,
the photo model and ``auto``; each output is scored (Y-PSNR, the `upscale eval` protocol) against its HR
image. Prints the mean per half and model, and what auto chose.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from upscale.bicubic import imresize
from upscale.evaluate import load_ground_truth
from upscale.images import image_extensions
from upscale.metrics import y_psnr_ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--quality", type=int, default=50)
    parser.add_argument("--models", default="repsr-x2,photo-x2,auto")
    parser.add_argument("--clean-only", action="store_true", help="every image as PNG (no JPEG half)")
    parser.add_argument("--limit", type=int, help="the first N images only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    known = image_extensions()
    paths = [p for folder in args.folders for p in sorted(folder.iterdir()) if p.suffix.lower() in known]
    paths = paths[: args.limit]
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "in"
        inputs.mkdir()
        truth, half = {}, {}
        for i, path in enumerate(paths):
            hr = load_ground_truth(path, 2)
            if hr.ndim == 2:
                hr = np.repeat(hr[..., None], 3, axis=2)
            stem = f"{path.parent.name}-{path.stem}"
            name = f"{stem}.jpg" if i % 2 == 0 and not args.clean_only else f"{stem}.png"
            Image.fromarray(imresize(hr, 0.5)).save(inputs / name, quality=args.quality)
            truth[name], half[name] = hr, "clean PNG" if name.endswith(".png") else f"JPEG q{args.quality}"
        table: dict[str, dict[str, float]] = {}
        chosen: dict[str, str] = {}
        for model in args.models.split(","):
            out, report = Path(tmp) / f"out-{model}", Path(tmp) / f"{model}.json"
            subprocess.run([sys.executable, "-m", "upscale", "dir", str(inputs), str(out), "-m", model, "-q",
                            "--report", str(report)], check=True)
            scores: dict[str, list[float]] = {}
            for entry in json.loads(report.read_text())["files"]:
                name = Path(entry["input"]).name
                sr = np.asarray(Image.open(out / name).convert("RGB"))
                scores.setdefault(half[name], []).append(y_psnr_ssim(sr, truth[name], 2)[0])
                if entry.get("model"):
                    chosen[name] = entry["model"]
            table[model] = {k: float(np.mean(v)) for k, v in scores.items()}
    result = {"images": len(paths), "mean_y_psnr": table,
              "auto_chose": {h: {m: sum(1 for n, c in chosen.items() if half[n] == h and c == m)
                                 for m in set(chosen.values())} for h in sorted(set(half.values()))}}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    halves = sorted(set(half.values()))
    print(f"{'model':>12} " + " ".join(f"{h:>14}" for h in halves))
    for model, row in table.items():
        print(f"{model:>12} " + " ".join(f"{row[h]:>14.3f}" for h in halves))
    print("auto chose:", result["auto_chose"])


if __name__ == "__main__":
    main()
