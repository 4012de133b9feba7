"""`imresize` by BLAS matrix products gives what the dense per-axis sums give (the definition it replaced)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from upscale.bicubic import imresize, resize_matrix

from .conftest import photo


def by_definition(image: np.ndarray, size: tuple[int, int], sy: float, sx: float) -> np.ndarray:
    """out[i, k] = sum_j sum_l rows[i, j] * cols[k, l] * image[j, l]: the sums written out with np.einsum."""
    rows = resize_matrix(image.shape[0], size[0], sy)
    cols = resize_matrix(image.shape[1], size[1], sx)
    out = np.einsum("ij,jk...->ik...", rows, image.astype(np.float64))
    return np.einsum("ij,kj...->ki...", cols, out)


@pytest.mark.parametrize("scale", [1 / 2, 1 / 3, 1 / 4, 2, 3])
@pytest.mark.parametrize("channels", [0, 1, 3])
def test_imresize_matches_the_dense_sums(scale: float, channels: int) -> None:
    image = photo(61, 47, max(channels, 1), seed=3)
    image = image[..., 0] if channels == 0 else image
    size = (math.ceil(61 * scale), math.ceil(47 * scale))
    want = by_definition(image, size, scale, scale)
    got = imresize(image, scale)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert np.array_equal(got, np.clip(np.round(want), 0, 255).astype(np.uint8))
    unit = image.astype(np.float32) / 255
    np.testing.assert_allclose(imresize(unit, scale), by_definition(unit, size, scale, scale), rtol=0, atol=1e-12)


def test_imresize_to_a_size() -> None:
    image = photo(40, 56, seed=1)
    got = imresize(image, size=(17, 90))
    want = by_definition(image, (17, 90), 17 / 40, 90 / 56)
    assert np.array_equal(got, np.clip(np.round(want), 0, 255).astype(np.uint8))
