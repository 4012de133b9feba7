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
from upscale.auto import BLOCKINESS_FROM, COLOUR_NOISE_FROM, NOISE_ALONE_FROM, AutoModel, decide, noise_from
from upscale.cli.app import app
from upscale.decoding import read_image
from upscale.evidence import Evidence, blockiness, gather, ijg_table, jpeg_quality, noise_level

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
    assert blockiness(luma(clean)) < BLOCKINESS_FROM < blockiness(luma(decoded))
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 6, clean.shape), 0, 255).astype(np.uint8)
    assert noise_level(luma(clean)) < 1.0 < 2.0 < noise_level(luma(noisy))
    flat = np.full((64, 64), 100.0, np.float32)
    assert noise_level(flat) == 0.0 and blockiness(flat[:8, :8]) == 1.0


def test_the_rule() -> None:
    assert decide(Evidence(50, 0.2, 1.0))[0] and "JPEG quality ~50" in decide(Evidence(50, 0.2, 1.0))[1]
    assert not decide(Evidence(95, 0.2, 1.0))[0]
    assert decide(Evidence(None, 0.2, 1.45)) == (True, "8x8 blockiness 1.45")
    assert decide(Evidence(None, 3.0, 1.0)) == (True, "noise 3.0")
    assert not decide(Evidence(None, 0.5, 1.01))[0]
    assert gather(photograph(), None).jpeg_quality is None
    deep = photograph().astype(np.uint16) * 257  # 16-bit: measured in 8-bit levels all the same
    assert abs(gather(deep, None).noise - gather(photograph(), None).noise) < 0.05


def test_noise_must_show_in_colour_too() -> None:
    """Fine texture of a clean picture reads as luma noise; sensor noise shows in Cb/Cr as well, texture hardly
    does. The same luma reading is noise with colour noise and texture without; strong luma noise, and noise in a
    grey picture (no colour to ask), count alone."""
    rng = np.random.default_rng(1)
    base = photograph().astype(np.float32)
    texture = rng.normal(0, 5, base.shape[:2])[..., None]  # the same in R, G and B: luma only
    textured = np.clip(np.round(base + texture), 0, 255).astype(np.uint8)
    noisy = np.clip(np.round(base + rng.normal(0, 8, base.shape)), 0, 255).astype(np.uint8)  # luma: sigma 5.3
    as_texture, as_noise = gather(textured, None), gather(noisy, None)
    assert as_texture.noise >= noise_from(as_texture.blocks) and as_noise.noise >= noise_from(as_noise.blocks)
    assert as_texture.colour_noise < COLOUR_NOISE_FROM <= as_noise.colour_noise
    assert not decide(as_texture)[0] and decide(as_noise)[0]
    grey = gather(textured[..., :1], None)
    assert grey.colour_noise is None and decide(grey)[0]
    assert decide(Evidence(None, NOISE_ALONE_FROM, 1.0, 1024, 0.0))[0]
    assert not decide(Evidence(None, NOISE_ALONE_FROM - 0.1, 1.0, 1024, COLOUR_NOISE_FROM - 0.01))[0]
    assert decide(Evidence(None, NOISE_ALONE_FROM - 0.1, 1.0, 1024, COLOUR_NOISE_FROM))[0]


@pytest.mark.parametrize(("quality", "degraded"), [(89, True), (90, False), (91, False)])
def test_the_jpeg_quality_edge(quality: int, degraded: bool) -> None:
    assert decide(Evidence(quality, 0.0, 1.0))[0] is degraded


@pytest.mark.parametrize("blocks", [64, 144, 16_384])
def test_the_blockiness_and_noise_edges(blocks: int) -> None:
    below, at = BLOCKINESS_FROM - 0.01, BLOCKINESS_FROM
    assert not decide(Evidence(None, 0.0, below, blocks))[0] and decide(Evidence(None, 0.0, at, blocks))[0]
    edge = noise_from(blocks)
    assert not decide(Evidence(None, edge - 0.01, 1.0, blocks))[0]
    assert decide(Evidence(None, edge, 1.0, blocks)) == (True, f"noise {edge:.1f}")
    assert noise_from(64) == pytest.approx(2.75) and noise_from(16_384) == pytest.approx(2.046875)


def test_small_pictures_must_show_more_noise() -> None:
    """The same reading counts on a large picture and not on a small one (few blocks, textures read as noise)."""
    assert decide(Evidence(None, 2.3, 1.0, 16_384))[0] and not decide(Evidence(None, 2.3, 1.0, 100))[0]
    small = gather(photograph()[:96, :96], None)
    assert small.blocks == 144 and gather(photograph(), None).blocks == 1024


def test_blockiness_survives_the_crop_of_a_large_photo() -> None:
    """Over 1 MP the evidence reads a centred crop, which must keep the file's 8x8 grid (an unaligned crop reads
    no blocks at all). 1203x1203: a centred 1000-pixel crop would start at 101, the aligned one at 96."""
    big = np.asarray(Image.fromarray(skimage_data.astronaut()).resize((1203, 1203), Image.LANCZOS))
    decoded = np.asarray(Image.open(io.BytesIO(jpeg_bytes(big, 50))))
    evidence = gather(decoded, None)
    assert evidence.blocks == 125 * 125 and evidence.blockiness >= BLOCKINESS_FROM, evidence
    assert decide(evidence)[0]
    assert gather(big, None).blockiness < BLOCKINESS_FROM


@pytest.mark.parametrize(("scale", "pair"), [("3", ("repsr-x4", "photo-x4")), ("4", ("repsr-x4", "photo-x4")),
                                             ("2", ("repsr-x2", "photo-x2"))])
def test_auto_through_the_command_line_takes_the_pair_of_the_scale(tmp_path: Path, scale: str,
                                                                   pair: tuple[str, str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "q40.jpg").write_bytes(jpeg_bytes(photograph()[:40, :48], 40))
    Image.fromarray(photograph()[:40, :48]).save(folder / "clean.png")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "--scale", scale, "--report",
                                      str(report), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert (files["clean.png"]["model"], files["q40.jpg"]["model"]) == pair
    assert Image.open(tmp_path / "out" / "clean.png").size == (48 * int(scale), 40 * int(scale))


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
    from upscale.runner import run_directory

    assert run_directory(folder, tmp_path / "o3", engine="local").context["model"] == "auto"
