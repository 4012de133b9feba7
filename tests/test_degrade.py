"""Degradations: each primitive matches its definition, the specs parse and compose in order, everything is
seeded, and `upscale eval --degrade` scores on them."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from upscale.train.degradations import RealisticSettings, realistic_lr

from upscale import degrade
from upscale.bicubic import imresize
from upscale.cli.app import app
from upscale.degrade import (
    Step,
    anisotropic_gaussian_kernel,
    apply_spec,
    blur,
    convolve,
    gaussian_kernel,
    gaussian_noise,
    jpeg,
    parse_spec,
    poisson_noise,
    resize,
    sinc_kernel,
)

from .conftest import photo

ndimage = pytest.importorskip("scipy.ndimage")


def second_moments(k: np.ndarray) -> np.ndarray:
    r = k.shape[0] // 2
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return np.array([[np.sum(k * xx * xx), np.sum(k * xx * yy)], [np.sum(k * xx * yy), np.sum(k * yy * yy)]])


def test_gaussian_kernels_have_the_covariance_they_are_given() -> None:
    k = gaussian_kernel(1.5)
    assert k.shape == (11, 11) and k.sum() == pytest.approx(1, abs=1e-6)
    assert np.allclose(second_moments(k), np.diag([1.5**2] * 2), rtol=0.02, atol=0.02)
    theta = 0.6
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    aniso = anisotropic_gaussian_kernel(2.0, 0.8, theta, 21)
    assert np.allclose(second_moments(aniso), rot @ np.diag([4.0, 0.64]) @ rot.T, atol=0.05)
    flat = anisotropic_gaussian_kernel(2.0, 2.0, 0, 21, beta=4.0)  # generalised: flatter top, sharper fall
    plain = gaussian_kernel(2.0, 21)
    assert flat[10, 10] / flat[10, 11] < 1.01 < plain[10, 10] / plain[10, 11]
    assert flat[10, 10] / flat[10, 13] > 100 * plain[10, 10] / plain[10, 13]
    with pytest.raises(ValueError, match="odd"):
        anisotropic_gaussian_kernel(1, 1, 0, 10)


def test_sinc_kernel_is_a_low_pass_of_its_cutoff() -> None:
    k = sinc_kernel(math.pi / 2, 21)
    assert k.sum() == pytest.approx(1, abs=1e-5) and np.allclose(k, k[::-1, ::-1], atol=1e-7)
    response = np.abs(np.fft.fft2(k, (64, 64)))
    assert response[0, 3] > 0.9 and response[0, 26] < 0.1  # 3/64 passes; 26/64 cycles (above pi/2) is cut


def test_convolve_is_convolution_with_mirrored_borders() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (23, 31, 3)).astype(np.float32)
    kernel = anisotropic_gaussian_kernel(1.7, 0.9, 0.3, 9)
    kernel[0, 1] += 0.05  # not symmetric: convolution and correlation differ
    want = np.stack([ndimage.convolve(image[..., c].astype(np.float64), kernel.astype(np.float64), mode="mirror")
                     for c in range(3)], axis=2)
    assert np.abs(convolve(image, kernel) - want).max() < 1e-3
    flat = np.full((10, 12), 77.0, np.float32)
    assert np.allclose(blur(flat, 2.0), 77.0, atol=1e-3)
    assert convolve(image[..., 0], kernel).shape == (23, 31)


def test_resize_area_is_block_mean_and_sizes_are_exact() -> None:
    image = photo(20, 30).astype(np.float32)
    area = resize(image, 10, 15, "area")
    assert np.allclose(area, image.reshape(10, 2, 15, 2, 3).mean(axis=(1, 3)), atol=1e-3)
    for mode in degrade.RESIZE_MODES:
        assert resize(image, 13, 41, mode).shape == (13, 41, 3)


def test_noise_has_its_deviation_and_is_seeded() -> None:
    image = np.full((200, 200, 3), 100.0, np.float32)
    noisy = gaussian_noise(image, 5.0, np.random.default_rng(1))
    assert abs((noisy - image).std() - 5.0) < 0.1 and abs((noisy - image).mean()) < 0.1
    assert np.array_equal(noisy, gaussian_noise(image, 5.0, np.random.default_rng(1)))
    grey = gaussian_noise(image, 5.0, np.random.default_rng(1), grey=True)
    assert np.array_equal(grey[..., 0], grey[..., 2]) and not np.array_equal(noisy[..., 0], noisy[..., 2])
    shot = poisson_noise(image, 0.5, np.random.default_rng(2)) - image
    assert abs(shot.std() - 0.5 * math.sqrt(100)) < 0.15  # scale * sqrt(level)


def test_jpeg_is_pillows_jpeg_at_that_quality() -> None:
    image = photo(32, 40).astype(np.float32) + 0.4
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=50)
    assert np.array_equal(jpeg(image, 50), np.asarray(Image.open(buffer)).astype(np.float32))
    assert jpeg(image[..., :1], 50).shape == (32, 40, 1)


def test_specs_parse_and_refuse() -> None:
    assert parse_spec("clean") == ()
    assert parse_spec("blur:0.8+jpeg:80") == (Step("blur", 0.8), Step("jpeg", 80.0))
    for bad in ("jpeg", "jpeg:0", "jpeg:75.5", "noise:-1", "sharpen:2", "blur:x", "blur:nan", "clean+jpeg:50"):
        with pytest.raises(ValueError, match="bad degradation"):
            parse_spec(bad)


def test_specs_apply_in_order_and_are_seeded() -> None:
    lr = photo(24, 32)
    blur_then_jpeg = apply_spec(lr, parse_spec("blur:0.8+jpeg:80"), seed=1)
    expected = jpeg(blur(lr, 0.8), 80).astype(np.uint8)
    assert np.array_equal(blur_then_jpeg, expected)
    assert not np.array_equal(blur_then_jpeg, apply_spec(lr, parse_spec("jpeg:80+blur:0.8"), seed=1))
    noisy = apply_spec(lr, parse_spec("noise:5"), seed=7)
    assert noisy.dtype == np.uint8 and np.array_equal(noisy, apply_spec(lr, parse_spec("noise:5"), seed=7))
    assert not np.array_equal(noisy, apply_spec(lr, parse_spec("noise:5"), seed=8))
    rounded = np.clip(np.rint(lr + np.random.default_rng(7).standard_normal(lr.shape, dtype=np.float32) * 5), 0, 255)
    assert np.array_equal(noisy, rounded.astype(np.uint8))
    assert apply_spec(lr, (), seed=0) is lr
    grey = apply_spec(lr[..., 0], parse_spec("jpeg:50+noise:3"), seed=0)
    assert grey.shape == (24, 32)


def test_realistic_pipeline_is_seeded_aligned_and_sized() -> None:
    hr = photo(64, 96)
    for seed in range(12):
        lr = realistic_lr(hr, 2, np.random.default_rng(seed))
        assert lr.shape == (32, 48, 3) and lr.dtype == np.uint8
        assert np.array_equal(lr, realistic_lr(hr, 2, np.random.default_rng(seed)))
        # still the same picture on the same grid: close to the clean downscale, whatever was done to it
        assert np.abs(lr.astype(float) - imresize(hr, 0.5)).mean() < 40
    assert not np.array_equal(realistic_lr(hr, 2, np.random.default_rng(0)),
                              realistic_lr(hr, 2, np.random.default_rng(1)))
    clean = RealisticSettings(p_clean=1.0)
    assert np.array_equal(realistic_lr(hr, 4, np.random.default_rng(0), clean), imresize(hr, 0.25))
    # the simple branch is the evaluation's family: the clean downscale, then JPEG (here always, at 50)
    simple = RealisticSettings(p_clean=0.0, p_simple=1.0, simple_blur=(0, 0.3, 1.2), simple_noise=(0, 1, 10),
                               simple_jpeg=(1.0, 50, 50))
    assert np.array_equal(realistic_lr(hr, 2, np.random.default_rng(3), simple),
                          apply_spec(imresize(hr, 0.5), parse_spec("jpeg:50"), seed=0))


def test_eval_scores_each_degradation_in_one_table(tmp_path: Path) -> None:
    folder = tmp_path / "hr"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo(40, 48, seed=i)).save(folder / f"{i}.png")
    report = tmp_path / "scores.json"
    args = ["eval", str(folder), "--scale", "2", "--model", "bicubic", "--json", str(report)]
    result = CliRunner().invoke(app, [*args, "--degrade", "clean", "--degrade", "jpeg:30", "--degrade", "noise:8"])
    assert result.exit_code == 0, result.output
    mean = json.loads(report.read_text())["mean"]
    assert set(mean) == {"hr", "hr jpeg:30", "hr noise:8"}
    assert mean["hr"]["psnr"] > mean["hr jpeg:30"]["psnr"] and mean["hr"]["psnr"] > mean["hr noise:8"]["psnr"]
    again = CliRunner().invoke(app, [*args, "--degrade", "noise:8"])
    assert json.loads(report.read_text())["mean"]["hr noise:8"] == mean["hr noise:8"]  # the same noise each run
    assert again.exit_code == 0
    bad = CliRunner().invoke(app, [*args, "--degrade", "jpeg:500"])
    assert bad.exit_code == 2 and "bad degradation" in bad.output and "Traceback" not in bad.output


def test_eval_noise_is_scored_on_8_bit_pixels_as_a_saved_file_would_hold() -> None:
    """noise:S gives uint8 pixels, rounded and clipped; chained with a blur, the blur sees the rounded noisy
    picture, as it would after the noisy picture was saved."""
    from upscale.degrade import apply_spec, blur, parse_spec

    lr = photo(20, 24)
    rng = np.random.default_rng(7)
    noisy = np.clip(np.rint(gaussian_noise(lr.astype(np.float32), 12.0, rng)), 0, 255)
    out = apply_spec(lr, parse_spec("noise:12"), 7)
    assert out.dtype == np.uint8 and np.array_equal(out, noisy.astype(np.uint8))
    chained = apply_spec(lr, parse_spec("noise:12+blur:1"), 7)
    assert np.array_equal(chained, np.clip(np.rint(blur(noisy.astype(np.float32), 1.0)), 0, 255).astype(np.uint8))


def test_autos_blockiness_threshold_is_the_documented_one() -> None:
    """docs/models.md and the rule's docstring say 1.3: a retune must change all three together."""
    from upscale.auto import decide
    from upscale.evidence import Evidence

    assert decide(Evidence(None, noise=0.5, blockiness=1.30))[0] is True
    assert decide(Evidence(None, noise=0.5, blockiness=1.29))[0] is False
    assert "blockiness of 1.3 or more" in (Path(__file__).parents[1] / "docs" / "models.md").read_text()
