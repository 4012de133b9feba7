"""EXIF carried byte for byte, with only what the upscale changed patched where it lies.

The camera's block travels as it was written, so every maker note keeps its offsets (those of Minolta, old
Olympus, Ricoh and Panasonic count from the TIFF header and break when the block is re-laid out). What must
change is written in place: the orientation becomes 1 (the pixels are upright now), the pixel dimensions
(IFD0's ImageWidth/ImageLength where a camera wrote them, the Exif directory's PixelX/YDimension) say the new
size, and the link to the thumbnail directory (IFD1, a picture of the old pixels, stored unturned) is cut.
Every change fits in place: a SHORT too small for the new size becomes a LONG in the same four bytes.
With ``drop_location`` the GPS directory is removed: its pointer taken out of IFD0 and its bytes zeroed, so
the position is not left behind in the file.
"""

from __future__ import annotations

import struct

from .tiff_directory import LONG, SHORT, Directory, Layout

PREFIX = b"Exif\x00\x00"
"""What JPEG's APP1 (and Pillow's ``exif`` bytes) put before the TIFF header."""
EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
ORIENTATION, IMAGE_WIDTH, IMAGE_LENGTH = 0x0112, 0x0100, 0x0101
PIXEL_X, PIXEL_Y = 0xA002, 0xA003


def without_prefix(exif: bytes) -> bytes:
    """The TIFF structure of an EXIF block, whichever way a container stored it."""
    return exif[len(PREFIX):] if exif.startswith(PREFIX) else exif


def byte_order(exif: bytes) -> str:
    """``<`` or ``>``: the block's byte order (a TIFF that embeds the block must share it)."""
    return "<" if without_prefix(exif)[:2] == b"II" else ">"


def readable(exif: bytes) -> bool:
    """Whether the block's directories can be read (and so patched in place)."""
    try:
        _read(bytearray(without_prefix(exif)))
        return True
    except (ValueError, struct.error):
        return False


def for_output(exif: bytes, width: int, height: int, drop_location: bool = False) -> bytes:
    """The block (with the ``Exif`` prefix) for a picture now ``width`` x ``height`` and upright; ValueError where
    its directories cannot be read."""
    data = bytearray(without_prefix(exif))
    try:
        layout, ifd0, photo = _read(data)
        _set_number(layout, ifd0, ORIENTATION, 1)
        _set_number(layout, ifd0, IMAGE_WIDTH, width)
        _set_number(layout, ifd0, IMAGE_LENGTH, height)
        if photo is not None:
            _set_number(layout, photo, PIXEL_X, width)
            _set_number(layout, photo, PIXEL_Y, height)
        struct.pack_into(layout.order + "I", data, ifd0.next_link_at, 0)  # the thumbnail directory, unlinked
        if drop_location:
            _remove_gps(layout, ifd0)
    except struct.error as exc:
        raise ValueError(str(exc)) from None
    return PREFIX + bytes(data)


def _read(data: bytearray) -> tuple[Layout, Directory, Directory | None]:
    layout = Layout(data)
    ifd0 = layout.directory(layout.first_directory_at())
    return layout, ifd0, layout.linked(ifd0, EXIF_IFD)


def _set_number(layout: Layout, directory: Directory, tag: int, value: int) -> None:
    """Write a one-value SHORT or LONG entry's value where it lies (a SHORT too small becomes a LONG)."""
    entry = directory.entries.get(tag)
    if entry is None or entry.count != 1 or entry.type not in (SHORT, LONG):
        return
    if entry.type == SHORT and value > 0xFFFF:
        struct.pack_into(layout.order + "HI", layout.data, entry.at + 2, LONG, 1)
        struct.pack_into(layout.order + "I", layout.data, entry.at + 8, value)
    elif entry.type == SHORT:
        struct.pack_into(layout.order + "H", layout.data, entry.at + 8, value)
    else:
        struct.pack_into(layout.order + "I", layout.data, entry.at + 8, value)


def _remove_gps(layout: Layout, ifd0: Directory) -> None:
    """Zero the GPS directory and its values, and take its pointer out of IFD0 (the entries after it move up)."""
    pointer = ifd0.entries.get(GPS_IFD)
    if pointer is None:
        return
    try:
        gps = layout.linked(ifd0, GPS_IFD)
    except ValueError:
        gps = None
    data = layout.data
    if gps is not None:
        for entry in gps.entries.values():
            if entry.value_at >= gps.end and entry.value_at + entry.size <= len(data):
                data[entry.value_at:entry.value_at + entry.size] = bytes(entry.size)
        data[gps.at:gps.end] = bytes(gps.end - gps.at)
    count = len(range(ifd0.at + 2, ifd0.next_link_at, 12))
    following = bytes(data[pointer.at + 12:ifd0.end])  # later entries and the next-directory link
    data[pointer.at:pointer.at + len(following)] = following
    data[ifd0.end - 12:ifd0.end] = bytes(12)
    struct.pack_into(layout.order + "H", data, ifd0.at, count - 1)
