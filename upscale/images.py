"""Image files in and out: every Pillow-readable file becomes plain arrays plus the metadata to keep.

Inside the engine an image is colour pixels (HxWx3, or HxWx1 for grey) of uint8 or uint16, an optional
alpha plane of the same dtype, and the ICC profile and EXIF bytes to carry to the output. Bit depth
comes from the file's mode, never from pixel values. Writes are atomic: a temporary file beside the
target, fsync, then rename, so no reader ever sees a truncated file under the final name.
"""

from __future__ import annotations

import functools
import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageFile

from .deep_color import deep_color_rawmode, is_tiff, read_deep_color, read_tiff, tiff_size
from .errors import ImageError, first_line
from .evidence import jpeg_quality
from .files import Publication, open_atomic, write_atomic
from .formats import EXTENSIONS as OPTIONAL_EXTS
from .formats import encode_deep_heif, missing, read_deep_heif, register_installed
from .jpeg_scan import scan_data
from .photo_metadata import (
    TIFF_IPTC,
    TIFF_XMP,
    PhotoMetadata,
    exif_for_output,
    for_output,
    from_jpeg_segments,
    from_png_text,
    from_tiff_tags,
    jpeg_segments,
    splice_into_jpeg,
    tiff_tags,
)
from .pixels import uint16_to_uint8
from .png import write_png

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

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as Pillow reports sizes."""
        return self.pixels.shape[1], self.pixels.shape[0]


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
    return text if "truncated" not in text else "file is truncated"


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode ``path`` into a Picture (orientation applied); raises ImageError with the cause."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageError(path, "empty file")
        _check_plugin(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageError(path, f"image of {w}x{h} exceeds the {max_pixels:,}-pixel limit")
                return _decode(path, im)
    except ImageError:
        raise
    except _DECODE_ERRORS as exc:
        if isinstance(exc, Image.UnidentifiedImageError) and is_tiff(path):
            return _read_with_tifffile(path, max_pixels)
        raise ImageError(path, describe_error(exc)) from None


def _read_with_tifffile(path: Path, max_pixels: int) -> Picture:
    """TIFF layouts Pillow cannot open (16-bit grey+alpha): tifffile decodes them."""
    try:
        data, icc, orientation = read_tiff(path, max_pixels)
    except _TIFFFILE_ERRORS as exc:
        raise ImageError(path, describe_error(exc)) from None
    data = apply_orientation(data, orientation)  # tifffile reads the stored pixels, never turned
    has_alpha = data.shape[2] in (2, 4)
    pixels, alpha = (data[..., :-1], data[..., -1]) if has_alpha else (data, None)
    return Picture(np.ascontiguousarray(pixels), None if alpha is None else np.ascontiguousarray(alpha), icc, None,
                   "TIFF", [])


def _decode(path: Path, im: Image.Image) -> Picture:
    notes: list[str] = []
    frames = _frames_note(path, im)
    if frames:
        notes.append(frames)
    icc = im.info.get("icc_profile") or None
    deep = deep_color_rawmode(im)  # before getexif(), which may decode the pixels to find EXIF
    exif = _exif_of(im, notes)
    source_format = im.format
    orientation = 1 if _turned_by_pillow(source_format) else _orientation(exif)
    if source_format in ("JPEG", "MPO"):
        _check_jpeg_data(path)
    alpha: np.ndarray | None = None

    heif16 = read_deep_heif(path) if source_format == "HEIF" and im.info.get("bit_depth", 8) > 8 else None
    if heif16 is not None:
        has_alpha = heif16.shape[2] in (2, 4)
        pixels, alpha = (heif16[..., :-1], heif16[..., -1]) if has_alpha else (heif16, None)
    elif deep:
        data = read_deep_color(path, deep)
        has_alpha = data.shape[2] in (2, 4)
        pixels, alpha = (data[..., :-1], data[..., -1]) if has_alpha else (data, None)
    else:
        im.load()
        note = _depth_reduced(im)
        if note:
            notes.append(note)
        im = _normalise_mode(im, notes)
        if im.mode == "CMYK":
            im, icc = _cmyk_to_rgb(im, icc), None
        data = np.asarray(im)
        if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
            pixels = np.clip(data, 0, 65535).astype(np.uint16)[..., None]
        elif im.mode == "L":
            pixels = data[..., None]
        elif im.mode == "LA":
            pixels, alpha = data[..., :1], data[..., 1]
        elif im.mode == "RGBA":
            pixels, alpha = data[..., :3], data[..., 3]
        else:
            pixels = data
    if alpha is None and source_format == "PNG" and "transparency" in im.info:
        alpha = _transparent_colour_as_alpha(pixels, im.info["transparency"])
    pixels = np.ascontiguousarray(apply_orientation(pixels, orientation))
    if alpha is not None:
        alpha = np.ascontiguousarray(apply_orientation(alpha, orientation))
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1  # the pixels are upright now
    if source_format == "TIFF":
        _drop_layout_tags(exif)
    if source_format == "BMP" and alpha is not None:
        notes.append("BMP as written holds no alpha: transparency dropped (--format png keeps it)")
    quality = jpeg_quality(getattr(im, "quantization", None)) if source_format in ("JPEG", "MPO") else None
    meta = _photo_metadata(path, im, source_format, notes)
    return Picture(pixels, alpha, icc, _exif_bytes(exif, notes), source_format, notes, quality, meta.xmp, meta.iptc)


_FRAMES_COUNTED = 100
"""Frames counted at most for the animation warning: a 50,000-page TIFF is walked page by page to count them."""


def _frames_note(path: Path, im: Image.Image) -> str | None:
    """The warning for a file of several frames (of which only the first is upscaled), or None. Counted on a
    second handle: seeking the decoding one away and back changes what some plugins decode (GIF, APNG)."""
    try:
        if not getattr(im, "is_animated", False):
            return None
        count = 1
        with Image.open(path) as other:
            while count < _FRAMES_COUNTED:
                other.seek(count)
                count += 1
    except EOFError:
        pass
    except Exception:  # a damaged later frame: the first one is all we upscale
        return "several frames (later ones unreadable): only the first frame was upscaled"
    counted = f"{count}" if count < _FRAMES_COUNTED else f"{_FRAMES_COUNTED} or more"
    return f"animated image with {counted} frames: only the first frame was upscaled"


def _exif_of(im: Image.Image, notes: list[str]) -> Image.Exif:
    """The file's EXIF, or an empty block (with a note) where Pillow cannot parse it: metadata never fails a
    picture."""
    try:
        return im.getexif()
    except Exception as exc:
        _left_out("EXIF unreadable", exc, notes)
        return Image.Exif()


def _exif_bytes(exif: Image.Exif, notes: list[str]) -> bytes | None:
    """The EXIF block to carry, or None (with a note) where Pillow cannot write what it read back out."""
    if not len(exif):
        return None
    try:
        return exif.tobytes()
    except Exception as exc:
        _left_out("EXIF could not be re-written", exc, notes)
        return None


def _left_out(why: str, exc: Exception, notes: list[str]) -> None:
    """The note for a metadata block left out because a library failed on it (metadata never fails a picture)."""
    notes.append(f"{why}, not carried ({first_line(exc)[:120]})")


def _check_jpeg_data(path: Path) -> None:
    """Refuse a JPEG whose compressed data is too short for its stated size (`jpeg_scan`): libjpeg would fill
    the rest with grey without an error."""
    with path.open("rb") as f:
        found = scan_data(f.read())
    if found is not None and found.present_share < 1.0:
        raise ImageError(path, f"the compressed data ends early: {found.entropy_bytes:,} bytes can hold at most "
                               f"{found.present_share:.1%} of its {found.width}x{found.height} pixels (the rest "
                               "would be flat grey)")


def _photo_metadata(path: Path, im: Image.Image, source_format: str | None, notes: list[str]) -> PhotoMetadata:
    """XMP and IPTC, where each format keeps them; blocks that cannot be read are left out with a note."""
    try:
        return _read_photo_metadata(path, im, source_format)
    except Exception as exc:
        _left_out("XMP/IPTC unreadable", exc, notes)
        return PhotoMetadata()


def _read_photo_metadata(path: Path, im: Image.Image, source_format: str | None) -> PhotoMetadata:
    if source_format in ("JPEG", "MPO"):
        return from_jpeg_segments(getattr(im, "applist", []))
    if source_format == "PNG":
        return from_png_text(im.info)
    if source_format == "TIFF":  # tifffile: Pillow reads tag 33723 as a number
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            xmp, iptc = tags.get(TIFF_XMP), tags.get(TIFF_IPTC)
            return from_tiff_tags(xmp and xmp.value, iptc and iptc.value)
    return PhotoMetadata(im.info.get("xmp") or None)


# A TIFF's "EXIF" as Pillow reads it is the file's first IFD, with the tags that describe the stored pixels
# (size, samples, strips, compression). Carried into an output of another size they would describe the wrong
# image (a 2x upscale written with the source's width), so only descriptive tags travel.
_TIFF_LAYOUT_TAGS = (254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325,
                     338, 339, 340, 341, 530, 531, 532, 34675)


def _drop_layout_tags(exif: Image.Exif) -> None:
    for tag in _TIFF_LAYOUT_TAGS:
        if tag in exif:
            del exif[tag]
    description = exif.get(270)
    if isinstance(description, str) and description.startswith('{"shape"'):
        del exif[270]  # tifffile's record of the array shape, not a caption


def _transparent_colour_as_alpha(pixels: np.ndarray, colour: object) -> np.ndarray | None:
    """A PNG's tRNS colour (grey or RGB, 8- or 16-bit; palettes are converted by Pillow) as an alpha plane:
    transparent where the pixel is exactly that colour, opaque elsewhere."""
    peak = np.iinfo(pixels.dtype).max
    if isinstance(colour, int) and pixels.shape[2] == 1:
        return np.where(pixels[..., 0] == colour, 0, peak).astype(pixels.dtype)
    if isinstance(colour, tuple) and len(colour) == 3 and pixels.shape[2] == 3:
        return np.where((pixels == np.array(colour, pixels.dtype)).all(axis=2), 0, peak).astype(pixels.dtype)
    return None


def _depth_reduced(im: Image.Image) -> str | None:
    """A note where Pillow has read samples deeper than 8 bits into an 8-bit mode (a layout we cannot read at full
    depth, such as planar 16-bit premultiplied TIFF): never reduced silently."""
    bits = getattr(im, "tag_v2", {}).get(258) if im.format == "TIFF" else None
    deepest = max(bits) if isinstance(bits, tuple) and bits else bits if isinstance(bits, int) else 8
    if deepest > 8 and im.mode in ("RGB", "RGBA", "RGBa", "L", "LA", "P", "CMYK"):
        return f"{deepest}-bit samples read at 8 bits (a layout read only at 8 bits)"
    return None


def _normalise_mode(im: Image.Image, notes: list[str]) -> Image.Image:
    """Bring the many Pillow modes down to L, LA, RGB, RGBA, CMYK and 16-bit grey."""
    mode = im.mode
    if mode == "1":
        return im.convert("L")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info or (im.palette is not None and "A" in im.palette.mode)
        return im.convert("RGBA" if has_alpha else "RGB")
    if mode == "La":
        return im.convert("LA")
    if mode == "RGBa":
        return im.convert("RGBA")
    if mode in ("RGBX", "YCbCr", "LAB", "HSV"):
        return im.convert("RGB")
    if mode == "F":
        data = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0, posinf=65535.0, neginf=0.0)
        if data.size and float(data.max()) <= 1.0:  # the usual 0..1 float picture (PFM, float TIFF): to 16 bits
            notes.append("32-bit float image (0..1) converted to 16-bit")
            data = data * 65535.0
        else:
            notes.append("32-bit float image converted to 16-bit (values clipped to 0..65535)")
        data = np.clip(np.rint(data), 0, 65535)
        return Image.fromarray(data.astype(np.uint16))  # uint16 arrays become "I;16"
    return im


def _cmyk_to_rgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """CMYK to sRGB, through the embedded CMYK profile when there is one."""
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError):
            pass
    return im.convert("RGB")


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


def _to_pillow(picture: Picture, fmt: str, notes: list[str], meta: PhotoMetadata, quality: int = 95,
               exif: bytes | None = None) -> Image.Image | bytes:
    """A Pillow image to save, or finished PNG bytes for 16-bit colour that Pillow cannot hold."""
    pixels, alpha = picture.pixels, picture.alpha
    deep = pixels.dtype == np.uint16
    gray = pixels.shape[2] == 1
    if fmt == "JPEG" and alpha is not None:
        notes.append("JPEG has no alpha channel: transparency dropped")
        alpha = None
    if deep and fmt == "TIFF" and not (gray and alpha is None):
        planes = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
        return _tiff16(planes, picture.icc_profile, meta)
    if deep and gray and alpha is None and fmt == "TIFF":
        return Image.fromarray(np.ascontiguousarray(pixels[..., 0]))  # "I;16"
    if deep and fmt == "HEIF":
        colour = np.repeat(pixels, 3, axis=2) if gray else pixels
        planes = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
        return encode_deep_heif(planes, quality, exif, meta.xmp, picture.icc_profile)
    if deep:
        notes.append(f"{fmt} holds 8 bits per channel: 16-bit precision reduced")
        pixels = uint16_to_uint8(pixels)
        alpha = None if alpha is None else uint16_to_uint8(alpha)
    planes = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes.shape[2]]
    if fmt in ("JPEG", "BMP") and mode == "LA":
        planes, mode = planes[..., :1], "L"
    return Image.fromarray(planes[..., 0] if mode == "L" else planes, mode)


def _tiff16(planes: np.ndarray, icc: bytes | None, meta: PhotoMetadata) -> bytes:
    import tifffile  # a small pure-Python dependency, imported only for this rare case

    buffer = io.BytesIO()
    photometric = "rgb" if planes.shape[2] >= 3 else "minisblack"
    extrasamples = ["unassalpha"] if planes.shape[2] in (2, 4) else None
    extratags = [(tag, 1 if tag == TIFF_XMP else 7, len(block), block, True) for tag, block in tiff_tags(meta).items()]
    tifffile.imwrite(buffer, planes, photometric=photometric, compression="zlib",
                     extrasamples=extrasamples, iccprofile=icc, extratags=extratags)
    return buffer.getvalue()


def write_picture(path: Path, picture: Picture, fmt: str, quality: int = 95,
                  png_compression: int = DEFAULT_PNG_COMPRESSION,
                  publication: Publication | None = None) -> tuple[int, list[str]]:
    """Write ``picture`` to ``path`` atomically in format ``fmt`` (or staged for ``publication``); (bytes written,
    warnings about what the format lost). PNG streams band by band from the arrays (`png.write_png`): no copy of
    the image is made."""
    if fmt == "PNG":  # no side limit (`_check_fits_format`, which `encode` applies to the others)
        notes: list[str] = []
        meta, exif = _metadata_for_output(picture, notes)
        with open_atomic(path, publication) as f:
            size = write_png(f, picture.pixels, picture.alpha, picture.icc_profile, exif, png_compression, meta)
        return size, notes
    data, notes = encode(picture, fmt, quality, png_compression)
    write_atomic(path, data, publication)
    return len(data), notes


def encode(picture: Picture, fmt: str, quality: int = 95,
           png_compression: int = DEFAULT_PNG_COMPRESSION) -> tuple[bytes, list[str]]:
    """The bytes of ``picture`` in Pillow format ``fmt``, and any warnings about what the format lost."""
    _check_fits_format(picture, fmt)
    notes: list[str] = []
    meta, exif = _metadata_for_output(picture, notes)
    if fmt == "PNG":
        buffer = io.BytesIO()
        write_png(buffer, picture.pixels, picture.alpha, picture.icc_profile, exif, png_compression, meta)
        return buffer.getvalue(), notes
    notes += meta.lost_in(fmt)
    image = _to_pillow(picture, fmt, notes, meta, quality, exif)
    if isinstance(image, bytes):
        return image, notes
    params: dict[str, object] = {}
    if picture.icc_profile and fmt != "BMP":
        params["icc_profile"] = picture.icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF", "JXL"):
        params["exif"] = exif
    if meta.xmp and fmt in ("WEBP", "AVIF", "HEIF"):
        params["xmp"] = meta.xmp
    if fmt == "TIFF" and (exif or meta.xmp or meta.iptc):
        params["exif"] = _tiff_directory(exif, meta, notes)
    if fmt in ("JPEG", "WEBP", "AVIF", "HEIF", "JXL"):
        params["quality"] = quality
    if fmt == "PNG":
        params["compress_level"] = png_compression
    if fmt == "TIFF":
        params["compression"] = "tiff_deflate"
    buffer = io.BytesIO()
    try:
        image.save(buffer, fmt, **params)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        if fmt != "TIFF" or not exif:
            raise
        # libtiff refuses some EXIF entries that Pillow read ("Error setting from dictionary"): the picture is
        # written without them rather than not at all
        notes.append(f"EXIF entries that libtiff refused were not carried ({str(exc)[:100]})")
        params["exif"] = _tiff_directory(None, meta, notes)
        buffer = io.BytesIO()
        image.save(buffer, fmt, **params)
    if fmt == "JPEG":
        return splice_into_jpeg(buffer.getvalue(), jpeg_segments(meta)), notes
    return buffer.getvalue(), notes


def _metadata_for_output(picture: Picture, notes: list[str]) -> tuple[PhotoMetadata, bytes | None]:
    """XMP and IPTC to write, and the EXIF block, each saying the output's size (EXIF's thumbnail left out); an
    EXIF block that cannot be re-laid out is left out with a note, never failing the picture."""
    width, height = picture.size
    meta = PhotoMetadata(for_output(picture.xmp, width, height), picture.iptc)
    try:
        exif = exif_for_output(picture.exif, width, height)
    except Exception as exc:
        _left_out("EXIF could not be re-written", exc, notes)
        exif = None
    return meta, exif


_LARGEST_SIDE = {"WEBP": 16383, "JPEG": 65535, "AVIF": 65535, "HEIF": 65535}
"""Formats whose pictures cannot be wider or taller than this many pixels."""


def _check_fits_format(picture: Picture, fmt: str) -> None:
    """Refuse, before encoding, an output the format cannot hold (its encoder would raise a bare ValueError)."""
    largest = _LARGEST_SIDE.get(fmt)
    width, height = picture.size
    if largest is not None and max(width, height) > largest:
        raise ImageError(fmt, f"the output is {width}x{height}, and {fmt} holds at most {largest:,} pixels a side; "
                              "choose another --format (png, tiff) or a smaller --scale")


_SUB_DIRECTORIES = {0x8769: "camera settings (the Exif sub-directory)", 0x8825: "GPS position"}


def _tiff_directory(exif: bytes | None, meta: PhotoMetadata, notes: list[str]) -> Image.Exif:
    """Pillow's TIFF writer takes one directory of extra tags: the EXIF entries, plus XMP and IPTC. libtiff, which
    compresses, cannot be given EXIF's sub-directories (Pillow fails with "Error setting from dictionary"): those
    stay out, with a warning (XMP usually repeats them)."""
    directory = Image.Exif()
    if exif:
        directory.load(exif)
    for tag, what in _SUB_DIRECTORIES.items():
        if tag in directory:
            if directory.get_ifd(tag):  # an empty one is no loss
                notes.append(f"TIFF output: EXIF {what} not carried")
            del directory[tag]
    directory.update(tiff_tags(meta))
    return directory


ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never a half-grey output
