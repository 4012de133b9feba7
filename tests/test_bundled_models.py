"""The models that ship inside the package: each loads, describes itself, and upscales by its scale.

Their quality is measured by `upscale eval` on Set5/Set14 (docs/MODEL_CARD.md), which the test suite
cannot hold; here we check what would break a user's first run: contract, size, and that the float16
variant computes the same picture as its float32 twin.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from upscale import load_model
from upscale.registry import DEFAULT_MODEL, MODELS_DIR, bundled_models

from .conftest import photo

LEARNED = [name for name in bundled_models() if name.startswith(("repsr", "fast"))]


def test_the_default_is_a_learned_2x_model_and_every_scale_ships() -> None:
    assert DEFAULT_MODEL in bundled_models()
    assert load_model("default", "cpu").info.scale == 2
    assert {load_model(name, "cpu").info.scale for name in LEARNED} == {2, 4}


def test_the_catalogue_and_the_shipped_files_agree() -> None:
    """One row per shipped file, at the scale its metadata says; auto's pairs are of one scale, clean then photo."""
    from upscale.catalogue import CATALOGUE, auto_pair, auto_scales, roles

    assert sorted(e.name for e in CATALOGUE) == sorted(bundled_models())
    for e in CATALOGUE:
        assert load_model(e.name, "cpu").info.scale == e.scale, e.name
    for scale in auto_scales():
        clean, photo = auto_pair(scale)
        assert roles(clean)[-1] == f"auto: clean x{scale}" and roles(photo) == [f"auto: degraded x{scale}"]
        assert "photo model" in load_model(photo, "cpu").info.description
    assert roles(DEFAULT_MODEL)[0] == "default" and roles("fast-x2") == []


@pytest.mark.parametrize("name", LEARNED)
def test_bundled_model_is_small_self_describing_and_upscales(name: str) -> None:
    path = MODELS_DIR / f"{name}.onnx"
    assert path.stat().st_size < 4 * 1024 * 1024  # "a few MB at most"
    model = load_model(name, "cpu")
    info = model.info
    assert info.has_metadata and info.architecture.startswith("repsr") and f"x{info.scale}" in name
    assert info.training_data and "Set5" in info.validation and "MACs" in info.description
    assert [n.op_type for n in onnx.load(path).graph.node].count("DepthToSpace") <= 1  # one shuffle at most
    x = photo(17, 23).astype(np.float32).transpose(2, 0, 1)[None] / 255
    y = model(x)
    assert y.shape == (1, 3, 17 * info.scale, 23 * info.scale)
    # On a smooth picture a working model stays near the input (broken or random weights do not).
    nearest = x.repeat(info.scale, axis=2).repeat(info.scale, axis=3)
    assert float(np.abs(y - nearest).mean()) < 0.03


def test_the_fast_model_costs_a_third_and_runs_fused_convolutions() -> None:
    """fast-x2: at most 8,000 multiply-adds per output pixel, and only ops that onnxruntime's CPU
    convolution fuses (ReLU, no PRelu or its exported mix), which is where its speed comes from."""
    import onnx

    graph = onnx.load(MODELS_DIR / "fast-x2.onnx").graph
    model = load_model("fast-x2", "cpu")
    assert "7,527 MACs" in model.info.description and model.info.scale == 2
    ops = {node.op_type for node in graph.node}
    assert "Relu" in ops and not ops & {"PRelu", "Mul"}


@pytest.mark.parametrize("name", [n for n in LEARNED if n.endswith("-fp16")])
def test_float16_variant_matches_its_float32_twin(name: str) -> None:
    x = photo(20, 20).astype(np.float32).transpose(2, 0, 1)[None] / 255
    half, full = load_model(name, "cpu"), load_model(name.removesuffix("-fp16"), "cpu")
    assert half.info.scale == full.info.scale
    assert np.abs(half(x).astype(np.float32) - full(x)).max() < 2e-2


@pytest.mark.parametrize("name", LEARNED)
def test_bundled_model_beats_bicubic_on_a_photograph(name: str) -> None:
    """The quality floor a user's first run relies on: against the ground truth of a real photograph (scikit-image's
    public-domain astronaut, shrunk by the evaluation's bicubic), Y-PSNR well over bicubic interpolation. Measured:
    +3.3 dB (x2 models), +2.0 dB (x4); bicubic, random weights or a broken export score about 0 or below."""
    skimage_data = pytest.importorskip("skimage.data")
    from upscale.bicubic import imresize
    from upscale.evaluate import model_upscaler
    from upscale.metrics import y_psnr_ssim

    model = load_model(name, "cpu")
    scale = model.info.scale
    hr = skimage_data.astronaut()[:256, :256]
    lr = imresize(hr, 1 / scale)
    gain = y_psnr_ssim(model_upscaler(model, scale)(lr), hr, scale)[0] - y_psnr_ssim(imresize(lr, scale), hr, scale)[0]
    assert gain >= (2.5 if scale == 2 else 1.5), gain


def test_the_photo_model_ships_and_beats_the_clean_model_on_a_jpeg() -> None:
    """photo-x2 is for degraded pictures: on a JPEG (quality 50) of a held-out photograph it must beat the clean
    default (measured: +0.32 dB on astronaut, +0.50 on coffee; the default is below bicubic there)."""
    skimage_data = pytest.importorskip("skimage.data")
    from upscale.auto import load_auto
    from upscale.bicubic import imresize
    from upscale.degrade import apply_spec, parse_spec
    from upscale.evaluate import model_upscaler
    from upscale.metrics import y_psnr_ssim

    for factor, name in ((2, "photo-x2"), (4, "photo-x4")):  # auto has a photo model for both scales
        assert load_auto(factor, "cpu").photo.path.stem == name
    assert load_model("photo-x4", "cpu").info.scale == 4 and "jpeg:50" in load_model("photo-x4", "cpu").info.validation
    photo_model = load_model("photo-x2", "cpu")
    info = photo_model.info
    assert info.scale == 2 and info.architecture == "repsr" and "realistic" in info.training_data
    assert "photo model" in info.description and "jpeg:50" in info.validation
    hr = skimage_data.astronaut()[:256, :256]
    lr = apply_spec(imresize(hr, 0.5), parse_spec("jpeg:50"), seed=1)
    photo = y_psnr_ssim(model_upscaler(photo_model, 2)(lr), hr, 2)[0]
    clean = y_psnr_ssim(model_upscaler(load_model("default", "cpu"), 2)(lr), hr, 2)[0]
    assert photo >= clean + 0.15 and photo > y_psnr_ssim(imresize(lr, 2), hr, 2)[0]
