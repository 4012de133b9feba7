"""What each `--png-compression` level costs: encoding time and file size on upscaled photographs.

    python benchmarks/png_levels.py [--model fast-x2] [--size 1200x800] [--levels 0,1,2,3,6,9] [--repeats 3]

The pictures are what `upscale dir` writes: scikit-image's sample photographs resized to ``--size`` and upscaled by
``--model``. Each level goes through the writer `upscale dir` uses (`upscale.png.write_png`: ISA-L at levels 1-2,
zlib at the others), and beside them two peers: the same writer with zlib's level 1 (what level 1 was before ISA-L)
and Pillow's PNG encoder at level 1 (what a simple script writes). Best of ``--repeats`` per picture, summed;
milliseconds, megabytes and each one's time and size over the default level's.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

import upscale.png as png
from upscale import load_model


def upscaled_photos(model_name: str, size: tuple[int, int]) -> list[np.ndarray]:
    """Three sample photographs at ``size``, upscaled by the model, as HxWx3 uint8."""
    from skimage import data

    model = load_model(model_name, "cpu")
    pictures = []
    for name in ("astronaut", "coffee", "chelsea"):
        small = Image.fromarray(getattr(data, name)()[..., :3]).resize(size, Image.Resampling.LANCZOS)
        x = np.asarray(small, np.float32).transpose(2, 0, 1)[None] / 255
        pictures.append(np.clip(np.round(model(x)[0].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8))
    return pictures


def measure(encode: Callable[[np.ndarray], bytes], pictures: list[np.ndarray], repeats: int) -> tuple[float, int]:
    """(seconds, bytes) over the pictures: each picture's best time of ``repeats``."""
    seconds, size = 0.0, 0
    for picture in pictures:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            data = encode(picture)
            times.append(time.perf_counter() - start)
        seconds, size = seconds + min(times), size + len(data)
    return seconds, size


def ours(level: int) -> Callable[[np.ndarray], bytes]:
    def encode(picture: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        png.write_png(buffer, picture, compress_level=level)
        return buffer.getvalue()
    return encode


def ours_with_zlib_level_1(picture: np.ndarray) -> bytes:
    """The same writer with zlib's level 1 in place of ISA-L's."""
    fast = png.compressor
    png.compressor = lambda level: zlib.compressobj(level)
    try:
        return ours(1)(picture)
    finally:
        png.compressor = fast


def pillow_level_1(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="fast-x2")
    parser.add_argument("--size", default="1200x800", help="the pictures before upscaling, WxH")
    parser.add_argument("--levels", default="0,1,2,3,6,9")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    pictures = upscaled_photos(args.model, (width, height))
    encoders = {f"level {level}": ours(int(level)) for level in args.levels.split(",")}
    encoders |= {"level 1 with zlib": ours_with_zlib_level_1, "Pillow level 1": pillow_level_1}
    results = {name: measure(encode, pictures, args.repeats) for name, encode in encoders.items()}
    base_seconds, base_size = results.get("level 1", next(iter(results.values())))
    rows = {name: {"ms": round(s * 1000), "mb": round(n / 1e6, 2), "time_over_level_1": round(s / base_seconds, 2),
                   "size_over_level_1": round(n / base_size, 3)} for name, (s, n) in results.items()}
    output_mp = sum(p.shape[0] * p.shape[1] for p in pictures) / 1e6
    print(json.dumps({"pictures": len(pictures), "output_mp": round(output_mp, 2), **rows}, indent=2))


if __name__ == "__main__":
    main()
