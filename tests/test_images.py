"""Image files in and out: bit depth, alpha, grey, palette, CMYK, orientation, ICC, bad files."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, ImageOps

from upscale.decoding import read_image
from upscale.deep_color import encode_png16
from upscale.encoding import encode
from upscale.errors import ImageError
from upscale.files import write_atomic
from upscale.images import apply_orientation

from .conftest import photo
from .icc_profiles import cmyk_profile, swapped_cyan_magenta


def deep_photo(h: int = 21, w: int = 34, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 65536, (h, w, c), dtype=np.uint16)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_png16_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    data = deep_photo(c=channels)
    path = tmp_path / "deep.png"
    path.write_bytes(encode_png16(data))
    pic = read_image(path)
    assert pic.pixels.dtype == np.uint16
    colour = data[..., : 1 if channels <= 2 else 3]
    assert np.array_equal(pic.pixels, colour)
    if channels in (2, 4):
        assert np.array_equal(pic.alpha, data[..., -1])
    else:
        assert pic.alpha is None


def test_png16_encoding_follows_the_spec(tmp_path: Path) -> None:
    """Decode our PNG by hand (inflate, undo the Up filter) and with Pillow (which keeps the high byte)."""
    import zlib

    data = deep_photo()
    encoded = encode_png16(data)
    chunks, at = [], 8
    while at < len(encoded):  # length, type, data, crc; the image is the concatenated IDAT data (any split)
        length = int.from_bytes(encoded[at : at + 4], "big")
        kind, body = encoded[at + 4 : at + 8], encoded[at + 8 : at + 8 + length]
        assert zlib.crc32(kind + body) == int.from_bytes(encoded[at + 8 + length : at + 12 + length], "big")
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    idat = b"".join(body for kind, body in chunks if kind == b"IDAT")
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(data.shape[0], -1)
    assert (rows[:, 0] == 2).all()
    raw = np.cumsum(rows[:, 1:].astype(np.int64), axis=0) % 256
    decoded = (raw[:, 0::2] * 256 + raw[:, 1::2]).reshape(data.shape)
    assert np.array_equal(decoded, data)
    path = tmp_path / "deep.png"
    path.write_bytes(encoded)
    assert np.array_equal(np.asarray(Image.open(path)), (data >> 8).astype(np.uint8))


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff16_colour_keeps_low_byte(tmp_path: Path, compression) -> None:
    data = deep_photo()
    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, data, photometric="rgb", compression=compression)
    pic = read_image(path)
    assert np.array_equal(pic.pixels, data)
    encoded, _ = encode(pic, "TIFF")
    assert np.array_equal(tifffile.imread(io.BytesIO(encoded)), data)


def test_gray16_png(tmp_path: Path) -> None:
    data = deep_photo(c=1)[..., 0]
    path = tmp_path / "g.png"
    Image.fromarray(data).save(path)
    pic = read_image(path)
    assert pic.pixels.shape == (*data.shape, 1) and pic.pixels.dtype == np.uint16
    assert np.array_equal(pic.pixels[..., 0], data)
    out = Image.open(io.BytesIO(encode(pic, "PNG")[0]))
    assert np.array_equal(np.asarray(out), data)


def test_modes_are_normalised(tmp_path: Path) -> None:
    rgb = photo()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png", transparency=0)
    Image.fromarray(rgb).convert("P").save(tmp_path / "p_opaque.png")
    Image.fromarray(rgb).convert("1").save(tmp_path / "bw.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(np.dstack([rgb[..., :1], rgb[..., 1:2]]), "LA").save(tmp_path / "la.png")
    p = read_image(tmp_path / "p.png")
    assert p.pixels.shape[2] == 3 and p.alpha is not None and (p.alpha == 0).any()
    assert read_image(tmp_path / "p_opaque.png").alpha is None
    bw = read_image(tmp_path / "bw.png")
    assert bw.pixels.shape[2] == 1 and set(np.unique(bw.pixels)) <= {0, 255}
    cmyk = read_image(tmp_path / "cmyk.jpg")
    assert cmyk.pixels.shape[2] == 3
    assert np.abs(cmyk.pixels.astype(int) - rgb.astype(int)).mean() < 12
    la = read_image(tmp_path / "la.png")
    assert la.pixels.shape[2] == 1 and np.array_equal(la.alpha, rgb[..., 1])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    rgb = photo(20, 31)
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCamera"  # another tag, so the EXIF block must survive with only the orientation reset
    path = tmp_path / "o.jpg"
    image.save(path, exif=exif.tobytes(), quality=100)
    pic = read_image(path)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    assert np.array_equal(pic.pixels, expected)
    with Image.open(io.BytesIO(encode(pic, "JPEG")[0])) as written:
        written_exif = written.getexif()
    assert written_exif.get(0x010F) == "TestCamera"  # EXIF carried
    assert written_exif.get(0x0112) == 1  # upright pixels, so orientation 1: a viewer must not turn them again


def test_apply_orientation_six_is_clockwise() -> None:
    a = np.array([[1, 2], [3, 4]])
    assert apply_orientation(a, 6).tolist() == [[3, 1], [4, 2]]


def test_icc_and_exif_carried(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    image = Image.fromarray(photo())
    exif = image.getexif()
    exif[0x010F] = "TestCamera"
    for fmt, name in [("PNG", "a.png"), ("JPEG", "a.jpg"), ("WEBP", "a.webp"), ("TIFF", "a.tif")]:
        image.save(tmp_path / name, fmt, icc_profile=icc, exif=exif.tobytes())
        pic = read_image(tmp_path / name)
        assert pic.icc_profile == icc, fmt
        out = Image.open(io.BytesIO(encode(pic, fmt)[0]))
        assert out.info.get("icc_profile") == icc, fmt
        assert out.getexif().get(0x010F) == "TestCamera", fmt


def test_png16_keeps_icc(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "d.png"
    path.write_bytes(encode_png16(deep_photo(), icc_profile=icc))
    assert read_image(path).icc_profile == icc


@pytest.mark.parametrize(
    ("content", "cause"),
    [(b"", "empty"), (b"hello, I am text", "not an image"), (None, "truncated"), (None, "not found")],
)
def test_bad_files_raise_image_error(tmp_path: Path, content, cause: str) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    elif cause == "truncated":
        buffer = io.BytesIO()
        Image.fromarray(photo(64, 64)).save(buffer, "PNG")
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError) as info:
        read_image(path)
    assert cause in info.value.cause and str(path) in str(info.value)


def test_oversized_image_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(photo(100, 100)).save(path)
    with pytest.raises(ImageError, match="exceeds"):
        read_image(path, max_pixels=5000)


def test_atomic_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "out.png"

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr("upscale.files.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_animated_file_uses_first_frame_with_warning(tmp_path: Path) -> None:
    frames = [Image.fromarray(photo(seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    pic = read_image(tmp_path / "anim.gif")
    assert any("3 frames" in w for w in pic.warnings)


def test_atomic_write_gives_normal_permissions(tmp_path: Path) -> None:
    import os

    target = tmp_path / "out.png"
    write_atomic(target, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_cmyk_goes_through_its_embedded_profile(tmp_path: Path) -> None:
    """The file's profile, not a naive formula, says what its inks look like: here cyan ink prints magenta."""
    icc = cmyk_profile(swapped_cyan_magenta)
    inks = np.zeros((16, 32, 4), np.uint8)
    inks[:, :16, 0] = 255  # left: cyan ink
    inks[:, 16:, 2] = 255  # right: yellow ink
    Image.fromarray(inks, "CMYK").save(tmp_path / "c.jpg", quality=100, icc_profile=icc)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK" and im.info["icc_profile"] == icc
        naive = np.asarray(im.convert("RGB"))[8, 4]
    pic = read_image(tmp_path / "c.jpg")
    left, right = pic.pixels[8, 4].astype(int), pic.pixels[8, 28].astype(int)
    assert naive[0] < 60 and naive[1] > 200  # what ignoring the profile gives: cyan
    assert left[0] > 200 and left[1] < 60 and left[2] > 200, left  # magenta, as the profile says
    assert right[0] > 200 and right[1] > 200 and right[2] < 60, right  # yellow
    assert pic.icc_profile is None  # the pixels are sRGB now; the CMYK profile must not travel with them


def test_png_headers_read_directly_agree_with_pillow(tmp_path: Path) -> None:
    """The IHDR fast path gives Pillow's size, format and depth for every PNG layout; others go to Pillow."""
    from upscale.images import _png_header, probe_header

    rgb = np.zeros((7, 11, 3), np.uint8)
    cases = {"rgb.png": Image.fromarray(rgb), "grey.png": Image.fromarray(rgb[..., 0]),
             "rgba.png": Image.fromarray(np.zeros((7, 11, 4), np.uint8)),
             "palette.png": Image.fromarray(rgb).quantize(),
             "bits.png": Image.fromarray(rgb[..., 0]).convert("1"),
             "grey16.png": Image.fromarray(np.zeros((7, 11), np.uint16) + 300)}
    for name, image in cases.items():
        image.save(tmp_path / name)
        with Image.open(tmp_path / name) as im:
            deep = im.mode.startswith("I")
            assert _png_header(tmp_path / name) == ((11, 7), "PNG", deep) == probe_header(tmp_path / name), name
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    assert _png_header(tmp_path / "a.jpg") is None and probe_header(tmp_path / "a.jpg") == ((11, 7), "JPEG", False)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    assert _png_header(tmp_path / "bad.png") is None  # left to Pillow, which names the problem


def test_a_decoder_tripping_on_bad_bytes_is_called_a_damaged_file(tmp_path) -> None:
    """Pillow's TIFF plugin raises IndexError('index 0 out of range(0)') for a header without a directory: the
    row says the file is damaged, keeping the decoder's words."""
    from upscale.decoding import read_image
    from upscale.errors import ImageError

    path = tmp_path / "scan.tif"
    path.write_bytes(b"II*\x00broken")
    with pytest.raises(ImageError, match=r"damaged or unsupported file \(the decoder failed: IndexError"):
        read_image(path)


def test_a_damaged_tiff_is_one_line_and_no_stray_library_log(tmp_path) -> None:
    """tifffile logged "invalid offset to first page" on stderr before the run's own lines: only the row's line is
    said about the file."""
    import subprocess
    import sys

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "scan.tif").write_bytes(b"II*\x00broken")
    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(tmp_path / "in"), str(tmp_path / "out"),
                           "-m", "bicubic-x2"], capture_output=True, text=True)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and "tifffile" not in done.stderr, done.stderr
    assert [line for line in lines if "scan.tif" in line] == [lines[1]] and lines[0].startswith("model ")
