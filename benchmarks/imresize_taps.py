"""`upscale eval`'s downscale (`bicubic.imresize`) at sizes it has not seen: banded taps against dense matrices.

    python benchmarks/imresize_taps.py [--repeats 3]

Every evaluation image has its own size, so what counts is the first call at a size. The peer is the dense
form (one (out, in) matrix per axis, two BLAS products), which `imresize` used before; both run in turns on the
same images and must give the same uint8 output.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from upscale.bicubic import imresize, resize_matrix


def dense(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (int(np.ceil(h * scale)), int(np.ceil(w * scale)))
    data = image.astype(np.float64)
    out = (resize_matrix(h, size[0], scale) @ data.reshape(h, -1)).reshape(size[0], *data.shape[1:])
    out = np.moveaxis(np.tensordot(resize_matrix(w, size[1], scale), out, axes=([1], [1])), 0, 1)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    times: dict[str, list[float]] = {"banded": [], "dense": []}
    for i in range(args.repeats):
        for h, w in ((768 + i, 1024 - i), (1080 + i, 1920 - i), (321 + i, 481 - i)):
            image = (rng.random((h, w, 3)) * 255).astype(np.uint8)
            for name, resize in (("banded", lambda x: imresize(x, 0.5)), ("dense", lambda x: dense(x, 0.5))):
                start = time.perf_counter()
                result = resize(image)
                times[name].append(time.perf_counter() - start)
            assert np.array_equal(result, imresize(image, 0.5)), "the two forms differ"
            print(f"{w}x{h}: banded {times['banded'][-1]:.3f} s, dense {times['dense'][-1]:.3f} s", flush=True)
    banded, dense_s = statistics.median(times["banded"]), statistics.median(times["dense"])
    print(f"median per new size: banded {banded:.3f} s, dense {dense_s:.3f} s, ratio {dense_s / banded:.1f}x")


if __name__ == "__main__":
    main()
