"""`--model auto`: the evidence (JPEG quality, blockiness, noise) and the per-file choice."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import load_model
from upscale.auto import AutoModel, decide
from upscale.cli.app import app
from upscale.evidence import Evidence, blockiness, gather, ijg_table, jpeg_quality, noise_level
from upscale.images import read_image

skimage_data = pytest.importorskip("skimage.data")


def photograph() -> np.ndarray:
    return skimage_data.astronaut()[::2, ::2]  # 256x256, a real photograph


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [20, 50, 75, 89, 90, 95])
def test_jpeg_quality_is_read_from_the_tables(quality: int, tmp_path: Path) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(photograph(), quality))
    assert read_image(path).jpeg_quality == quality
    assert jpeg_quality({0: list(ijg_table(quality))}) == quality
    assert jpeg_quality(None) is None and jpeg_quality({}) is None


def test_pixels_show_blocks_and_noise() -> None:
    clean = photograph()
    decoded = np.asarray(Image.open(io.BytesIO(jpeg_bytes(clean, 40))))
    luma = lambda a: a.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)  # noqa: E731
    assert blockiness(luma(clean)) < 1.05 < blockiness(luma(decoded))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
    assert noise_level(luma(clean)) < 1.0 < 2.0 < noise_level(luma(noisy))
    flat = np.full((64, 64), 100.0, np.float32)
    assert noise_level(flat) == 0.0 and blockiness(flat[:8, :8]) == 1.0


def test_the_rule() -> None:
    assert decide(Evidence(50, 0.2, 1.0))[0] and "JPEG quality ~50" in decide(Evidence(50, 0.2, 1.0))[1]
    assert not decide(Evidence(95, 0.2, 1.0))[0]
    assert decide(Evidence(None, 0.2, 1.2)) == (True, "8x8 blockiness 1.20")
    assert decide(Evidence(None, 3.0, 1.0)) == (True, "noise 3.0")
    assert not decide(Evidence(None, 0.5, 1.01))[0]
    assert gather(photograph(), None).jpeg_quality is None
    deep = photograph().astype(np.uint16) * 257  # 16-bit: measured in 8-bit levels all the same
    assert abs(gather(deep, None).noise - gather(photograph(), None).noise) < 0.05


def test_auto_model_chooses_per_picture(tiny_model: Path, bare_model: Path, tmp_path: Path) -> None:
    clean, photo = load_model(tiny_model, "cpu"), load_model(tiny_model, "cpu")
    pair = AutoModel(clean, photo)
    (tmp_path / "q40.jpg").write_bytes(jpeg_bytes(photograph(), 40))
    Image.fromarray(photograph()).save(tmp_path / "clean.png")
    assert pair.choose(read_image(tmp_path / "q40.jpg"))[0] is photo
    assert pair.choose(read_image(tmp_path / "clean.png"))[0] is clean
    alone = AutoModel(clean, None)
    model, why = alone.choose(read_image(tmp_path / "q40.jpg"))
    assert model is clean and "no photo model" in why


def test_dir_with_auto_reports_each_choice(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "q50.jpg").write_bytes(jpeg_bytes(photograph()[:96, :96], 50))
    Image.fromarray(photograph()[:96, :96]).save(folder / "clean.png")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "--report", str(report)])  # default
    assert result.exit_code == 0, result.output
    assert "model auto:" in result.output and "JPEG quality ~50" in result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["clean.png"]["model"] == "repsr-x2" and files["clean.png"]["model_reason"].startswith("clean")
    assert files["q50.jpg"]["model"] == "photo-x2" and files["q50.jpg"]["model_reason"].startswith("JPEG quality ~50")
    assert json.loads(report.read_text())["context"]["model"] == "auto"
    ray = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "o2"), "-m", "auto", "--engine", "ray"])
    assert ray.exit_code == 2 and "--engine local only" in ray.output
    from upscale.runner import run_directory  # without -m, Ray runs the default model (its actors hold one)

    assert run_directory(folder, tmp_path / "o3", engine="local").context["model"] == "auto"
