"""16-bit files with alpha or grey (PNG LA/RGBA, TIFF grey/LA/RGBA) come back 16-bit, with every plane."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.decoding import read_image
from upscale.deep_color import encode_png16

from .conftest import photo


def deep(h: int, w: int, c: int, seed: int) -> np.ndarray:
    """uint16 planes whose low byte is noise, not a copy of the high byte (as x257 would make it)."""
    rng = np.random.default_rng(seed)
    high = np.dstack([photo(h, w, 3, seed=seed), photo(h, w, 3, seed=seed + 1)])[..., :c]
    return (high.astype(np.uint16) * 256 + rng.integers(0, 256, high.shape)).astype(np.uint16)


def upscale_plane(plane: np.ndarray, size: tuple[int, int], method: Image.Resampling) -> np.ndarray:
    return np.asarray(Image.fromarray(plane.astype(np.float32), "F").resize(size, method))


FILES = {  # name -> planes (colour or grey first, alpha last when there is one)
    "la16.png": 2, "rgba16.png": 4, "grey16.tif": 1, "la16.tif": 2, "rgba16.tif": 4,
}


@pytest.fixture(scope="module")
def deep_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("deep")
    truth = {}
    for i, (name, planes) in enumerate(FILES.items()):
        data = deep(36, 44, planes, seed=10 * i)
        if name.endswith(".png"):
            (folder / name).write_bytes(encode_png16(data))
        else:
            tifffile.imwrite(folder / name, data[..., 0] if planes == 1 else data,
                             photometric="rgb" if planes >= 3 else "minisblack",
                             extrasamples=["unassalpha"] if planes in (2, 4) else None)
        truth[name] = data
    return folder, truth


def test_the_decoder_reads_the_true_samples(deep_folder: tuple[Path, dict[str, np.ndarray]]) -> None:
    folder, truth = deep_folder
    for name, data in truth.items():
        pic = read_image(folder / name)
        planes = pic.pixels if pic.alpha is None else np.dstack([pic.pixels, pic.alpha])
        assert planes.dtype == np.uint16 and np.array_equal(planes, data), name


def test_16_bit_alpha_and_grey_are_written_back_16_bit(deep_folder: tuple[Path, dict[str, np.ndarray]],
                                                       tmp_path: Path) -> None:
    folder, truth = deep_folder
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path), "-m", "bicubic-x2", "--tile", "16"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output  # nothing was lost, so nothing to warn about
    inner = (slice(6, -6), slice(6, -6))  # away from borders, where the two bicubics pad differently
    for name, data in truth.items():
        h, w, c = data.shape
        if name.endswith(".tif"):
            written = tifffile.imread(tmp_path / name)  # an independent decoder
            written = written[..., None] if written.ndim == 2 else written
        else:
            pic = read_image(tmp_path / name)  # checked against the true samples above
            written = pic.pixels if pic.alpha is None else np.dstack([pic.pixels, pic.alpha])
        assert written.dtype == np.uint16 and written.shape == (2 * h, 2 * w, c), name
        colour = c - 1 if c in (2, 4) else c
        for k in range(c):
            method = Image.Resampling.BICUBIC if k < colour else Image.Resampling.LANCZOS
            want = np.clip(upscale_plane(data[..., k], (2 * w, 2 * h), method), 0, 65535)
            error = np.abs(written[..., k].astype(np.float64) - want)[inner].mean()
            # 16-bit arithmetic stays within a few levels of 65535; an 8-bit step anywhere costs ~64-128
            assert error < 8, (name, k, error)


def test_tiff_outputs_describe_their_own_size(tmp_path: Path) -> None:
    """A TIFF's tags describe its pixels: the output's must be its own (2x), not the source's, while descriptive
    tags (the camera's make) travel. Pillow reads a TIFF's first IFD as its EXIF, layout tags included."""
    folder = tmp_path / "in"
    folder.mkdir()
    image = Image.fromarray(photo(36, 44))
    tags = image.getexif()
    tags[271] = "TestCamera"
    image.save(folder / "rgb.tif", exif=tags.tobytes())
    Image.fromarray(photo(36, 44)[..., 0]).save(folder / "grey.tif")
    tifffile.imwrite(folder / "grey16.tif", deep(36, 44, 1, seed=3)[..., 0], photometric="minisblack")
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    for name in ("rgb.tif", "grey.tif", "grey16.tif"):
        path = tmp_path / "out" / name
        with Image.open(path) as im:
            assert im.size == (88, 72), name
            im.load()
        assert tifffile.imread(path).shape[:2] == (72, 88), name
    with Image.open(tmp_path / "out" / "rgb.tif") as im:
        assert im.getexif().get(271) == "TestCamera"


def _png_with_trns(width: int, height: int, depth: int, colour_type: int, rows: list[bytes], trns: bytes) -> bytes:
    import struct
    import zlib

    from upscale.png import SIGNATURE, _chunk

    data = zlib.compress(b"".join(b"\x00" + r for r in rows))
    return (SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))
            + _chunk(b"tRNS", trns) + _chunk(b"IDAT", data) + _chunk(b"IEND", b""))


@pytest.mark.parametrize(("depth", "colour_type"), [(16, 0), (8, 0), (8, 2), (16, 2)])
def test_a_transparent_colour_stays_transparent(tmp_path: Path, depth: int, colour_type: int) -> None:
    """PNG's tRNS colour (grey or RGB, 8 or 16 bit) comes out as alpha: transparent where the colour was."""
    import struct

    planes = 1 if colour_type == 0 else 3
    dtype = ">u2" if depth == 16 else np.uint8
    rng = np.random.default_rng(depth + colour_type)
    data = rng.integers(10, 200, (24, 24, planes)).astype(dtype)
    key = [7] * planes
    data[:12, :12] = key  # a transparent quarter
    trns = struct.pack(">" + "H" * planes, *key)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "t.png").write_bytes(_png_with_trns(24, 24, depth, colour_type, [r.tobytes() for r in data], trns))
    picture = read_image(folder / "t.png")
    peak = 65535 if depth == 16 else 255
    assert picture.alpha is not None and picture.alpha.dtype == (np.uint16 if depth == 16 else np.uint8)
    assert (picture.alpha[:12, :12] == 0).all() and (picture.alpha[12:, 12:] == peak).all()
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    out = read_image(tmp_path / "out" / "t.png")
    assert out.alpha is not None and out.alpha[4, 4] == 0 and out.alpha[-4, -4] == peak
    assert out.pixels.dtype == picture.pixels.dtype
