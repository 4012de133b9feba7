"""Image files in: every Pillow-readable file becomes plain arrays plus the metadata to carry (`images.Picture`).

Bit depth comes from the file's mode, never from pixel values; orientation is applied to the pixels; EXIF is
kept as the camera wrote it (patched at output, `exif_block`); a file that cannot be read raises ImageError
with the cause, and metadata that cannot be read is left out with a note, never failing the picture.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from . import exif_block
from .deep_color import deep_color_rawmode, is_tiff, read_deep_color, read_tiff
from .errors import ImageError, first_line
from .evidence import jpeg_quality
from .formats import read_deep_heif
from .images import (
    _DECODE_ERRORS,
    _ORIENTATION_TAG,
    _TIFFFILE_ERRORS,
    DEFAULT_MAX_PIXELS,
    Picture,
    _check_plugin,
    _orientation,
    _turned_by_pillow,
    apply_orientation,
    describe_error,
)
from .jpeg_scan import scan_data
from .photo_metadata import (
    TIFF_IPTC,
    TIFF_PHOTOSHOP,
    TIFF_XMP,
    PhotoMetadata,
    from_jpeg_segments,
    from_png_text,
    from_tiff_tags,
)
from .trailers import iptc_in_trailer


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
    """Pixels turned upright, and the metadata to carry; the metadata is read from the file as opened (a CMYK
    picture converted to sRGB is a new image, without the file's segments)."""
    notes: list[str] = []
    frames = _frames_note(path, im)
    if frames:
        notes.append(frames)
    deep = deep_color_rawmode(im)  # before getexif(), which may decode the pixels to find EXIF
    exif = _exif_of(im, notes)
    source_format = im.format
    orientation = 1 if _turned_by_pillow(source_format) else _orientation(exif)
    whole = path.read_bytes() if source_format in ("JPEG", "MPO") else b""  # read once: data check, trailers
    if whole:
        _check_jpeg_data(path, whole)
    pixels, alpha, icc = _pixels_of(path, im, deep, notes)
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
    meta = _photo_metadata(path, im, source_format, notes, whole)
    carried = _exif_to_carry(im, exif, source_format, notes)
    return Picture(pixels, alpha, icc, carried, source_format, notes, quality, meta.xmp, meta.iptc, meta.resources,
                   _dpi(im))


def _pixels_of(path: Path, im: Image.Image, deep: str | None,
               notes: list[str]) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """(colour, alpha, ICC profile) as stored: 16-bit layouts read at full depth, Pillow's many modes brought
    down to grey, RGB and their alpha (CMYK through its profile to sRGB, which then has no profile to carry)."""
    icc = im.info.get("icc_profile") or None
    if im.format == "HEIF" and im.info.get("bit_depth", 8) > 8:
        data = read_deep_heif(path)
    elif deep:
        data = read_deep_color(path, deep)
    else:
        im.load()
        note = _depth_reduced(im)
        if note:
            notes.append(note)
        converted = _normalise_mode(im, notes)
        if converted.mode == "CMYK":
            converted, icc = _cmyk_to_rgb(converted, icc), None
        data = _planes(converted)
    has_alpha = data.shape[2] in (2, 4)
    return (data[..., :-1], data[..., -1], icc) if has_alpha else (data, None, icc)


def _planes(im: Image.Image) -> np.ndarray:
    """HxWxC samples of an image in one of the normalised modes (grey, grey+alpha, RGB, RGBA, 16-bit grey)."""
    data = np.asarray(im)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return np.clip(data, 0, 65535).astype(np.uint16)[..., None]
    return data[..., None] if data.ndim == 2 else data


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


def _exif_to_carry(im: Image.Image, exif: Image.Exif, source_format: str | None, notes: list[str]) -> bytes | None:
    """The EXIF block as the file holds it, to be patched in place at output (`exif_block`): maker notes keep
    their offsets. A TIFF's EXIF is its first directory, read by Pillow; so is a block our reader cannot walk."""
    raw = im.info.get("exif")
    if source_format != "TIFF" and isinstance(raw, bytes) and exif_block.readable(raw):
        return raw
    return _exif_bytes(exif, notes)


def _exif_bytes(exif: Image.Exif, notes: list[str]) -> bytes | None:
    """The EXIF block Pillow lays out from what it read, or None (with a note) where it cannot write it."""
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


def _check_jpeg_data(path: Path, whole: bytes) -> None:
    """Refuse a JPEG whose compressed data is too short for its stated size (`jpeg_scan`): libjpeg would fill
    the rest with grey without an error."""
    found = scan_data(whole)
    if found is not None and found.present_share < 1.0:
        raise ImageError(path, f"the compressed data ends early: {found.entropy_bytes:,} bytes can hold at most "
                               f"{found.present_share:.1%} of its {found.width}x{found.height} pixels (the rest "
                               "would be flat grey)")


def _photo_metadata(path: Path, im: Image.Image, source_format: str | None, notes: list[str],
                    whole: bytes) -> PhotoMetadata:
    """XMP and IPTC, where each format keeps them; blocks that cannot be read are left out with a note."""
    try:
        return _read_photo_metadata(path, im, source_format, whole)
    except Exception as exc:
        _left_out("XMP/IPTC unreadable", exc, notes)
        return PhotoMetadata()


def _read_photo_metadata(path: Path, im: Image.Image, source_format: str | None, whole: bytes) -> PhotoMetadata:
    if source_format in ("JPEG", "MPO"):
        meta = from_jpeg_segments(getattr(im, "applist", []))
        return meta if meta.iptc else replace(meta, iptc=iptc_in_trailer(whole))
    if source_format == "PNG":
        return from_png_text(im.info)
    if source_format == "TIFF":  # tifffile: Pillow reads tag 33723 as a number
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            xmp, iptc, photoshop = tags.get(TIFF_XMP), tags.get(TIFF_IPTC), tags.get(TIFF_PHOTOSHOP)
            return from_tiff_tags(xmp and xmp.value, iptc and iptc.value, photoshop and photoshop.value)
    return PhotoMetadata(im.info.get("xmp") or None)


# A TIFF's "EXIF" as Pillow reads it is the file's first IFD, with the tags that describe the stored pixels
# (size, samples, strips, compression). Carried into an output of another size they would describe the wrong
# image (a 2x upscale written with the source's width), so only descriptive tags travel.
_TIFF_LAYOUT_TAGS = (254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325,
                     338, 339, 340, 341, 530, 531, 532, 34675, 37724, TIFF_XMP, TIFF_IPTC, TIFF_PHOTOSHOP)
"""Layout tags; Photoshop's layers (37724: the layered document, of the old pixels); and the blocks carried from
`PhotoMetadata` (XMP, IPTC, Photoshop), which would travel twice."""


def _drop_layout_tags(exif: Image.Exif) -> None:
    for tag in _TIFF_LAYOUT_TAGS:
        if tag in exif:
            del exif[tag]
    description = exif.get(270)
    if isinstance(description, str) and description.startswith('{"shape"'):
        del exif[270]  # tifffile's record of the array shape, not a caption


def _dpi(im: Image.Image) -> tuple[float, float] | None:
    """The file's resolution in pixels per inch where it states a usable one (Pillow's ``dpi``)."""
    dpi = im.info.get("dpi")
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    return (x, y) if 0 < x < 1e6 and 0 < y < 1e6 else None


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


