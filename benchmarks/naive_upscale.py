"""The naive way a user would upscale a folder by hand: load the PyTorch checkpoint, run each whole image
through it in eager mode, save with Pillow's defaults, one image after the other. The baseline that
`benchmarks/throughput.py` compares `upscale dir` against.

    python benchmarks/naive_upscale.py CHECKPOINT IN_DIR OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint


def main(checkpoint: str, in_dir: str, out_dir: str) -> None:
    model = model_from_checkpoint(load_checkpoint(Path(checkpoint))).eval()
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(in_dir).iterdir()):
        image = np.asarray(Image.open(path).convert("RGB"))
        x = torch.from_numpy(image.transpose(2, 0, 1).copy()).float().div(255)[None]
        with torch.no_grad():
            y = model(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(y).save(Path(out_dir) / path.name)


if __name__ == "__main__":
    main(*sys.argv[1:4])
