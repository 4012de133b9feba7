"""README promises that had no test: each test here failed when what it guards was broken on purpose."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.evidence import jpeg_quality
from upscale.images import Picture
from upscale.job import OutputOptions
from upscale.model import UpscaleModel, load_model
from upscale.picture import UpscaleOptions, upscale_picture
from upscale.planning import plan_directory
from upscale.tiling import MAX_BATCH_PIXELS, auto_tile, max_batch_pixels

from .conftest import build_conv_model, photo


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, payload) of every chunk, read by hand (no Pillow): an independent reader."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        payload = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        chunks.append((kind, payload))
        pos += 12 + length
    return chunks


def run(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_the_4x_automatic_tile_and_batch_caps_hold_in_the_engine(tmp_path: Path, monkeypatch) -> None:
    assert auto_tile(4) == 272 and max_batch_pixels(4) == MAX_BATCH_PIXELS // 2 and auto_tile(2) == 384
    path = tmp_path / "x4.onnx"
    onnx.save(build_conv_model(4), path)
    model = load_model(path, "cpu")
    shapes: list[tuple[int, ...]] = []
    real = UpscaleModel.__call__

    def recording(self, batch):
        shapes.append(batch.shape)
        return real(self, batch)

    monkeypatch.setattr(UpscaleModel, "__call__", recording)
    image = photo(700, 620)
    upscale_picture(model, Picture(image), UpscaleOptions(tile=None, batch_size=16))
    overlap = model.info.tile_overlap
    assert all(h <= 272 + 2 * overlap and w <= 272 + 2 * overlap for _, _, h, w in shapes), shapes
    assert max(n * h * w for n, _, h, w in shapes) <= max_batch_pixels(4)
    assert max(n for n, *_ in shapes) >= 2  # the cap, not a batch of one, is what held it


def test_hidden_files_and_folders_are_not_inputs(tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / ".cache").mkdir(parents=True)
    (src / "sub").mkdir()
    for name in ("a.png", ".hidden.png", ".cache/b.png", "sub/.c.png", "sub/d.png"):
        Image.fromarray(photo(8, 8)).save(src / name)
    jobs, known = plan_directory(src, tmp_path / "out", OutputOptions(recursive=True))
    assert sorted(str(Path(j.input).relative_to(src)) for j in jobs) == ["a.png", "sub/d.png"]
    assert known == []


def test_the_remote_lister_never_reads_out_inside_in(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from upscale.planning import plan_remote

    src = tmp_path / "in"
    (src / "upscaled").mkdir(parents=True)
    Image.fromarray(photo(8, 8)).save(src / "a.png")
    Image.fromarray(photo(16, 16)).save(src / "upscaled" / "old.png")  # an earlier run's output
    jobs, known = plan_remote(src.as_uri(), (src / "upscaled").as_uri(), OutputOptions(recursive=True))
    assert [Path(j.input).name for j in jobs] == ["a.png"] and known == []


def test_png_exif_chunk_holds_tiff_data_without_the_jpeg_prefix(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "in").mkdir()
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    exif[0x0112] = 6
    Image.fromarray(photo(12, 16)).save(tmp_path / "in" / "a.jpg", exif=exif.tobytes())
    assert run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "-f", "png").exit_code == 0
    chunks = dict(png_chunks((tmp_path / "out" / "a.png").read_bytes()))
    payload = chunks[b"eXIf"]
    assert payload[:4] in (b"MM\x00*", b"II*\x00"), payload[:8]  # TIFF header first, as the PNG spec says
    assert b"Camera Maker" in payload


@pytest.mark.parametrize(("level", "flevel"), [(0, 0), (1, 1), (6, 2), (9, 3)])
def test_png_compression_reaches_the_encoder(tmp_path: Path, tiny_model: Path, level: int, flevel: int) -> None:
    (tmp_path / "in").mkdir(exist_ok=True)
    Image.fromarray(photo(30, 40)).save(tmp_path / "in" / "a.png")
    out = tmp_path / f"out{level}"
    assert run("dir", tmp_path / "in", out, "-m", tiny_model, "--png-compression", level).exit_code == 0
    idat = b"".join(p for k, p in png_chunks((out / "a.png").read_bytes()) if k == b"IDAT")
    assert idat[1] >> 6 == flevel  # the zlib header's FLEVEL: which level family compressed it (1: ISA-L's, not
    # zlib's level 1, whose header says 0)


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_quality_reaches_the_jpeg_and_webp_encoders(tmp_path: Path, tiny_model: Path, quality: int) -> None:
    (tmp_path / "in").mkdir(exist_ok=True)
    Image.fromarray(photo(40, 48)).save(tmp_path / "in" / "a.png")
    out = tmp_path / f"q{quality}"
    for fmt in ("jpg", "webp"):
        assert run("dir", tmp_path / "in", out, "-m", tiny_model, "-f", fmt, "--quality", quality).exit_code == 0
    with Image.open(out / "a.jpg") as im:
        assert jpeg_quality(im.quantization) == quality
    sizes = {}
    for q in (10, 95):
        buffer = io.BytesIO()
        Image.open(out / "a.webp").save(buffer, "WEBP", quality=q)
        sizes[q] = len(buffer.getvalue())
    ours = (out / "a.webp").stat().st_size
    assert sizes[10] < sizes[95] and (ours < sizes[95] if quality <= 75 else ours > sizes[10])
    assert np.asarray(Image.open(out / "a.webp")).shape == (80, 96, 3)
