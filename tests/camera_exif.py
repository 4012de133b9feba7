"""EXIF blocks laid out as cameras lay them out, built here from the TIFF and EXIF specifications (not by the code
under test, and not by Pillow, whose writer lays blocks out its own way).

A camera's block has gaps and its own order (IFD0, a gap, the Exif directory, the maker note, GPS, the
thumbnail), and maker notes whose offsets count from the TIFF header (Minolta's bare directory, old Olympus's
``OLYMP`` one). Any program that re-lays such a block out moves the maker note and breaks those offsets; exiv2
decodes the maker notes, so a test can read every maker-note tag before and after.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 1, 2, 3, 4, 5, 7


@dataclass
class Directory:
    """Entries (tag -> (type, values)); a value may be the name of another item, whose offset it becomes."""

    entries: dict[int, tuple[int, object]]
    header: bytes = b""  # bytes before the directory (a maker note's signature)
    links: dict[int, str] = field(default_factory=dict)  # tag -> the item whose offset the entry holds


def _values(kind: int, value: object, order: str) -> bytes:
    if kind == ASCII:
        return value.encode() + b"\x00"
    if kind in (BYTE, UNDEFINED):
        return bytes(value)
    if kind == RATIONAL:
        return b"".join(struct.pack(order + "II", *pair) for pair in value)
    fmt = {SHORT: "H", LONG: "I"}[kind]
    return struct.pack(order + fmt * len(value), *value)


def _size(item: Directory | bytes) -> int:
    if isinstance(item, bytes):
        return len(item)
    values = sum(len(_values(k, v, "<")) + 1 for k, v in item.entries.values() if len(_values(k, v, "<")) > 4)
    return len(item.header) + 2 + 12 * (len(item.entries) + len(item.links)) + 4 + values


def build(order: str, items: list[tuple[str, Directory | bytes]], next_of: dict[str, str] | None = None) -> bytes:
    """A TIFF block (no ``Exif`` prefix) holding ``items`` in the given order at even offsets, IFD0 first among
    the directories; ``next_of`` links a directory to the next (IFD0 -> IFD1)."""
    next_of = next_of or {}
    offsets, sizes, at = {}, {}, 8
    for name, item in items:
        offsets[name], sizes[name] = at, _size(item)
        at += _size(item) + (_size(item) & 1)
    out = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "I", offsets["ifd0"]))
    for name, item in items:
        out += bytes(offsets[name] - len(out))
        out += item if isinstance(item, bytes) else _directory(item, offsets[name], (offsets, sizes),
                                                               next_of.get(name), order)
    return bytes(out)


def _directory(item: Directory, at: int, layout: tuple[dict[str, int], dict[str, int]], next_name: str | None,
               order: str) -> bytes:
    offsets, sizes = layout
    rows = {tag: (kind, _values(kind, value, order), _count(kind, value))
            for tag, (kind, value) in item.entries.items()}
    for tag, name in item.links.items():  # a sub-directory's offset; the maker note's as an UNDEFINED blob
        kind, count = (UNDEFINED, sizes[name]) if tag == 0x927C else (LONG, 1)
        rows[tag] = (kind, b"", count, offsets[name])
    start = at + len(item.header)
    values_at = start + 2 + 12 * len(rows) + 4
    head, tail = b"", b""
    for tag in sorted(rows):
        kind, data, count, *linked = rows[tag]
        if linked:
            head += struct.pack(order + "HHII", tag, kind, count, linked[0])
        elif len(data) <= 4:
            head += struct.pack(order + "HHI", tag, kind, count) + data.ljust(4, b"\x00")
        else:
            head += struct.pack(order + "HHII", tag, kind, count, values_at + len(tail))
            tail += data + bytes(len(data) & 1)
    link = offsets[next_name] if next_name else 0
    return item.header + struct.pack(order + "H", len(rows)) + head + struct.pack(order + "I", link) + tail


def _count(kind: int, value: object) -> int:
    if kind == ASCII:
        return len(value) + 1
    return len(value)


# --- a camera's block --------------------------------------------------------------------------------------

OLYMPUS_SERIAL = "OLY-SERIAL-0042-LENS"
MINOLTA_NOTE = bytes(range(40, 80))


def camera_block(make: str, order: str = ">", gps: bool = True, image_size: tuple[int, int] | None = None) -> bytes:
    """An EXIF block as an Olympus E-1 (``OLYMPUS OPTICAL CO.,LTD``) or a Minolta (``Minolta``) writes it: IFD0,
    a gap, the Exif directory, a maker note with header-relative offsets, GPS, and a thumbnail directory."""
    ifd0 = {0x010F: (ASCII, make), 0x0110: (ASCII, "E-1 / DiMAGE"), 0x0112: (SHORT, [1]),
            0x0131: (ASCII, "camera firmware 1.0"), 0x0132: (ASCII, "2024:05:01 13:45:00")}
    if image_size:
        ifd0.update({0x0100: (SHORT, [image_size[0]]), 0x0101: (SHORT, [image_size[1]])})
    links = {0x8769: "exif"} | ({0x8825: "gps"} if gps else {})
    photo = {0x9003: (ASCII, "2024:05:01 13:45:00"), 0x829A: (RATIONAL, [(1, 250)]), 0x8827: (SHORT, [200]),
             0x920A: (RATIONAL, [(50, 1)]), 0xA002: (SHORT, [64]), 0xA003: (SHORT, [48])}
    items: list[tuple[str, Directory | bytes]] = [
        ("ifd0", Directory(ifd0, links=links)),
        ("gap", bytes(96)),  # cameras leave room; a re-layout closes it and moves everything after
        ("exif", Directory(photo, links={0x927C: "makernote"})),
        ("makernote", _maker_note(make)),
    ]
    if gps:
        items.append(("gps", Directory({0x0000: (BYTE, [2, 3, 0, 0]), 0x0001: (ASCII, "N"),
                                        0x0002: (RATIONAL, [(52, 1), (31, 1), (1234, 100)]), 0x0003: (ASCII, "E"),
                                        0x0004: (RATIONAL, [(13, 1), (24, 1), (5678, 100)])})))
    items.append(("ifd1", Directory({0x0103: (SHORT, [6]), 0x0201: (LONG, [0]), 0x0202: (LONG, [0])})))
    return build(order, items, {"ifd0": "ifd1"})


def _maker_note(make: str) -> Directory:
    if make.startswith("OLYMPUS"):
        return Directory({0x0200: (LONG, [0, 1, 2]), 0x0201: (SHORT, [2]), 0x0207: (ASCII, "SX756"),
                          0x0209: (UNDEFINED, list(OLYMPUS_SERIAL.encode().ljust(32, b"\x00")))},
                         header=b"OLYMP\x00\x01\x00")
    return Directory({0x0000: (UNDEFINED, list(b"MLT0")), 0x0101: (LONG, [1]), 0x0102: (LONG, [2]),
                      0x0E00: (UNDEFINED, list(MINOLTA_NOTE))})


def makernote_span(block: bytes) -> tuple[int, int]:
    """(offset, length) of the maker note in a block, read by walking IFD0 and the Exif directory."""
    order = "<" if block[:2] == b"II" else ">"

    def entries(at: int) -> dict[int, tuple[int, int, int]]:
        (count,) = struct.unpack_from(order + "H", block, at)
        rows = [struct.unpack_from(order + "HHII", block, at + 2 + 12 * i) for i in range(count)]
        return {tag: (kind, n, value) for tag, kind, n, value in rows}

    ifd0 = entries(struct.unpack_from(order + "I", block, 4)[0])
    photo = entries(ifd0[0x8769][2])
    _, length, offset = photo[0x927C]
    return offset, length
