"""What photographers write into their files, carried to the output: XMP, IPTC and Photoshop's resources, read
from each container and written into another.

EXIF travels byte for byte (`exif_block`), ICC through Pillow; this module handles the blocks Pillow reads only
in part and writes in few formats: XMP (keywords, captions, ratings, Lightroom's settings), IPTC-IIM (the older
keywords, caption and copyright block) and the other Photoshop image resources beside it (copyright flag, URL,
IPTC digest). They are written by hand, a few markers and chunks each, rather than through a metadata library:
Pillow's own ``xmp=`` stops at one 64 KB JPEG segment and has no IPTC writer, and a C++ library (exiv2) would be
a heavy runtime dependency for what is byte copying.

- JPEG: XMP in APP1 (``http://ns.adobe.com/xap/1.0/``), a packet over one segment as Adobe's extended XMP (a
  standard packet naming the extension's GUID, the whole packet in APP1 ``http://ns.adobe.com/xmp/extension/``
  parts); IPTC as resource 0x0404 among the resources of APP13 ``Photoshop 3.0`` (split over segments when
  long, as Photoshop does).
- PNG: XMP in iTXt ``XML:com.adobe.xmp``; IPTC in zTXt ``Raw profile type iptc`` (ImageMagick's and exiftool's
  convention); no Photoshop resources.
- TIFF: tags 700 (XMP), 33723 (IPTC) and 34377 (Photoshop resources).
- WebP, AVIF, HEIC: XMP only; IPTC goes into it (`iptc_xmp`). JPEG XL (as Pillow's plugin writes it) and BMP: none.

Thumbnail resources (0x0409, 0x040C) are pictures of the old pixels and are left out.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from dataclasses import dataclass

XMP_SIGNATURE = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENDED_SIGNATURE = b"http://ns.adobe.com/xmp/extension/\x00"
PHOTOSHOP_SIGNATURE = b"Photoshop 3.0\x00"
IPTC_RESOURCE, DIGEST_RESOURCE = 0x0404, 0x0425
_THUMBNAIL_RESOURCES = (0x0409, 0x040C)
TIFF_XMP, TIFF_IPTC, TIFF_PHOTOSHOP = 700, 33723, 34377
PNG_XMP_KEY = "XML:com.adobe.xmp"
PNG_IPTC_KEY = "Raw profile type iptc"
_SEGMENT_DATA = 65533  # bytes of data in one JPEG marker segment (its length field counts itself)
_EXTENDED_PART = _SEGMENT_DATA - len(EXTENDED_SIGNATURE) - 32 - 8  # payload per extended-XMP segment

HOLDS = {"JPEG": ("XMP", "IPTC", "Photoshop"), "PNG": ("XMP", "IPTC"), "TIFF": ("XMP", "IPTC", "Photoshop"),
         "WEBP": ("XMP",), "AVIF": ("XMP",), "HEIF": ("XMP",)}
"""Which blocks each output format can carry (IPTC reaches the XMP-only ones inside XMP, `iptc_xmp`)."""


@dataclass(frozen=True)
class PhotoMetadata:
    """A file's XMP packet (UTF-8 XML, extended parts merged in) and IPTC-IIM datasets, as found."""

    xmp: bytes | None = None
    iptc: bytes | None = None
    resources: bytes | None = None
    """Photoshop's image resources other than IPTC and thumbnails (``8BIM`` records, as stored)."""

    def lost_in(self, fmt: str) -> list[str]:
        """Warnings for what an output format cannot hold."""
        held = HOLDS.get(fmt, ())
        return [f"{fmt} holds no {name}: the source's {name} metadata was not carried" for name, block in
                (("XMP", self.xmp), ("IPTC", self.iptc), ("Photoshop", self.resources)) if block and name not in held]

    @property
    def iptc_digest(self) -> bytes | None:
        """Photoshop's MD5 of the IPTC block as last written beside the XMP (resource 0x0425), if any."""
        return dict(resource_records(self.resources or b"")).get(DIGEST_RESOURCE)


# --- reading -------------------------------------------------------------------------------------------------


def from_jpeg_segments(applist: list[tuple[str, bytes]]) -> PhotoMetadata:
    """XMP (standard and extended parts, merged) and IPTC from a JPEG's APPn segments (Pillow's ``applist``)."""
    standard = None
    parts: dict[bytes, dict[int, bytes]] = {}
    photoshop = b""
    for marker, data in applist:
        if marker == "APP1" and data.startswith(XMP_SIGNATURE) and standard is None:
            standard = data[len(XMP_SIGNATURE):]
        elif marker == "APP1" and data.startswith(EXTENDED_SIGNATURE):
            body = data[len(EXTENDED_SIGNATURE):]
            if len(body) < 40:  # too short for its GUID, length and offset: not a part
                continue
            guid, (_, offset) = body[:32], struct.unpack(">II", body[32:40])
            parts.setdefault(guid, {})[offset] = body[40:]
        elif marker == "APP13" and data.startswith(PHOTOSHOP_SIGNATURE):
            photoshop += data[len(PHOTOSHOP_SIGNATURE):]  # long resources continue in the next APP13
    xmp = standard
    if standard is not None:
        named = re.search(rb'HasExtendedXMP(?:="|>)([0-9A-Fa-f]{32})', standard)
        chunks = parts.get(named.group(1).upper()) if named else None
        if chunks:
            extended = b"".join(chunks[o] for o in sorted(chunks))
            xmp = merge_xmp(_without_extension_note(standard), extended)
    iptc, resources = split_resources(photoshop)
    return PhotoMetadata(xmp, iptc, resources)


def resource_records(resources: bytes) -> list[tuple[int, bytes]]:
    """(kind, data) of each Photoshop image resource (``8BIM`` records) in order; reading stops at the first
    record that is not one or runs past the end."""
    out, at = [], 0
    while at + 12 <= len(resources) and resources[at:at + 4] == b"8BIM":
        (kind,) = struct.unpack(">H", resources[at + 4:at + 6])
        name_length = resources[at + 6]
        at += 6 + ((name_length + 2) & ~1)  # a Pascal string padded to an even length
        if at + 4 > len(resources):
            break
        (size,) = struct.unpack(">I", resources[at:at + 4])
        out.append((kind, resources[at + 4:at + 4 + size]))
        at += 4 + size + (size & 1)
    return out


def split_resources(resources: bytes) -> tuple[bytes | None, bytes | None]:
    """The IPTC block, and the other resources re-recorded (without the thumbnails of the old pixels)."""
    iptc, others = None, b""
    for kind, data in resource_records(resources):
        if kind == IPTC_RESOURCE and iptc is None:
            iptc = data or None
        elif kind not in _THUMBNAIL_RESOURCES and kind != IPTC_RESOURCE:
            others += resource_record(kind, data)
    return iptc, others or None


def resource_record(kind: int, data: bytes) -> bytes:
    """One ``8BIM`` record with an empty name, padded to an even length."""
    return b"8BIM" + struct.pack(">HHI", kind, 0, len(data)) + data + b"\x00" * (len(data) & 1)


def from_png_text(info: dict) -> PhotoMetadata:
    """XMP from iTXt ``XML:com.adobe.xmp`` and IPTC from ``Raw profile type iptc`` (Pillow's ``info``)."""
    xmp = info.get(PNG_XMP_KEY)
    xmp_bytes = xmp.encode() if isinstance(xmp, str) else (xmp or info.get("xmp") or None)
    return PhotoMetadata(xmp_bytes, _iptc_of_raw_profile(info.get(PNG_IPTC_KEY)))


def _iptc_of_raw_profile(text: str | None) -> bytes | None:
    """ImageMagick's text form: a blank line, the name, the length, then hex lines."""
    if not text:
        return None
    lines = text.strip("\n").split("\n")
    try:
        length = int(lines[1])
        data = bytes.fromhex("".join(lines[2:]))[:length]
    except (IndexError, ValueError):
        return None
    if data.startswith(PHOTOSHOP_SIGNATURE):
        data = data[len(PHOTOSHOP_SIGNATURE):]
    return split_resources(data)[0] if data.startswith(b"8BIM") else (data or None)


def from_tiff_tags(xmp: object, iptc: object, photoshop: object = None) -> PhotoMetadata:
    """Tags 700, 33723 and 34377 as tifffile gives them (bytes, or a tuple of numbers for IPTC stored as
    LONGs)."""
    def as_bytes(value: object, big_endian_longs: bool = False) -> bytes | None:
        if isinstance(value, bytes | bytearray):
            return bytes(value) or None
        if isinstance(value, str):
            return value.encode() or None
        if isinstance(value, tuple | list) and value:
            if all(isinstance(v, int) and 0 <= v < 256 for v in value):
                return bytes(value)
            return b"".join(struct.pack(">I", v) for v in value) if big_endian_longs else None
        return None
    from_resources, resources = split_resources(as_bytes(photoshop) or b"")
    return PhotoMetadata(as_bytes(xmp), as_bytes(iptc, True) or from_resources, resources)


# --- merging -----------------------------------------------------------------------------------------------


def merge_xmp(standard: bytes, extended: bytes) -> bytes:
    """One packet: the extended packet's descriptions added inside the standard one's ``rdf:RDF``. Found with
    plain searches (each a linear pass): a stranger's packet never meets a backtracking expression."""
    opening = extended.find(b"<rdf:RDF")
    inner_start = extended.find(b">", opening) + 1 if opening >= 0 else 0
    inner_end = extended.rfind(b"</rdf:RDF>")
    end = standard.rfind(b"</rdf:RDF>")
    if opening < 0 or inner_start == 0 or inner_end < inner_start or end < 0:
        return standard
    return standard[:end] + extended[inner_start:inner_end] + standard[end:]


_EXTENSION_NOTES = (re.compile(rb'xmpNote:HasExtendedXMP="[0-9A-Fa-f]{32}"'),
                    re.compile(rb"<xmpNote:HasExtendedXMP>[0-9A-Fa-f]{32}</xmpNote:HasExtendedXMP>"))


def _without_extension_note(packet: bytes) -> bytes:
    """The packet without its note naming the extension (which the merged packet no longer has), and the white
    space before the note. Each expression starts with a literal, so the search is linear in the packet."""
    for note in _EXTENSION_NOTES:
        found = note.search(packet)
        if found:
            start = len(packet[:found.start()].rstrip())
            packet = packet[:start] + packet[found.end():]
    return packet


# --- writing -------------------------------------------------------------------------------------------------


def _segment(marker: int, data: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data


def xmp_segments(xmp: bytes | None) -> bytes:
    """APP1 XMP (extended when over one segment), ready to splice into a JPEG."""
    if not xmp:
        return b""
    if len(XMP_SIGNATURE) + len(xmp) <= _SEGMENT_DATA:
        return _segment(0xE1, XMP_SIGNATURE + xmp)
    # Adobe's XMP spec, part 3: a standard packet naming the MD5 GUID, the packet in parts
    guid = hashlib.md5(xmp).hexdigest().upper().encode()
    note = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:'
            b'meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
            b'rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="' + guid
            + b'"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    out = _segment(0xE1, XMP_SIGNATURE + note)
    for offset in range(0, len(xmp), _EXTENDED_PART):
        part = xmp[offset:offset + _EXTENDED_PART]
        out += _segment(0xE1, EXTENDED_SIGNATURE + guid + struct.pack(">II", len(xmp), offset) + part)
    return out


def photoshop_segments(meta: PhotoMetadata) -> bytes:
    """APP13 ``Photoshop 3.0`` with the resources and the IPTC record, split over segments where long."""
    photoshop = (meta.resources or b"") + (resource_record(IPTC_RESOURCE, meta.iptc) if meta.iptc else b"")
    step = _SEGMENT_DATA - len(PHOTOSHOP_SIGNATURE)
    return b"".join(_segment(0xED, PHOTOSHOP_SIGNATURE + photoshop[at:at + step])
                    for at in range(0, len(photoshop), step))


def splice_into_jpeg(data: bytes, meta: PhotoMetadata) -> bytes:
    """The JPEG with XMP right after its JFIF and EXIF segments (EXIF's APP1 stays first after JFIF, as strict
    readers want), and Photoshop's APP13 after every leading APPn segment (ICC among them), before the tables."""
    after_exif = after_app = 2  # after SOI
    while after_app + 4 <= len(data) and data[after_app] == 0xFF and 0xE0 <= data[after_app + 1] <= 0xEF:
        marker = data[after_app + 1]
        end = after_app + 2 + struct.unpack(">H", data[after_app + 2:after_app + 4])[0]
        if after_exif == after_app and (marker == 0xE0 or data[after_app + 4:after_app + 10] == b"Exif\x00\x00"):
            after_exif = end
        after_app = end
    return (data[:after_exif] + xmp_segments(meta.xmp) + data[after_exif:after_app] + photoshop_segments(meta)
            + data[after_app:])


def png_chunks(meta: PhotoMetadata, chunk) -> list[bytes]:
    """iTXt XMP and zTXt IPTC chunks, made by ``chunk(kind, data)`` (`png._chunk`)."""
    out = []
    if meta.xmp:
        out.append(chunk(b"iTXt", PNG_XMP_KEY.encode() + b"\x00\x00\x00\x00\x00" + meta.xmp))
    if meta.iptc:
        hexed = meta.iptc.hex()
        text = f"\niptc\n{len(meta.iptc):8d}\n" + "\n".join(hexed[i:i + 72] for i in range(0, len(hexed), 72)) + "\n"
        out.append(chunk(b"zTXt", PNG_IPTC_KEY.encode() + b"\x00\x00" + zlib.compress(text.encode())))
    return out


def tiff_tags(meta: PhotoMetadata) -> dict[int, bytes]:
    """Tag number -> bytes for a TIFF writer (stored as BYTE/UNDEFINED arrays)."""
    return {tag: block for tag, block in ((TIFF_XMP, meta.xmp), (TIFF_IPTC, meta.iptc),
                                          (TIFF_PHOTOSHOP, meta.resources)) if block}
