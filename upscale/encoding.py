"""Image files out: a `Picture` encoded in the chosen format, with what it carries from its source.

What travels (``--metadata all``, the default): the ICC profile; EXIF byte for byte with the new size,
orientation 1 and no thumbnail patched in place (`exif_block`); XMP with the new size (`xmp_packet`); IPTC,
or IPTC inside XMP where the format holds no IPTC (`iptc_xmp`); Photoshop's resources; the resolution (DPI),
unchanged, so a picture upscaled 2x prints twice as large at the same DPI. ``no-location`` removes GPS from
EXIF and XMP; ``minimal`` keeps only the colour profile (orientation is in the pixels). Every block a format
cannot hold is named in a warning. Writes are atomic: a temporary file beside the target, then a rename.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from . import exif_block, iptc_xmp, xmp_packet
from .errors import ImageError, first_line
from .files import Publication, open_atomic, write_atomic
from .formats import encode_deep_heif
from .images import DEFAULT_PNG_COMPRESSION, Picture, as_rgb
from .photo_metadata import HOLDS, PhotoMetadata, splice_into_jpeg
from .pixels import uint16_to_uint8
from .png import write_png
from .tiff_output import write_tiff

METADATA_CHOICES = ("all", "no-location", "minimal")
"""What ``--metadata`` may keep: everything, everything but the location, or the colour profile alone."""
_JPEG_EXIF_LIMIT = 65533 - len(exif_block.PREFIX)  # one APP1 segment


@dataclass(frozen=True)
class Carried:
    """What an output carries besides its pixels, each block already saying the output's size."""

    meta: PhotoMetadata
    exif: bytes | None
    icc: bytes | None
    dpi: tuple[float, float] | None


def write_picture(path: Path, picture: Picture, fmt: str, quality: int = 95,
                  png_compression: int = DEFAULT_PNG_COMPRESSION, publication: Publication | None = None,
                  metadata: str = "all") -> tuple[int, list[str]]:
    """Write ``picture`` to ``path`` atomically in format ``fmt`` (or staged for ``publication``); (bytes written,
    warnings about what the format lost). PNG streams band by band from the arrays (`png.write_png`): no copy of
    the image is made."""
    if fmt == "PNG":  # no side limit (`_check_fits_format`, which `encode` applies to the others)
        notes: list[str] = []
        carried = carried_to(picture, fmt, metadata, notes)
        with open_atomic(path, publication) as f:
            size = _write_png(f, picture, carried, png_compression)
        return size, notes
    data, notes = encode(picture, fmt, quality, png_compression, metadata)
    write_atomic(path, data, publication)
    return len(data), notes


def encode(picture: Picture, fmt: str, quality: int = 95, png_compression: int = DEFAULT_PNG_COMPRESSION,
           metadata: str = "all") -> tuple[bytes, list[str]]:
    """The bytes of ``picture`` in Pillow format ``fmt``, and any warnings about what the format lost."""
    _check_fits_format(picture, fmt)
    notes: list[str] = []
    carried = carried_to(picture, fmt, metadata, notes)
    if fmt == "PNG":
        buffer = io.BytesIO()
        _write_png(buffer, picture, carried, png_compression)
        return buffer.getvalue(), notes
    if fmt == "TIFF":
        return _tiff(picture, carried, notes), notes
    pixels, alpha = _pixels_for(picture, fmt, notes)
    if fmt == "HEIF" and pixels.dtype == np.uint16:
        colour = as_rgb(pixels)
        planes = colour if alpha is None else np.concatenate([colour, alpha[..., None]], axis=2)
        return encode_deep_heif(planes, quality, carried.exif, carried.meta.xmp, carried.icc), notes
    buffer = io.BytesIO()
    _pillow_image(pixels, alpha, fmt).save(buffer, fmt, **_pillow_params(fmt, carried, quality, notes))
    if fmt == "JPEG":
        return splice_into_jpeg(buffer.getvalue(), carried.meta), notes
    return buffer.getvalue(), notes


def carried_to(picture: Picture, fmt: str, metadata: str, notes: list[str]) -> Carried:
    """The blocks an output in ``fmt`` carries under ``--metadata`` ``metadata``, each saying the new size; a
    block that cannot be updated is left out with a note, never failing the picture."""
    if metadata == "minimal":
        return Carried(PhotoMetadata(), None, picture.icc_profile, None)
    width, height = picture.size
    drop_location = metadata == "no-location"
    xmp = xmp_packet.for_output(picture.xmp, width, height, drop_location)
    iptc = picture.iptc
    if iptc and "IPTC" not in HOLDS.get(fmt, ()) and "XMP" in HOLDS.get(fmt, ()):
        xmp = iptc_xmp.merged(xmp, iptc, PhotoMetadata(resources=picture.resources).iptc_digest)
        iptc = None  # carried, inside XMP: nothing to warn about
    meta = PhotoMetadata(xmp, iptc, picture.resources)
    notes += meta.lost_in(fmt)
    exif = None
    if picture.exif:
        try:
            exif = exif_block.for_output(picture.exif, width, height, drop_location)
        except ValueError as exc:
            notes.append(f"EXIF could not be re-written, not carried ({first_line(exc)[:120]})")
    if fmt == "BMP" and exif:
        notes.append("BMP holds no EXIF: the source's EXIF metadata was not carried")
    return Carried(meta, exif, picture.icc_profile, picture.dpi)


def _write_png(out, picture: Picture, carried: Carried, png_compression: int) -> int:
    return write_png(out, picture.pixels, picture.alpha, carried.icc, carried.exif, png_compression, carried.meta,
                     carried.dpi)


def _tiff(picture: Picture, carried: Carried, notes: list[str]) -> bytes:
    """TIFF through `tiff_output`, at the picture's own depth; without EXIF (and a note) where it cannot join."""
    planes = picture.pixels if picture.alpha is None else np.concatenate([picture.pixels, picture.alpha[..., None]],
                                                                         axis=2)
    try:
        return write_tiff(planes, carried.icc, carried.meta, carried.exif, carried.dpi)
    except ValueError as exc:
        notes.append(f"EXIF could not be written into the TIFF, not carried ({first_line(exc)[:120]})")
        return write_tiff(planes, carried.icc, carried.meta, None, carried.dpi)


def _pixels_for(picture: Picture, fmt: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
    """Pixels and alpha as ``fmt`` can hold them: alpha dropped for JPEG and BMP, 16 bits reduced to 8 except for
    HEIF (which `formats.encode_deep_heif` writes at 10 or 12 bits)."""
    pixels, alpha = picture.pixels, picture.alpha
    if fmt == "JPEG" and alpha is not None:
        notes.append("JPEG has no alpha channel: transparency dropped")
        alpha = None
    if pixels.dtype == np.uint16 and fmt != "HEIF":
        notes.append(f"{fmt} holds 8 bits per channel: 16-bit precision reduced")
        pixels = uint16_to_uint8(pixels)
        alpha = None if alpha is None else uint16_to_uint8(alpha)
    if fmt == "BMP" and alpha is not None and pixels.shape[2] == 1:
        alpha = None  # BMP has no grey+alpha
    return pixels, alpha


def _pillow_image(pixels: np.ndarray, alpha: np.ndarray | None, fmt: str) -> Image.Image:
    planes = pixels if alpha is None else np.concatenate([pixels, alpha[..., None]], axis=2)
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[planes.shape[2]]
    return Image.fromarray(planes[..., 0] if mode == "L" else planes, mode)


def _pillow_params(fmt: str, carried: Carried, quality: int, notes: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    if carried.icc and fmt != "BMP":
        params["icc_profile"] = carried.icc
    exif = carried.exif
    if exif and fmt == "JPEG" and len(exif) > _JPEG_EXIF_LIMIT:
        notes.append(f"EXIF of {len(exif):,} bytes is over one JPEG segment: not carried")
        exif = None
    if exif and fmt != "BMP":
        params["exif"] = exif
    if carried.meta.xmp and fmt in ("WEBP", "AVIF", "HEIF"):
        params["xmp"] = carried.meta.xmp
    if carried.dpi and fmt == "JPEG":
        params["dpi"] = carried.dpi
    if fmt in ("JPEG", "WEBP", "AVIF", "HEIF", "JXL"):
        params["quality"] = quality
    return params


_LARGEST_SIDE = {"WEBP": 16383, "JPEG": 65535, "AVIF": 65535, "HEIF": 65535}
"""Formats whose pictures cannot be wider or taller than this many pixels."""


def _check_fits_format(picture: Picture, fmt: str) -> None:
    """Refuse, before encoding, an output the format cannot hold (its encoder would raise a bare ValueError)."""
    largest = _LARGEST_SIDE.get(fmt)
    width, height = picture.size
    if largest is not None and max(width, height) > largest:
        raise ImageError(fmt, f"the output is {width}x{height}, and {fmt} holds at most {largest:,} pixels a side; "
                              "choose another --format (png, tiff) or a smaller --scale")
