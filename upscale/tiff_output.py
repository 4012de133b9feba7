"""TIFF outputs that keep the camera's Exif and GPS directories, maker notes included, byte for byte.

A TIFF's EXIF is not a block of its own: IFD0 points to the Exif and GPS directories by offsets from the file's
start. So the source's EXIF block (a small TIFF itself) is placed at the very start of the output, its bytes at
the offsets they had, and every offset inside it stays true, a maker note's own included. The picture, encoded
by tifffile in the block's byte order, follows it with its offsets moved; a new IFD0 at the end holds tifffile's
entries and the camera's IFD0 entries (Make, Model, the pointers to the Exif and GPS directories) verbatim.
"""

from __future__ import annotations

import io
import struct

import numpy as np

from .exif_block import byte_order, without_prefix
from .photo_metadata import TIFF_IPTC, PhotoMetadata, tiff_tags
from .tiff_directory import ENTRY_SIZE, LONG, Entry, Layout

_OFFSETS = (273, 324)  # StripOffsets, TileOffsets: where tifffile's pixels lie
_PICTURE_TAGS = frozenset((254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324,
                           325, 338, 339, 340, 341, 513, 514, 530, 531, 532, 700, 33723, 34377, 34675))
"""IFD0 tags that describe the stored picture or hold blocks written from `PhotoMetadata`: the camera's are not
copied (they would describe the source's pixels)."""


def write_tiff(planes: np.ndarray, icc: bytes | None, meta: PhotoMetadata, exif: bytes | None,
               dpi: tuple[float, float] | None) -> bytes:
    """A deflate-compressed TIFF of HxWxC ``planes`` (uint8 or uint16; alpha last for 2 or 4 planes) with the
    ICC profile, XMP, IPTC, Photoshop resources, resolution and EXIF (`exif_block.for_output`'s bytes)."""
    import tifffile  # imported only when a TIFF is written

    buffer = io.BytesIO()
    extratags = [_extratag(tag, block) for tag, block in tiff_tags(meta).items()]
    resolution = {"resolution": dpi, "resolutionunit": "INCH"} if dpi else {}
    data = planes[..., 0] if planes.shape[2] == 1 else planes  # tifffile reads HxWx1 as a stack of 1-pixel rows
    tifffile.imwrite(buffer, data, photometric="rgb" if planes.shape[2] >= 3 else "minisblack",
                     compression="zlib", extrasamples=["unassalpha"] if planes.shape[2] in (2, 4) else None,
                     iccprofile=icc, extratags=extratags, byteorder=byte_order(exif) if exif else "<",
                     metadata=None, software=False, **resolution)
    encoded = buffer.getvalue()
    return with_exif(encoded, without_prefix(exif)) if exif else encoded


def _extratag(tag: int, block: bytes) -> tuple[int, int, int, bytes, bool]:
    """A tifffile extra tag of the type readers expect: IPTC as LONGs (its bytes as they are, zero-padded to a
    multiple of four, as Photoshop writes it), XMP and Photoshop's resources as BYTEs."""
    if tag == TIFF_IPTC:
        block += bytes(-len(block) % 4)
        return tag, 4, len(block) // 4, block, True
    return tag, 1, len(block), block, True


def with_exif(picture: bytes, exif: bytes) -> bytes:
    """``picture`` (a one-page classic TIFF in ``exif``'s byte order) with the EXIF block's bytes at the start
    and an IFD0 that joins both; ValueError where either cannot be read."""
    source, camera = Layout(picture), Layout(exif)
    if source.order != camera.order:
        raise ValueError("the EXIF block and the picture differ in byte order")
    picture_ifd = source.directory(source.first_directory_at())
    camera_ifd = camera.directory(camera.first_directory_at())
    base = _even(len(exif))
    shift = base - 8
    own = {tag: _moved(source, entry, shift) for tag, entry in picture_ifd.entries.items()}
    kept = {tag: bytes(exif[e.at:e.at + ENTRY_SIZE]) for tag, e in camera_ifd.entries.items()
            if tag not in _PICTURE_TAGS and tag not in own}
    body = exif + bytes(base - len(exif)) + picture[8:]
    body += bytes(_even(len(body)) - len(body))
    directory = _directory(source.order, len(body), own, kept)
    if len(body) + len(directory) >= 1 << 32:
        raise ValueError("over 4 GB: a classic TIFF cannot point past it")
    header = exif[:4] + struct.pack(source.order + "I", len(body))
    return header + body[8:] + directory


def _even(n: int) -> int:
    return n + (n & 1)


def _moved(layout: Layout, entry: Entry, shift: int) -> tuple[int, int, bytes]:
    """(type, count, value bytes) of one of tifffile's entries, its pixel offsets moved by ``shift``."""
    if entry.tag in _OFFSETS:
        moved = [value + shift for value in layout.numbers(entry)]
        return LONG, entry.count, struct.pack(layout.order + "I" * len(moved), *moved)
    return entry.type, entry.count, layout.value_bytes(entry)


def _directory(order: str, at: int, own: dict[int, tuple[int, int, bytes]], kept: dict[int, bytes]) -> bytes:
    """An IFD placed at ``at``: ``own`` entries with their values after it, ``kept`` entries' twelve bytes as they
    were (their offsets point into the EXIF block, where it still lies), sorted by tag as TIFF wants."""
    tags = sorted(set(own) | set(kept))
    values_at = at + 2 + ENTRY_SIZE * len(tags) + 4
    entries, values = b"", b""
    for tag in tags:
        if tag in kept:
            entries += kept[tag]
            continue
        kind, count, value = own[tag]
        if len(value) <= 4:
            entries += struct.pack(order + "HHI", tag, kind, count) + value.ljust(4, b"\x00")
        else:
            entries += struct.pack(order + "HHII", tag, kind, count, values_at + len(values))
            values += value + bytes(len(value) & 1)
    return struct.pack(order + "H", len(tags)) + entries + struct.pack(order + "I", 0) + values
