"""TIFF directories read for what they are: entries at known byte positions, not values in a dictionary.

EXIF is a small TIFF file, and a maker note inside it may point anywhere in that file, by offsets only its
vendor knows (Minolta's and old Olympus's count from the TIFF header). Whoever re-lays such a block out moves
the maker note and breaks them. So the blocks here are read only far enough to find each entry's twelve bytes:
`exif_block` patches values where they lie, `tiff_output` copies entries verbatim. Reading is bounded: each
directory is read once, its entries lie inside the block, and a loop of links ends at the first repeat.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
"""Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ..., IFD)."""
SHORT, LONG = 3, 4
ENTRY_SIZE = 12


@dataclass(frozen=True)
class Entry:
    """One directory entry: its tag, type and count, and where its twelve bytes start in the block."""

    tag: int
    type: int
    count: int
    at: int
    value_at: int
    """Where the value's bytes start: inside the entry when they fit in four bytes, else at the entry's offset."""

    @property
    def size(self) -> int:
        return TYPE_SIZES.get(self.type, 1) * self.count


@dataclass(frozen=True)
class Directory:
    """A directory (IFD): where it starts, its entries by tag, and where its link to the next one lies."""

    at: int
    entries: dict[int, Entry]
    next_link_at: int

    @property
    def end(self) -> int:
        """The byte after the next-directory link."""
        return self.next_link_at + 4


class Layout:
    """A TIFF block's byte order and directories, read from ``data`` (the TIFF header first); ValueError where the
    block is not a TIFF structure this can patch safely."""

    def __init__(self, data: bytes | bytearray) -> None:
        if len(data) < 8 or data[:4] not in (b"II*\x00", b"MM\x00*"):
            raise ValueError("not a TIFF header")
        self.data = data
        self.order = "<" if data[:2] == b"II" else ">"
        self._seen: set[int] = set()

    def number(self, fmt: str, at: int) -> int:
        return struct.unpack_from(self.order + fmt, self.data, at)[0]

    def first_directory_at(self) -> int:
        return self.number("I", 4)

    def directory(self, at: int) -> Directory:
        """The directory at ``at``; ValueError where it lies outside the block or was read before (a loop)."""
        if at in self._seen or at < 8 or at + 2 > len(self.data):
            raise ValueError(f"directory at {at} is outside the block or repeats")
        self._seen.add(at)
        count = self.number("H", at)
        next_link_at = at + 2 + ENTRY_SIZE * count
        if next_link_at + 4 > len(self.data):
            raise ValueError(f"directory at {at} runs past the block")
        entries = {}
        for position in range(at + 2, next_link_at, ENTRY_SIZE):
            tag, kind, count_of = struct.unpack_from(self.order + "HHI", self.data, position)
            size = TYPE_SIZES.get(kind, 1) * count_of
            value_at = position + 8 if size <= 4 else self.number("I", position + 8)
            entries.setdefault(tag, Entry(tag, kind, count_of, position, value_at))
        return Directory(at, entries, next_link_at)

    def linked(self, directory: Directory, tag: int) -> Directory | None:
        """The sub-directory an entry points to (Exif, GPS, Interoperability), or None where there is none."""
        entry = directory.entries.get(tag)
        if entry is None or entry.type not in (LONG, 13) or entry.count != 1:
            return None
        return self.directory(self.number("I", entry.value_at))

    def value_bytes(self, entry: Entry) -> bytes:
        """The entry's value as stored (in this block's byte order); ValueError where it lies outside the block."""
        if entry.value_at + entry.size > len(self.data):
            raise ValueError(f"tag {entry.tag}'s value lies outside the block")
        return bytes(self.data[entry.value_at:entry.value_at + entry.size])

    def numbers(self, entry: Entry) -> list[int]:
        """A SHORT or LONG entry's values."""
        fmt = {SHORT: "H", LONG: "I"}[entry.type]
        return list(struct.unpack(self.order + fmt * entry.count, self.value_bytes(entry)))
