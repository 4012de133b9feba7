"""IPTC stored after a JPEG's end, where some photo desks keep it: FotoStation's trailer and AXS's AFCP.

Neither is read by Pillow or exiv2, so without this their keywords and captions would be dropped without a
word; found here, they travel as the file's IPTC (written where outputs keep IPTC: APP13, TIFF's tag, XMP).

- FotoStation: records laid back to front from the file's end, each its data then a 10-byte footer (tag,
  size with the footer, signature ``A1B2C3D4``, big-endian); record 1 is IPTC.
- AFCP: the last 12 bytes are ``AXS!`` (big-endian) or ``AXS*`` (little-endian) and the position of its
  header; the header counts 12-byte entries (a 4-letter tag, size, absolute offset); tag ``IPTC`` is IPTC.
"""

from __future__ import annotations

import struct

_FOTOSTATION_SIGNATURE = 0xA1B2C3D4
_FOTOSTATION_IPTC = 1
_MOST_RECORDS = 64


def iptc_in_trailer(data: bytes) -> bytes | None:
    """The IPTC block of a FotoStation or AFCP trailer at the end of ``data`` (a whole JPEG file), or None."""
    return _afcp_iptc(data) or _fotostation_iptc(data)


def _fotostation_iptc(data: bytes) -> bytes | None:
    end = len(data)
    for _ in range(_MOST_RECORDS):
        if end < 10:
            return None
        tag, size, signature = struct.unpack(">HII", data[end - 10:end])
        if signature != _FOTOSTATION_SIGNATURE or not 10 <= size <= end:
            return None
        if tag == _FOTOSTATION_IPTC:
            return data[end - size:end - 10] or None
        end -= size
    return None


def _afcp_iptc(data: bytes) -> bytes | None:
    tail = data[-12:]
    if len(tail) < 12 or tail[:4] not in (b"AXS!", b"AXS*"):
        return None
    order = ">" if tail[3:4] == b"!" else "<"
    (start,) = struct.unpack(order + "I", tail[4:8])
    if data[start:start + 4] != tail[:4] or start + 12 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[start + 6:start + 8])
    for at in range(start + 12, min(start + 12 + 12 * count, len(data) - 11), 12):
        tag, size, offset = data[at:at + 4], *struct.unpack(order + "II", data[at + 4:at + 12])
        if tag == b"IPTC" and offset + size <= len(data):
            return data[offset:offset + size] or None
    return None
