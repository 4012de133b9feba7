"""--strength between the clean and the photo model: Y-PSNR over bicubic on clean and JPEG inputs.

    python benchmarks/strength_table.py data/Set5 data/Set14 [--scale 2] [--strengths 0,0.25,0.5,0.75,1]

For each strength, `upscale eval --strength S` scores the blend on the folders with the LR input clean, as a
JPEG at quality 75 and at quality 50 (`--degrade`, the evaluation's fixed recipes); bicubic interpolation of the
same inputs is the baseline. Prints a markdown table: mean Y-PSNR over all images, and the gain over bicubic.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

DEGRADATIONS = ("clean", "jpeg:75", "jpeg:50")


def mean_psnr(folders: list[str], scale: int, model_args: list[str]) -> dict[str, float]:
    """Mean Y-PSNR over every image of ``folders``, per degradation."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.json"
        command = [sys.executable, "-m", "upscale", "eval", *folders, "--scale", str(scale), *model_args,
                   "--device", "cpu", "--json", str(out)]
        for spec in DEGRADATIONS:
            command += ["--degrade", spec]
        subprocess.run(command, check=True, capture_output=True)
        images = json.loads(out.read_text())["images"]
    by = {spec: [i["psnr"] for i in images if (i["degradation"] or "clean") == spec] for spec in DEGRADATIONS}
    return {spec: sum(v) / len(v) for spec, v in by.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--strengths", default="0,0.25,0.5,0.75,1")
    args = parser.parse_args()
    bicubic = mean_psnr(args.folders, args.scale, ["-m", "bicubic"])
    header = " | ".join(f"{spec} (dB, over bicubic)" for spec in DEGRADATIONS)
    print(f"| strength | {header} |\n| --- |" + " --- |" * len(DEGRADATIONS))
    print("| bicubic | " + " | ".join(f"{bicubic[s]:.2f}" for s in DEGRADATIONS) + " |")
    for strength in args.strengths.split(","):
        scores = mean_psnr(args.folders, args.scale, ["--strength", strength])
        cells = " | ".join(f"{scores[s]:.2f} ({scores[s] - bicubic[s]:+.2f})" for s in DEGRADATIONS)
        print(f"| {strength} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
