"""Metrics and `upscale eval`: the standard SR protocol, checked against scikit-image."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.bicubic import imresize, resize_matrix
from upscale.cli.app import app
from upscale.metrics import psnr, rgb_to_y, ssim, y_psnr_ssim

from .conftest import photo

metrics_ref = pytest.importorskip("skimage.metrics")


@pytest.mark.parametrize("seed", range(3))
def test_ssim_agrees_with_scikit_image(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = photo(48, 64, channels=1, seed=seed)[..., 0].astype(np.float64)
    b = np.clip(a + rng.normal(0, 5 + 10 * seed, a.shape), 0, 255)
    ours = ssim(a, b)
    ref = metrics_ref.structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5,
                                            use_sample_covariance=False)
    assert abs(ours - ref) < 0.001


def test_psnr_agrees_with_scikit_image() -> None:
    a = photo(32, 32).astype(np.float64)
    b = np.clip(a + 3, 0, 255)
    assert psnr(a, b) == pytest.approx(metrics_ref.peak_signal_noise_ratio(a, b, data_range=255))


def test_luma_is_bt601_rounded_for_8_bit() -> None:
    white, black = np.full((1, 1, 3), 255, np.uint8), np.zeros((1, 1, 3), np.uint8)
    assert rgb_to_y(white)[0, 0] == 235 and rgb_to_y(black)[0, 0] == 16
    assert rgb_to_y(np.full((1, 1, 3), 100, np.uint8))[0, 0] == np.round(16 + 100 * 219 / 255)


def test_imresize_properties() -> None:
    assert np.allclose(resize_matrix(10, 5, 0.5).sum(axis=1), 1)
    flat = np.full((12, 16, 3), 77, np.uint8)
    assert (imresize(flat, 0.5) == 77).all() and imresize(flat, 0.5).shape == (6, 8, 3)
    stripes = np.tile(np.array([0, 255], np.uint8), (32, 16))  # 1-pixel stripes: pure aliasing bait
    down = imresize(stripes, 0.5)
    assert 100 < down[2:-2, 2:-2].mean() < 155 and down[2:-2, 2:-2].std() < 20  # antialiased to grey


def test_shave_and_grey(tmp_path: Path) -> None:
    hr = photo(24, 24)
    sr = hr.copy()
    sr[:2] = 0  # damage only the border that the protocol shaves
    assert y_psnr_ssim(sr, hr, 2)[0] == float("inf")
    grey = hr[..., 0]
    assert y_psnr_ssim(grey, grey, 2)[1] == pytest.approx(1.0)


def test_eval_command_bicubic_and_model(tmp_path: Path) -> None:
    folder = tmp_path / "SetX"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(photo(48, 50, seed=i)).save(folder / f"{i}.png")
    Image.fromarray(photo(48, 48, channels=1)[..., 0]).save(folder / "grey.png")
    runner = CliRunner()
    out = tmp_path / "b.json"
    bic = runner.invoke(app, ["eval", str(folder), "--scale", "2", "--model", "bicubic", "--json", str(out)])
    assert bic.exit_code == 0, bic.output
    doc = json.loads(out.read_text())
    assert doc["mean"]["SetX"]["images"] == 3 and len(doc["images"]) == 3
    model_json = tmp_path / "m.json"
    res = runner.invoke(app, ["eval", str(folder), "-s", "2", "--model", "bicubic-x2", "--json", str(model_json),
                              "--tile", "16", "--per-image"])
    assert res.exit_code == 0, res.output
    # the bundled bicubic model: after the shave, the same numbers as MATLAB-style imresize
    assert json.loads(model_json.read_text())["mean"]["SetX"]["psnr"] == pytest.approx(
        doc["mean"]["SetX"]["psnr"], abs=0.05)
    assert "warning" not in res.output
    mismatched = runner.invoke(app, ["eval", str(folder), "-s", "4", "--model", "bicubic-x2"])
    assert mismatched.exit_code == 0 and "bicubic-x2.onnx is a 2x model" in mismatched.output
    missing = runner.invoke(app, ["eval", str(tmp_path / "nope"), "-s", "2"])
    assert missing.exit_code == 2 and "not a folder" in missing.output


def _eval_json(tmp_path: Path, folder: Path, *args: str) -> dict:
    out = tmp_path / f"scores-{len(list(tmp_path.glob('scores-*')))}.json"
    result = CliRunner().invoke(app, ["eval", str(folder), "--scale", "2", "--device", "cpu", "--json", str(out),
                                      *args])
    assert result.exit_code == 0, result.output
    return {s["image"]: s["psnr"] for s in json.loads(out.read_text())["images"]}


def test_eval_auto_scores_the_model_dir_would_choose(tmp_path: Path) -> None:
    """`--model auto` runs, per image, the clean model on a clean input and the photo model on a noisy one."""
    data = pytest.importorskip("skimage.data")
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(data.chelsea()).save(folder / "chelsea.png")  # its LR reads clean: blockiness 0.96
    clean = _eval_json(tmp_path, folder, "--model", "auto")
    assert clean == _eval_json(tmp_path, folder, "--model", "repsr-x2")
    assert clean != _eval_json(tmp_path, folder, "--model", "photo-x2")
    noisy = _eval_json(tmp_path, folder, "--model", "auto", "--degrade", "noise:12")
    assert noisy == _eval_json(tmp_path, folder, "--model", "photo-x2", "--degrade", "noise:12")
    assert noisy != _eval_json(tmp_path, folder, "--model", "repsr-x2", "--degrade", "noise:12")


def test_eval_takes_a_pytorch_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A .pth goes through the same conversion as `upscale dir --model FILE.pth`."""
    torch = pytest.importorskip("torch")
    from upscale.train.arch import create_model
    from upscale.train.checkpoint import checkpoint_state, save_checkpoint
    from upscale.train.config import TrainConfig

    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(tmp_path / "cache"))
    model = create_model("srcnn", 2)
    checkpoint = tmp_path / "mine.pth"
    save_checkpoint(checkpoint, checkpoint_state(model, None, torch.optim.Adam(model.parameters()), 1, 0.0,
                                                 TrainConfig(arch="srcnn")))
    folder = tmp_path / "hr"
    folder.mkdir()
    Image.fromarray(photo(48, 40)).save(folder / "a.png")
    scores = _eval_json(tmp_path, folder, "--model", str(checkpoint))
    assert list(scores) == ["a.png"] and np.isfinite(scores["a.png"])
    assert list((tmp_path / "cache" / "models").glob("mine-*.onnx"))
