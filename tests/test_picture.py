"""The engine on decoded pictures: grey, alpha, any scale factor, metadata-less models, the Pillow API."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from upscale import UpscaleOptions, load_model, upscale_picture, upscale_pil
from upscale.errors import DeviceError, ModelError, UsageError
from upscale.images import Picture
from upscale.picture import chain_for

from .conftest import photo


@pytest.mark.parametrize(("scale", "factor", "passes"), [(2, 2, 1), (2, 1.5, 1), (2, 3, 2), (2, 4, 2),
                                                          (2, 4.01, 3), (4, 2, 1), (3, 9, 2), (2, 0.5, 1)])
def test_one_scale_runs_as_often_as_the_factor_needs(scale: int, factor: float, passes: int) -> None:
    assert chain_for([scale], factor) == (scale,) * passes


@pytest.mark.parametrize(("factor", "chain"), [(2, (2,)), (1.5, (2,)), (3, (4,)), (4, (4,)), (7.5, (4, 2)),
                                               (8, (4, 2)), (6, (4, 2)), (16, (4, 4)), (12, (4, 4)), (2.5, (4,))])
def test_the_chain_overshoots_least_then_takes_fewest_passes_larger_first(factor: float, chain: tuple) -> None:
    assert chain_for([2, 4], factor) == chain


@pytest.mark.parametrize("factor", [None, 1.5, 3.0, 4.0, 2.7])
def test_any_factor_gives_exact_size(tiny_model, factor) -> None:
    model = load_model(tiny_model, "cpu")
    pic = Picture(photo(17, 23))
    out = upscale_picture(model, pic, UpscaleOptions(factor=factor))
    f = factor or 2
    assert out.pixels.shape == (round(17 * f), round(23 * f), 3)
    assert out.pixels.dtype == np.uint8


def test_two_passes_equal_model_applied_twice(tiny_model) -> None:
    model = load_model(tiny_model, "cpu")
    pic = Picture(photo(12, 10))
    twice = upscale_picture(model, upscale_picture(model, pic), UpscaleOptions())
    four = upscale_picture(model, pic, UpscaleOptions(factor=4))
    # The 4x path keeps 16 bits between passes, the manual one 8: they agree to about one level.
    assert np.abs(twice.pixels.astype(int) - four.pixels.astype(int)).max() <= 2


def test_grey_stays_single_channel_and_alpha_is_upscaled(tiny_model) -> None:
    model = load_model(tiny_model, "cpu")
    grey = upscale_picture(model, Picture(photo(9, 11, channels=1)))
    assert grey.pixels.shape == (18, 22, 1)
    alpha = np.zeros((9, 11), np.uint8)
    alpha[:, 5:] = 255
    rgba = upscale_picture(model, Picture(photo(9, 11), alpha))
    assert rgba.alpha.shape == (18, 22)
    assert rgba.alpha[:, :8].max() < 30 and rgba.alpha[:, 12:].min() > 225


def test_upscale_pil_keeps_mode(tiny_model) -> None:
    model = load_model(tiny_model, "cpu")
    for mode in ("RGB", "RGBA", "L", "LA"):
        image = Image.fromarray(photo(10, 12, channels=4)).convert(mode)
        out = upscale_pil(model, image)
        assert out.mode == mode and out.size == (24, 20)


def test_model_without_metadata_is_probed(bare_model) -> None:
    model = load_model(bare_model, "cpu")
    assert model.scale == 3 and not model.info.has_metadata and model.info.tile_overlap == 16
    out = upscale_picture(model, Picture(photo(40, 40)), UpscaleOptions(tile=8))
    assert out.pixels.shape == (120, 120, 3)


def test_bundled_bicubic_matches_pillow_inside() -> None:
    """The bundled bicubic model is real bicubic: away from the borders it equals Pillow's bicubic."""
    model = load_model("bicubic-x2", "cpu")
    assert model.info.architecture == "bicubic" and model.scale == 2
    pixels = photo(30, 40)
    out = upscale_picture(model, Picture(pixels), UpscaleOptions(tile=8)).pixels
    ref = np.asarray(Image.fromarray(pixels).resize((80, 60), Image.Resampling.BICUBIC))
    assert np.abs(out[4:-4, 4:-4].astype(int) - ref[4:-4, 4:-4].astype(int)).max() <= 1


def test_unknown_model_and_bad_file(tmp_path) -> None:
    with pytest.raises(UsageError, match="no such model"):
        load_model("nope", "cpu")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_model(bad, "cpu")


def test_cuda_request_without_gpu_is_a_device_error(tiny_model) -> None:
    from upscale.providers import unusable_reason

    if unusable_reason("cuda") is None:
        pytest.skip("this machine may really have CUDA")
    with pytest.raises(DeviceError, match="CUDA was requested but is not usable"):
        load_model(tiny_model, "cuda")
    assert str(load_model(tiny_model, "auto").device) == "cpu"
    with pytest.raises(DeviceError, match="unknown device"):
        load_model(tiny_model, "gpu")


def test_cpu_lanes_split_batches_and_compute_the_same(tiny_model) -> None:
    """With 2+ threads a batch of tiles is shared by two half-thread sessions; the numbers do not change."""
    model = load_model(tiny_model, "cpu", threads=2)
    assert len(model.lanes) == 2
    rng = np.random.default_rng(0)
    batch = rng.random((5, 3, 13, 11), dtype=np.float32)  # 5: the lanes get unequal parts (3 + 2)
    whole = model.session.run(None, {model.input_name: batch})[0]
    assert np.abs(model(batch) - whole).max() < 1e-6
    single = rng.random((1, 3, 13, 11), dtype=np.float32)  # one tile: all threads, in one session
    assert np.abs(model(single) - model.session.run(None, {model.input_name: single})[0]).max() == 0
    assert load_model(tiny_model, "cpu", threads=1).lanes == []


def test_a_factor_beyond_the_model_runs_its_family_chain_and_lands_exactly() -> None:
    """7.5x with the default model: its x4 sibling, then itself (8x), then one Lanczos resize to 7.5x: the same
    pixels as running those passes by hand."""
    from upscale.picture import resize_lanczos
    from upscale.pixels import uint16_to_uint8
    from upscale.tiling import upscale_arrays

    model = load_model("repsr-x2", "cpu")
    assert model.scales == [2, 4]
    picture = Picture(photo(12, 16))
    out = upscale_picture(model, picture, UpscaleOptions(factor=7.5, tile=0))
    assert out.pixels.shape == (90, 120, 3)
    x4 = model.at_scale(4)
    assert x4.path.stem == "repsr-x4" and model.at_scale(4) is x4  # loaded once
    by_hand = [picture.pixels]
    for runner in (x4, model):
        by_hand = upscale_arrays(runner, by_hand, runner.scale, runner.info.tile_overlap, 0, None, [np.uint16], None,
                                 runner.info.fixed_window, runner.info.multiple_of)
    assert np.array_equal(out.pixels, uint16_to_uint8(resize_lanczos(by_hand[0], 120, 90)))
