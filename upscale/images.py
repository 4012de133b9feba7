"""Image files: the `Picture` a file becomes, what a header says (size, format, depth, orientation), and
which formats and extensions we read and write.

Decoding is `decoding.read_image`; encoding is `encoding.encode` and `encoding.write_picture`. Inside the
engine an image is colour pixels (HxWx3, or HxWx1 for grey) of uint8 or uint16, an optional alpha plane of the
same dtype, and the metadata to carry to the output.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from .deep_color import deep_color_rawmode, is_tiff, tiff_size
from .errors import ImageError
from .formats import EXTENSIONS as OPTIONAL_EXTS
from .formats import missing, register_installed
from .sidecar import Sidecar

DEFAULT_MAX_PIXELS = 200_000_000
"""Refuse larger inputs (decompression bombs); ``--max-pixels`` changes it."""

DEFAULT_PNG_COMPRESSION = 1
"""zlib level for PNG output. Measured by benchmarks/throughput.py on photo-like 1280x960 outputs: level 1
encodes about 5x faster than Pillow's default 6 for files about 15% larger; PNG stays lossless either way."""

_ORIENTATION_TAG = 0x0112
FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP", "tiff": "TIFF", "avif": "AVIF", "heic": "HEIF",
           "jxl": "JXL"}
EXTENSIONS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg"), "WEBP": (".webp",), "TIFF": (".tif", ".tiff"),
              "BMP": (".bmp",), "AVIF": (".avif",), "HEIF": (".heic", ".heif"), "JXL": (".jxl",)}
"""Formats we write, with the extensions that name them (the first is the one we create)."""


@dataclass
class Picture:
    """Decoded pixels and what must travel with them to the output file."""

    pixels: np.ndarray
    """HxWx3 RGB or HxWx1 grey, uint8 or uint16."""
    alpha: np.ndarray | None = None
    """HxW, same dtype as pixels, or None."""
    icc_profile: bytes | None = None
    exif: bytes | None = None
    source_format: str | None = None
    warnings: list[str] = field(default_factory=list)
    jpeg_quality: int | None = None
    """For JPEG sources, the quality estimated from the quantisation tables (`upscale.evidence`)."""
    xmp: bytes | None = None
    """The source's XMP packet (`photo_metadata`), carried to the output with its sizes updated."""
    iptc: bytes | None = None
    """The source's IPTC-IIM datasets (keywords, caption, copyright), carried where the format holds them."""
    resources: bytes | None = None
    """The source's other Photoshop image resources (copyright flag, URL, IPTC digest), `photo_metadata`."""
    dpi: tuple[float, float] | None = None
    """The source's resolution in pixels per inch (JFIF density, PNG pHYs, TIFF resolution), carried unchanged."""
    sidecar: Sidecar | None = None
    """The XMP sidecar found beside the source file (`sidecar`), written beside the output."""

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.pixels.shape[1], self.pixels.shape[0]


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    """HxWx3 pixels from RGB or HxWx1 grey (the grey repeated), for what needs three colour channels."""
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an HxW[xC] array as EXIF orientation 1..8 says, so it displays upright."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(array)) if op else array


def probe_header(path: Path) -> tuple[tuple[int, int], str, bool]:
    """(width, height), format and whether samples are 16-bit, from the header alone; raises ImageError.

    PNG's IHDR is read directly (planning a folder of 5,000 thumbnails spent 0.5 s in Pillow's open alone);
    TIFF layouts Pillow cannot open (16-bit grey+alpha) are read by tifffile, as `read_image` does."""
    png = _png_header(path)
    if png is not None:
        return png
    _check_plugin(Path(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                deep = im.mode.startswith("I") or im.mode == "F" or deep_color_rawmode(im) is not None
                return im.size, im.format or "", deep
    except _DECODE_ERRORS as exc:
        if isinstance(exc, Image.UnidentifiedImageError) and is_tiff(path):
            try:
                return tiff_size(path), "TIFF", True
            except _TIFFFILE_ERRORS as tiff_exc:
                raise ImageError(path, describe_error(tiff_exc)) from None
        raise ImageError(path, describe_error(exc)) from None


_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, NotImplementedError, Image.DecompressionBombError)
"""What Pillow raises for a file it cannot read (NotImplementedError: a variant its plugin does not support)."""
_TIFFFILE_ERRORS = (OSError, ValueError, IndexError, KeyError, TypeError, struct.error)
"""What tifffile raises for a damaged TIFF (it indexes tag values and unpacks offsets as it finds them)."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header(path: Path) -> tuple[tuple[int, int], str, bool] | None:
    """A PNG's size and depth from its IHDR chunk, or None (not a PNG, or a header Pillow should judge)."""
    try:
        with path.open("rb") as f:
            head = f.read(29)
    except OSError:
        return None
    if len(head) < 29 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, colour = head[24], head[25]
    if width == 0 or height == 0 or depth not in (1, 2, 4, 8, 16) or colour not in (0, 2, 3, 4, 6):
        return None
    return (width, height), "PNG", depth == 16


def upright_size(path: Path) -> tuple[int, int]:
    """(width, height) as displayed: the header's size, turned by the EXIF orientation (what outputs carry)."""
    size, fmt, _ = probe_header(path)
    if _turned_by_pillow(fmt):
        return size  # Pillow's size is the upright one already
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                orientation = _orientation(im.getexif())
    except Exception:  # an EXIF block that cannot be read turns nothing (as when decoding)
        orientation = 1
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _orientation(exif: Image.Exif) -> int:
    """EXIF's orientation, 1 where it is missing or not one of the eight values."""
    value = exif.get(_ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _turned_by_pillow(fmt: str | None) -> bool:
    """Whether Pillow has already turned pictures of this format upright (its size and pixels): not to be turned
    again, whatever the orientation tag says."""
    return fmt == "TIFF" and pillow_turns_tiffs()


@functools.cache
def pillow_turns_tiffs() -> bool:
    """Whether this Pillow turns a TIFF upright as it loads it (Pillow 12 on: its size is the upright size, and
    loading applies the orientation tag), so that we must not turn it again."""
    buffer, exif = io.BytesIO(), Image.Exif()
    exif[_ORIENTATION_TAG] = 6
    Image.new("L", (2, 1)).save(buffer, "TIFF", exif=exif)
    with Image.open(buffer) as im:
        return im.size == (1, 2)


_TAIL = 1024  # bytes read from a file's end to see that it was written to the end


def incomplete_output(path: Path, expected: tuple[int, int]) -> str | None:
    """Why the existing file ``path`` is not a finished output of ``expected`` (width, height), or None.

    A re-run skips existing outputs; one truncated or emptied by another program (or a disk that lied) must be
    redone instead. The header gives the size; the end of the file shows that it was written to the end (PNG's
    IEND chunk, JPEG's end-of-image marker, WebP's RIFF length); other formats are decoded in full."""
    try:
        size, fmt, _ = probe_header(path)
    except ImageError as exc:
        return f"is unreadable ({exc.cause})"
    if size != expected:
        return f"is {size[0]}x{size[1]}, not {expected[0]}x{expected[1]}"
    length = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        f.seek(max(0, length - _TAIL))
        tail = f.read()
    if fmt == "PNG":
        complete = tail.endswith(b"IEND\xaeB`\x82")
    elif fmt == "JPEG":
        complete = b"\xff\xd9" in tail
    elif fmt == "WEBP":
        complete = int.from_bytes(head[4:8], "little") + 8 == length
    else:
        from .decoding import read_image  # decoding builds on this module

        try:
            read_image(path, max_pixels=expected[0] * expected[1] + 1)
            complete = True
        except ImageError:
            complete = False
    return None if complete else "is truncated"


def describe_error(exc: BaseException) -> str:
    """The one-line cause of a failed open or decode, for reports."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image, or a format Pillow cannot read"
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    text = str(exc).split("\n")[0] or type(exc).__name__
    if "truncated" in text:
        return "file is truncated"
    if isinstance(exc, _DECODER_SLIPS):  # a plugin tripped over bytes it did not expect: say so, keep its words
        return f"damaged or unsupported file (the decoder failed: {type(exc).__name__}: {text})"
    return text


_DECODER_SLIPS = (IndexError, KeyError, struct.error, ZeroDivisionError, TypeError, AttributeError)
"""What Pillow's format plugins raise on malformed files where they check nothing (``index 0 out of range(0)`` from
a TIFF without its directory): not a message a user can act on by itself."""


def image_extensions() -> set[str]:
    """Lower-case extensions Pillow can open, and the modern formats' whether or not their plugin is installed
    (a file of one is then a failure naming the extra, not an ignored file)."""
    register_installed()
    registered = Image.registered_extensions()  # loads every plugin first: Image.OPEN is complete after it
    openable = set(Image.OPEN) | {"MPO"}  # MPO files are opened by the JPEG plugin: no opener of their own
    return {ext for ext, fmt in registered.items() if fmt in openable} | set(OPTIONAL_EXTS)


def format_of_extension(suffix: str) -> str | None:
    """The Pillow format an extension names (``.jpg`` -> ``JPEG``), for when no header was read."""
    return Image.registered_extensions().get(suffix.lower()) or OPTIONAL_EXTS.get(suffix.lower())


def _check_plugin(path: Path) -> None:
    """A modern format's file without its plugin: one failure naming the extra."""
    fmt = OPTIONAL_EXTS.get(path.suffix.lower())
    why = missing(fmt) if fmt else None
    if why:
        raise ImageError(path, why)


def output_format(choice: str, source_format: str | None) -> str:
    """Pillow format name for --format (``same`` keeps the source's format where we can write it)."""
    if choice != "same":
        return FORMATS[choice]
    fmt = {"MPO": "JPEG"}.get(source_format or "", source_format or "")
    return fmt if fmt in EXTENSIONS else "PNG"


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a half-grey output
