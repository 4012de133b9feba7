"""Tiling: pure geometry, then tiled inference equal to whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest

from upscale import load_model
from upscale.tiling import axis_spans, plan_tiles, upscale_array

from .conftest import photo


@pytest.mark.parametrize("size", [1, 2, 7, 16, 33, 100])
@pytest.mark.parametrize("tile", [1, 3, 8, 16, 64])
@pytest.mark.parametrize("overlap", [0, 2, 5])
def test_spans_cover_axis_once_with_margin(size: int, tile: int, overlap: int) -> None:
    spans = axis_spans(size, tile, overlap)
    owned = np.zeros(size, int)
    for s in spans:
        assert 0 <= s.lo <= s.core_lo < s.core_hi <= s.hi <= size
        assert s.core_hi - s.core_lo <= tile
        # Every owned pixel sees `overlap` pixels of context on each side, or the image border.
        assert s.core_lo - s.lo >= min(overlap, s.core_lo)
        assert s.hi - s.core_hi >= min(overlap, size - s.core_hi)
        owned[s.core_lo : s.core_hi] += 1
    assert (owned == 1).all()
    assert len({s.hi - s.lo for s in spans}) == 1  # one window shape per axis, so tiles batch


@pytest.mark.parametrize("size", [1, 7, 8, 33, 100, 131])
@pytest.mark.parametrize("tile", [1, 8, 20, 64])
@pytest.mark.parametrize("overlap", [0, 5, 8])
def test_grid_spans_start_on_the_grid(size: int, tile: int, overlap: int) -> None:
    spans = axis_spans(size, tile, overlap, grid=8)
    owned = np.zeros(size, int)
    for s in spans:
        assert s.lo % 8 == 0 and s.core_lo % 8 == 0  # every window cuts the model's blocks where the image does
        assert 0 <= s.lo <= s.core_lo < s.core_hi <= s.hi <= size
        assert s.core_lo - s.lo >= min(overlap, s.core_lo)
        assert s.hi - s.core_hi >= min(overlap, size - s.core_hi)
        owned[s.core_lo : s.core_hi] += 1
    assert (owned == 1).all()
    inner = {s.hi - s.lo for s in spans if s.hi < size}  # one shape, and at the far edge at most one other
    assert len(inner) <= 1 and len({s.hi - s.lo for s in spans if s.hi == size}) == 1
    assert all(s.hi - s.lo < min(inner) + 8 for s in spans) if inner else True


def _block_means(batch: np.ndarray) -> np.ndarray:
    """A stand-in for patch attention: each 8x8 block of the reflect-padded input becomes its mean, then 2x."""
    n, c, h, w = batch.shape
    ph, pw = -h % 8, -w % 8
    x = np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    blocks = x.reshape(n, c, x.shape[2] // 8, 8, x.shape[3] // 8, 8).mean(axis=(3, 5), keepdims=True)
    x = np.broadcast_to(blocks, (n, c, x.shape[2] // 8, 8, x.shape[3] // 8, 8)).reshape(x.shape)[:, :, :h, :w]
    return x.repeat(2, axis=2).repeat(2, axis=3)


@pytest.mark.parametrize("shape", [(50, 70), (64, 40), (9, 100)])
def test_tiles_on_the_models_grid_reproduce_block_models(shape: tuple[int, int]) -> None:
    pixels = photo(*shape)
    whole = upscale_array(_block_means, pixels, 2, 8, tile=0)
    tiled = upscale_array(_block_means, pixels, 2, 8, tile=20, grid=8)
    np.testing.assert_array_equal(tiled, whole)
    off_grid = upscale_array(_block_means, pixels, 2, 8, tile=20)  # windows started anywhere cut other blocks
    assert np.abs(off_grid.astype(int) - whole).max() > 1


def test_whole_image_is_one_tile() -> None:
    tiles = plan_tiles(30, 50, 0, 4)
    assert len(tiles) == 1 and tiles[0].window_shape == (30, 50)


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (13, 7), (40, 56), (31, 2)])
@pytest.mark.parametrize("tile", [1, 4, 7, 16, 512])
def test_tiled_equals_whole(tiny_model, shape: tuple[int, int], tile: int) -> None:
    model = load_model(tiny_model, "cpu")
    pixels = photo(*shape)
    whole = upscale_array(model, pixels, 2, model.info.tile_overlap, tile=0, out_dtype=np.float32)
    tiled = upscale_array(model, pixels, 2, model.info.tile_overlap, tile=tile, out_dtype=np.float32)
    assert tiled.shape == (shape[0] * 2, shape[1] * 2, 3)
    assert np.abs(tiled - whole).max() < 1e-5
    whole8 = upscale_array(model, pixels, 2, model.info.tile_overlap, tile=0)
    tiled8 = upscale_array(model, pixels, 2, model.info.tile_overlap, tile=tile, batch_size=3)
    assert np.abs(whole8.astype(int) - tiled8.astype(int)).max() <= 1


def test_too_little_overlap_shows_seams(tiny_model) -> None:
    """The check above has teeth: with no overlap the same model leaves visible seams."""
    model = load_model(tiny_model, "cpu")
    pixels = photo(40, 56)
    whole = upscale_array(model, pixels, 2, 2, tile=0, out_dtype=np.float32)
    seamed = upscale_array(model, pixels, 2, 0, tile=8, out_dtype=np.float32)
    assert np.abs(seamed - whole).max() > 1e-3


def test_equal_tiles_are_batched(tiny_model) -> None:
    model = load_model(tiny_model, "cpu")
    calls = []

    def counting(batch: np.ndarray) -> np.ndarray:
        calls.append(batch.shape[0])
        return model(batch)

    upscale_array(counting, photo(64, 64), 2, 2, tile=16, batch_size=4)
    assert sum(calls) == 16 and max(calls) == 4 and len(calls) == 4


def test_uint16_keeps_precision(tiny_model) -> None:
    model = load_model(tiny_model, "cpu")
    rng = np.random.default_rng(0)
    pixels = (photo(20, 20).astype(np.uint16) * 256 + rng.integers(0, 256, (20, 20, 3))).astype(np.uint16)
    out = upscale_array(model, pixels, 2, 2, tile=8)
    assert out.dtype == np.uint16
    # The model run in float on the exact 16-bit values: an 8-bit step anywhere (dropping or rounding the
    # low byte on the way in or out) would be off by up to 128-255 levels of 65535; float32 keeps it within 2.
    x = pixels.astype(np.float32).transpose(2, 0, 1)[None] / 65535
    want = np.rint(np.clip(model(x)[0].transpose(1, 2, 0), 0, 1) * 65535)
    assert np.abs(out.astype(np.float64) - want).max() <= 2


def test_automatic_tiles_are_balanced() -> None:
    tiles = plan_tiles(480, 640, None, 10)  # 480 = 2 x 240 and 640 = 2 x 320, not 384 + 96 and 384 + 256
    assert len(tiles) == 4 and {t.window_shape for t in tiles} == {(260, 340)}
    assert len(plan_tiles(384, 384, None, 10)) == 1
    big = plan_tiles(1100, 2000, None, 8)
    assert len(big) == 3 * 6 and max(max(t.window_shape) for t in big) <= 384 + 16


def test_batches_are_capped_by_window_pixels() -> None:
    from upscale.tiling import tile_batches

    tiles = plan_tiles(2000, 2000, 500, 4)  # 16 windows of 508x508 = 258k pixels each
    assert [len(b) for b in tile_batches(tiles, 4, max_pixels=600_000)] == [2] * 8
    assert [len(b) for b in tile_batches(tiles, 4, max_pixels=100_000)] == [1] * 16  # never less than one
    assert [len(b) for b in tile_batches(tiles, 3, max_pixels=10**9)] == [3] * 5 + [1]
    # two lanes: batches hold an even number of tiles where more than one fits, so neither lane idles
    assert [len(b) for b in tile_batches(tiles, 3, max_pixels=10**9, lanes=2)] == [2] * 8
    assert [len(b) for b in tile_batches(tiles, 4, max_pixels=100_000, lanes=2)] == [1] * 16


def test_explicit_tiles_are_equal_along_each_axis() -> None:
    """--tile N means tiles of at most N: 1072 rows at 1024 are two cores of 536, not 1024 + 48, whose window
    would cost as much as a full one (the image computed 2.2 times over instead of 1.07)."""
    tiles = plan_tiles(1072, 2000, 1024, 12)
    assert {t.window_shape for t in tiles} == {(536 + 24, 1000 + 24)} and len(tiles) == 4
    computed = sum(t.window_shape[0] * t.window_shape[1] for t in tiles)
    assert computed / (1072 * 2000) < 1.08
    assert {(t.rows.core_hi - t.rows.core_lo) for t in plan_tiles(321, 481, 256, 12)} == {160, 161}


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_in_place_quantisation_gives_from_unit_floats_bytes(dtype) -> None:
    from upscale.pixels import from_unit_float, quantise_in_place

    values = np.random.default_rng(1).normal(0.5, 0.4, (3, 40, 50)).astype(np.float32)  # some outside [0, 1]
    values[0, 0, :4] = [0.0, 1.0, 0.5 / 255, 254.5 / 255]  # the ends and rounding ties
    want = from_unit_float(values, dtype)
    out = np.empty_like(want)
    np.copyto(out, quantise_in_place(values.copy(), dtype), casting="unsafe")
    assert np.array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_batches_are_made_band_by_band_with_to_unit_floats_values(dtype, monkeypatch) -> None:
    import upscale.tiling as tiling
    from upscale.pixels import to_unit_float

    monkeypatch.setattr(tiling, "BAND_PIXELS", 7 * 38)  # many bands of 7 rows (and a short last one)
    rng = np.random.default_rng(2)
    peak = {np.uint8: 255, np.uint16: 65535}.get(dtype, 1)
    pixels = (rng.random((60, 90, 3)) * peak).astype(dtype)
    group = tiling.plan_tiles(60, 90, 32, 4)  # 2 x 3 cores of 30, windows of 38 x 38
    assert {t.window_shape for t in group} == {(38, 38)}
    batch = tiling.windows_to_batch(pixels, group)
    want = np.stack([to_unit_float(pixels[t.rows.lo : t.rows.hi, t.cols.lo : t.cols.hi]) for t in group])
    assert batch.dtype == np.float32 and np.array_equal(batch, want.transpose(0, 3, 1, 2))
    out = np.zeros((120, 180, 3), dtype)
    tiling.store_cores(out, np.repeat(np.repeat(batch, 2, axis=2), 2, axis=3), group, 2)
    for t in group:  # each core lands where it belongs, quantised as from_unit_float would
        core = out[t.rows.core_lo * 2 : t.rows.core_hi * 2, t.cols.core_lo * 2 : t.cols.core_hi * 2]
        source = pixels[t.rows.core_lo : t.rows.core_hi, t.cols.core_lo : t.cols.core_hi]
        assert np.array_equal(core[::2, ::2], source if dtype != np.float32 else to_unit_float(source))
