"""The one bicubic kernel of the project, and MATLAB-compatible ``imresize`` built on it.

Everything bicubic goes through here: the bundled bicubic ONNX model (`phase_taps`), the fixed
upsampling layers of the trained networks, the trainer's low-resolution inputs and `upscale eval`
(`imresize`). Published super-resolution results are computed with MATLAB's ``imresize``, which
antialiases when it downscales (the kernel is stretched by the factor) and mirrors the image at its
borders; `imresize` reproduces that, so our numbers compare with the literature.
"""

from __future__ import annotations

import math

import numpy as np

KEYS_A = -0.5
"""Keys' cubic convolution parameter used by MATLAB, Pillow and onnxruntime."""


def keys_kernel(x: np.ndarray, a: float = KEYS_A) -> np.ndarray:
    """The cubic convolution kernel of Keys (1981), support [-2, 2]."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x <= 1, near, np.where(x < 2, far, 0.0))


def phase_taps(scale: int) -> np.ndarray:
    """(scale, 5) weights for integer upscaling: row p holds the taps on input offsets -2..2 for the
    output pixel ``scale*i + p`` (half-pixel centres), i.e. bicubic upscaling as a polyphase filter."""
    taps = np.zeros((scale, 5))
    for p in range(scale):
        d = (p + 0.5) / scale - 0.5  # where output pixel s*i+p sits, relative to input pixel i
        base = math.floor(d)
        t = d - base
        for k, offset in enumerate(range(base - 1, base + 3)):
            taps[p, offset + 2] = keys_kernel(np.array(t - (k - 1)))
    return taps


def resize_taps(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (out_len, taps): output pixel i is ``sum_k weights[i, k] * in[indices[i, k]]``,
    exactly as MATLAB's imresize (bicubic, antialiasing when shrinking, symmetric borders). A handful of taps per
    output pixel (4 when enlarging, 4 / scale + 2 when shrinking), never a dense matrix."""
    kernel_scale = min(scale, 1.0)  # shrinking stretches the kernel: that is the antialiasing
    width = 4.0 / kernel_scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    weights = kernel_scale * keys_kernel(kernel_scale * (u[:, None] - idx))
    weights /= weights.sum(axis=1, keepdims=True)
    # symmetric padding: ... 2 1 | 1 2 3 ... n | n n-1 ...  (1-based, as MATLAB)
    mirror = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])
    return mirror[np.mod(idx - 1, 2 * in_len).astype(int)] - 1, weights


def resize_matrix(in_len: int, out_len: int, scale: float) -> np.ndarray:
    """(out_len, in_len) matrix M with ``out = M @ in`` along one axis (`resize_taps` laid out densely): what the
    trainer's batched GPU downscale multiplies by."""
    indices, weights = resize_taps(in_len, out_len, scale)
    matrix = np.zeros((out_len, in_len))
    np.add.at(matrix, (np.repeat(np.arange(out_len), indices.shape[1]), indices.ravel()), weights.ravel())
    return matrix


def _resize_rows(data: np.ndarray, out_len: int, scale: float) -> np.ndarray:
    """``data`` (float64, C-contiguous) resized along its first axis: each tap gathers whole rows (contiguous
    copies) and adds them in, weighted."""
    indices, weights = resize_taps(data.shape[0], out_len, scale)
    shape = (out_len,) + (1,) * (data.ndim - 1)
    out = np.zeros((out_len, *data.shape[1:]))
    term = np.empty_like(out)
    for k in range(indices.shape[1]):
        np.multiply(data[indices[:, k]], weights[:, k].reshape(shape), out=term)
        out += term
    return out


def imresize(image: np.ndarray, scale: float | None = None, size: tuple[int, int] | None = None) -> np.ndarray:
    """Resize an HxW or HxWxC image like MATLAB's ``imresize(image, scale, 'bicubic')``.

    ``size`` is (height, width) and wins over ``scale``. uint8 input gives uint8 output rounded as MATLAB
    does; float input gives float64 output (not clipped).
    """
    h, w = image.shape[:2]
    if size is None:
        if scale is None:
            raise ValueError("give scale or size")
        size = (math.ceil(h * scale), math.ceil(w * scale))
    sy = scale if scale is not None else size[0] / h
    sx = scale if scale is not None else size[1] / w
    data = image.astype(np.float64)
    # Banded taps, rows, then columns as rows of the transposed picture: no dense matrix is built for a new size
    # (benchmarks/imresize_taps.py), and the output is the dense form's (tests/test_bicubic.py).
    out = _resize_rows(data, size[0], sy)
    out = _resize_rows(np.ascontiguousarray(np.swapaxes(out, 0, 1)), size[1], sx).swapaxes(0, 1)
    if image.dtype == np.uint8:
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out
