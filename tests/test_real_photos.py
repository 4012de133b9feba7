"""`upscale dir` on real photographs of every kind a user's folder holds (scikit-image's public-domain
samples): grey, RGBA, 16-bit colour and grey, palette with transparency, CMYK JPEG, EXIF-rotated, ICC."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.deep_color import encode_png16
from upscale.images import read_image

skimage_data = pytest.importorskip("skimage.data")


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / mse))


def bicubic(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Reference upscale with Pillow, per channel in float (works for any bit depth)."""
    planes = pixels[..., None] if pixels.ndim == 2 else pixels
    out = [np.asarray(Image.fromarray(planes[..., c].astype(np.float32), "F").resize(size, Image.Resampling.BICUBIC))
           for c in range(planes.shape[2])]
    return np.stack(out, axis=2)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    astronaut = skimage_data.astronaut()[::4, ::4]  # 128x128: quick, still a photograph
    coffee = skimage_data.coffee()[::4, ::4]
    camera = skimage_data.camera()[::4, ::4]
    Image.fromarray(camera).save(folder / "grey.png")
    alpha = np.tile(np.linspace(0, 255, astronaut.shape[1]).astype(np.uint8), (astronaut.shape[0], 1))
    Image.fromarray(np.dstack([astronaut, alpha])).save(folder / "rgba.png")
    deep = (astronaut.astype(np.uint16) * 257 + np.arange(astronaut.size).reshape(astronaut.shape) % 200)
    (folder / "deep.png").write_bytes(encode_png16(deep.astype(np.uint16)))
    tifffile.imwrite(folder / "deep.tif", deep.astype(np.uint16), photometric="rgb")
    Image.fromarray(camera.astype(np.uint16) * 257 + 7).save(folder / "grey16.png")
    Image.fromarray(coffee).quantize(64).save(folder / "palette.png", transparency=0)
    Image.fromarray(coffee).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    rotated = Image.fromarray(coffee[:, :120])  # stored 120 wide, 100 tall
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways, shown rotated 90 degrees clockwise
    rotated.save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(astronaut).save(folder / "icc.jpg", icc_profile=icc, quality=95)
    return folder


def test_every_kind_of_photo_is_upscaled_correctly(photo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # The bicubic model makes the expected output exactly computable; the formats are what is tested here.
    result = CliRunner().invoke(app, ["dir", str(photo_folder), str(out), "--tile", "48", "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in photo_folder.iterdir())

    for path in sorted(photo_folder.iterdir()):
        source, upscaled = read_image(path), read_image(out / path.name)
        w, h = source.size
        assert upscaled.size == (2 * w, 2 * h), path.name
        assert upscaled.pixels.dtype == source.pixels.dtype, path.name
        assert upscaled.pixels.shape[2] == source.pixels.shape[2], path.name
        assert (upscaled.alpha is None) == (source.alpha is None), path.name
        peak = 65535.0 if source.pixels.dtype == np.uint16 else 255.0
        expected = bicubic(source.pixels, (2 * w, 2 * h))
        lossy = 8.0 if path.suffix == ".jpg" else 0.0  # re-encoding as JPEG costs a few dB
        assert psnr(upscaled.pixels, expected, peak) > 38 - lossy, path.name

    with Image.open(out / "rotated.jpg") as im:
        assert im.size == (2 * 100, 2 * 120) and im.getexif().get(0x0112, 1) == 1
    with Image.open(out / "icc.jpg") as im:
        assert im.info.get("icc_profile") == read_image(photo_folder / "icc.jpg").icc_profile
    deep = read_image(out / "deep.png").pixels
    assert len(np.unique(deep % 256)) > 100  # the low byte carries real information
    assert read_image(out / "grey16.png").pixels.dtype == np.uint16
    palette = read_image(out / "palette.png")
    assert palette.alpha is not None and (palette.alpha < 128).any()


def test_default_model_handles_every_kind(photo_folder: Path, tmp_path: Path) -> None:
    """The bundled default model writes every kind with the right size, depth, planes and alpha."""
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["dir", str(photo_folder), str(out)])
    assert result.exit_code == 0, result.output
    for path in sorted(photo_folder.iterdir()):
        source, upscaled = read_image(path), read_image(out / path.name)
        assert upscaled.size == (2 * source.size[0], 2 * source.size[1]), path.name
        assert upscaled.pixels.dtype == source.pixels.dtype and upscaled.pixels.shape[2] == source.pixels.shape[2]
        assert (upscaled.alpha is None) == (source.alpha is None), path.name


def test_default_model_is_at_least_as_good_as_bicubic(tmp_path: Path) -> None:
    """Against the ground truth, the default model's output (8-bit, 16-bit, grey) is no worse than bicubic."""
    from upscale.bicubic import imresize

    hr_rgb = skimage_data.astronaut()[:256, :256]
    hr_grey = skimage_data.camera()[:256, :256]
    folder = tmp_path / "lr"
    folder.mkdir()
    Image.fromarray(imresize(hr_rgb, 0.5)).save(folder / "rgb.png")
    Image.fromarray(imresize(hr_grey, 0.5)).save(folder / "grey.png")
    (folder / "deep.png").write_bytes(encode_png16(imresize(hr_rgb, 0.5).astype(np.uint16) * 257))
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name, hr in [("rgb.png", hr_rgb), ("grey.png", hr_grey), ("deep.png", hr_rgb)]:
        out = read_image(tmp_path / "out" / name).pixels.astype(np.float64)
        if out.max() > 255:
            out = out / 257
        lr = read_image(folder / name).pixels
        lr8 = (lr // 257 if lr.dtype == np.uint16 else lr).astype(np.uint8)
        reference = imresize(lr8[..., 0] if lr8.shape[2] == 1 else lr8, 2).astype(np.float64)
        truth = hr.astype(np.float64)
        out = out[..., 0] if truth.ndim == 2 else out
        assert psnr(out, truth, 255) >= psnr(reference, truth, 255) - 0.3, name
