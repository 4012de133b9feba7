"""`upscale dir` on real photographs of every kind a user's folder holds (scikit-image's public-domain
samples): grey, RGBA, 16-bit colour and grey, palette with transparency, CMYK JPEG, EXIF-rotated, ICC."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.decoding import read_image
from upscale.deep_color import encode_png16

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


@dataclass
class Photos:
    folder: Path
    truth: dict[str, np.ndarray]  # what each file holds, HxWxC (alpha last when there is one), from the arrays
    # written, not from the decoder under test; for JPEGs, what was encoded (so compared with a lossy bound)
    icc: bytes  # the profile embedded in icc.jpg


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Photos:
    folder = tmp_path_factory.mktemp("photos")
    truth: dict[str, np.ndarray] = {}
    astronaut = skimage_data.astronaut()[::4, ::4]  # 128x128: quick, still a photograph
    coffee = skimage_data.coffee()[::4, ::4]
    camera = skimage_data.camera()[::4, ::4]
    Image.fromarray(camera).save(folder / "grey.png")
    truth["grey.png"] = camera[..., None]
    alpha = np.tile(np.linspace(0, 255, astronaut.shape[1]).astype(np.uint8), (astronaut.shape[0], 1))
    Image.fromarray(np.dstack([astronaut, alpha])).save(folder / "rgba.png")
    truth["rgba.png"] = np.dstack([astronaut, alpha])
    # 16-bit with a low byte that is not a copy of the high one (as x257 would make it)
    deep = (astronaut.astype(np.uint16) * 256 + np.arange(astronaut.size).reshape(astronaut.shape) % 251)
    deep = deep.astype(np.uint16)
    (folder / "deep.png").write_bytes(encode_png16(deep))
    tifffile.imwrite(folder / "deep.tif", deep, photometric="rgb")
    truth["deep.png"] = truth["deep.tif"] = deep
    grey16 = (camera.astype(np.uint16) * 256 + np.arange(camera.size).reshape(camera.shape) % 241).astype(np.uint16)
    Image.fromarray(grey16).save(folder / "grey16.png")
    truth["grey16.png"] = grey16[..., None]
    palette = Image.fromarray(coffee).quantize(64)
    palette.save(folder / "palette.png", transparency=0)
    truth["palette.png"] = np.asarray(palette.convert("RGB"))  # alpha checked apart
    Image.fromarray(coffee).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    truth["cmyk.jpg"] = coffee
    rotated = Image.fromarray(coffee[:, :120])  # stored 120 wide, 100 tall
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways, shown rotated 90 degrees clockwise
    rotated.save(folder / "rotated.jpg", exif=exif.tobytes(), quality=95)
    truth["rotated.jpg"] = np.rot90(coffee[:, :120], -1)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(astronaut).save(folder / "icc.jpg", icc_profile=icc, quality=95)
    truth["icc.jpg"] = astronaut
    return Photos(folder, truth, icc)


def test_every_kind_of_photo_is_upscaled_correctly(photos: Photos, tmp_path: Path) -> None:
    out = tmp_path / "out"
    # The bicubic model makes the expected output exactly computable; the formats are what is tested here.
    result = CliRunner().invoke(app, ["dir", str(photos.folder), str(out), "--tile", "48", "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in photos.folder.iterdir())

    for name, truth in photos.truth.items():
        upscaled = read_image(out / name)
        h, w = truth.shape[:2]
        assert upscaled.size == (2 * w, 2 * h), name
        assert upscaled.pixels.dtype == truth.dtype, name
        planes = upscaled.pixels if upscaled.alpha is None else np.dstack([upscaled.pixels, upscaled.alpha])
        if name == "palette.png":
            planes = upscaled.pixels
        assert planes.shape[2] == truth.shape[2], name
        peak = 65535.0 if truth.dtype == np.uint16 else 255.0
        expected = np.clip(bicubic(truth, (2 * w, 2 * h)), 0, peak)  # the runner clips too
        lossy = 10.0 if name.endswith(".jpg") else 0.0  # encoded as JPEG twice: in, then out
        assert psnr(planes, expected, peak) > 38 - lossy, name
        if truth.dtype == np.uint16:
            # Every 16 bits count: away from the borders (where the two bicubics pad differently) the output
            # is within a few levels of 65535 of bicubic on the true values; 8 bits anywhere would cost ~100.
            inner = (slice(8, -8), slice(8, -8))
            assert np.abs(planes[inner].astype(np.float64) - expected[inner]).mean() < 8, name

    with Image.open(out / "rotated.jpg") as im:
        assert im.size == (2 * 100, 2 * 120) and im.getexif().get(0x0112, 1) == 1
    with Image.open(out / "icc.jpg") as im:
        assert im.info.get("icc_profile") == photos.icc
    palette = read_image(out / "palette.png")
    assert palette.alpha is not None and (palette.alpha < 128).any()


def test_default_model_handles_every_kind(photos: Photos, tmp_path: Path) -> None:
    """The bundled default model writes every kind with the right size, depth, planes and alpha."""
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["dir", str(photos.folder), str(out)])
    assert result.exit_code == 0, result.output
    for path in sorted(photos.folder.iterdir()):
        source, upscaled = read_image(path), read_image(out / path.name)
        assert upscaled.size == (2 * source.size[0], 2 * source.size[1]), path.name
        assert upscaled.pixels.dtype == source.pixels.dtype and upscaled.pixels.shape[2] == source.pixels.shape[2]
        assert (upscaled.alpha is None) == (source.alpha is None), path.name


def test_default_model_is_clearly_better_than_bicubic(tmp_path: Path) -> None:
    """Against the ground truth, the default model's output (8-bit, 16-bit, grey) is clearly better than bicubic."""
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
        # The default model is 3-5 dB over bicubic on these pictures (3.3 on astronaut, 4.7 on camera): a floor
        # of 2 dB fails a bicubic, random or broken default, and a 16-bit path that loses the model's work.
        assert psnr(out, truth, 255) >= psnr(reference, truth, 255) + 2.0, name
