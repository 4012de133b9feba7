"""Rewrite checkpoints of older upscale-train versions so that weights-only loading reads them.

Older checkpoints stored numpy's RNG state as a numpy object, which only full unpickling (able to run code)
can read; `upscale` refuses such files. For checkpoints YOU made, this script reads them once with full
unpickling and rewrites the RNG state as a tensor and plain numbers (atomically, in place). Never run it on a
file from someone else: reading it this way runs whatever code it holds.

    python scripts/upgrade_checkpoint.py runs/x2/best.pt runs/x2/last.pt
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch
from upscale.train.checkpoint import read_weights

from upscale.files import write_atomic


def upgrade(path: Path) -> bool:
    """Rewrite ``path`` if it needs it; True when it was rewritten."""
    state = torch.load(path, map_location="cpu", weights_only=False)  # your own file: see the module docstring
    rng = state.get("rng", {}).get("numpy")
    if not isinstance(rng, tuple):
        return False
    name, keys, pos, has_gauss, cached = rng
    state["rng"]["numpy"] = {"bit_generator": name, "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
                             "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())
    read_weights(path)  # now readable as weights only
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    for path in parser.parse_args().checkpoints:
        print(f"{path}: {'upgraded' if upgrade(path) else 'already readable as weights only'}")


if __name__ == "__main__":
    main()
