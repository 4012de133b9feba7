"""16-bit-per-channel colour images, which Pillow can only open as 8-bit.

Pillow has no 48/64-bit RGB(A) mode: it opens a 16-bit RGB PNG or TIFF as 8-bit "RGB", keeping the
high byte. Its decoders can still do the hard part (inflate, PNG un-filtering, TIFF strips) at C speed:
decoding once with a big-endian and once with a little-endian 16-bit raw mode yields the two bytes of
every sample, which we join. Writing 16-bit colour PNG is simple enough to do here directly.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .png import write_png

# tifffile logs what it finds wrong in a damaged file ("invalid offset to first page") on stderr, a stray line
# before the run's own: the file's row says it (one line, named), so only its errors stay audible.
logging.getLogger("tifffile").setLevel(logging.ERROR)

_DEEP_RAWMODES = {f"{m};16{e}" for m in ("RGB", "RGBA", "RGBa", "LA") for e in "BLN"}


def deep_color_rawmode(im: Image.Image) -> str | None:
    """The 16-bit raw mode of an image whose samples Pillow would cut to 8 bits, else None.

    Covers 16-bit RGB, RGBA, premultiplied RGBa and grey+alpha (which Pillow opens as 8-bit RGB and RGBA).
    """
    if im.mode not in ("RGB", "RGBA") or len(im.tile) != 1:
        return None
    args = im.tile[0].args
    rawmode = args[0] if isinstance(args, tuple) else args
    if not isinstance(rawmode, str):
        return None
    if rawmode.startswith("RGBa") and getattr(im, "tag_v2", {}).get(284) == 2:
        return None  # planar premultiplied: libtiff's planes do not come back through a swapped raw mode
    return rawmode if rawmode in _DEEP_RAWMODES else None


def read_deep_color(path: Path, rawmode: str) -> np.ndarray:
    """Decode a 16-bit RGB(A)/LA PNG or TIFF as HxWxC uint16 (C = 3, 4 or 2), keeping the low byte."""

    def decode(variant: str) -> np.ndarray:
        with Image.open(path) as im:
            tile = im.tile[0]
            args = tile.args
            new_args = (variant, *args[1:]) if isinstance(args, tuple) else variant
            im.tile = [tile._replace(args=new_args)]
            im.load()
            return np.asarray(im, dtype=np.uint8)

    mode = rawmode.split(";")[0]
    if mode == "RGBa":  # premultiplied: read as RGBA, then divided by alpha as Pillow does for 8-bit
        return _unpremultiply(read_deep_color(path, "RGBA" + rawmode[4:]))
    if mode == "LA":
        # Grey+alpha at 16 bits is 4 bytes a pixel, like 8-bit RGBA: one decode yields every byte.
        raw = decode("RGBA").astype(np.uint16)
        first, second = raw[..., 0::2], raw[..., 1::2]
    else:
        first = decode(f"{mode};16B").astype(np.uint16)  # byte 0 of each sample
        second = decode(f"{mode};16L").astype(np.uint16)  # byte 1 of each sample
    endian = rawmode[-1]
    if endian == "N":
        endian = "L" if sys.byteorder == "little" else "B"
    return (first << 8 | second) if endian == "B" else (second << 8 | first)


def _unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """Colour divided by alpha (premultiplied, "associated" alpha to straight), rounded; transparent pixels 0."""
    alpha = rgba[..., 3:].astype(np.float64)
    colour = np.where(alpha > 0, rgba[..., :3] * 65535.0 / np.maximum(alpha, 1), 0)
    straight = np.clip(np.rint(colour), 0, 65535).astype(np.uint16)
    return np.concatenate([straight, rgba[..., 3:]], axis=2)


def encode_png16(pixels: np.ndarray, icc_profile: bytes | None = None, exif: bytes | None = None,
                 compress_level: int = 6) -> bytes:
    """An HxWxC uint16 array (C = 1, 2, 3 or 4: L, LA, RGB, RGBA) as 16-bit PNG bytes (`png.write_png`)."""
    if pixels.dtype != np.uint16 or pixels.ndim != 3 or pixels.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"expected HxWxC uint16 with C in 1..4, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    colour, alpha = (pixels[..., :-1], pixels[..., -1]) if pixels.shape[2] in (2, 4) else (pixels, None)
    write_png(buffer, colour, alpha, icc_profile, exif, compress_level)
    return buffer.getvalue()


TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def is_tiff(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in TIFF_SIGNATURES


def tiff_size(path: Path) -> tuple[int, int]:
    """(width, height) of a TIFF's first page, from its tags."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return page.imagewidth, page.imagelength


def read_tiff(path: Path, max_pixels: int) -> tuple[np.ndarray, bytes | None, int]:
    """Decode the first page of a TIFF that Pillow cannot open (e.g. 16-bit grey+alpha) with tifffile.

    Returns HxWxC (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) uint8 or uint16 as stored (not turned), the ICC
    profile and the orientation tag (1..8) to turn it by.
    Raises ValueError with the cause for layouts this tool does not handle.
    """
    import tifffile  # a dependency already (16-bit TIFF writing), imported only for this rare case

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        h, w = page.imagelength, page.imagewidth
        if h * w > max_pixels:
            raise ValueError(f"image of {w}x{h} exceeds the {max_pixels:,}-pixel limit")
        data = page.asarray()
        icc = page.tags.get(34675)
        icc_bytes = bytes(icc.value) if icc is not None else None
        orientation = page.tags.get(274)
        turn = orientation.value if orientation is not None and isinstance(orientation.value, int) else 1
        separate = page.planarconfig == tifffile.PLANARCONFIG.SEPARATE and data.ndim == 3
    if separate:
        data = np.moveaxis(data, 0, -1)
    if data.ndim == 2:
        data = data[..., None]
    if data.dtype not in (np.uint8, np.uint16) or data.ndim != 3 or data.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f"unsupported TIFF layout: {data.dtype} samples of shape {data.shape}")
    return np.ascontiguousarray(data), icc_bytes, turn if 1 <= turn <= 8 else 1
