"""What photographers write into their files, carried to the output: XMP and IPTC, read, updated and written.

EXIF and ICC travel through Pillow (`images`); this module adds the two blocks Pillow reads only in part and
writes in few formats: XMP (keywords, captions, ratings, Lightroom's settings) and IPTC-IIM (the older
keywords, caption and copyright block, inside Photoshop's APP13). They are written by hand, a few markers and
chunks each, rather than through a metadata library: Pillow's own ``xmp=`` stops at one 64 KB JPEG segment and
has no IPTC writer, and a C++ library (exiv2) would be a heavy runtime dependency for what is byte copying.

- JPEG: XMP in APP1 (``http://ns.adobe.com/xap/1.0/``), a packet over one segment as Adobe's extended XMP (a
  standard packet naming the extension's GUID, the whole packet in APP1 ``http://ns.adobe.com/xmp/extension/``
  parts); IPTC as resource 0x0404 of APP13 ``Photoshop 3.0``.
- PNG: XMP in iTXt ``XML:com.adobe.xmp``; IPTC in zTXt ``Raw profile type iptc`` (ImageMagick's and exiftool's
  convention).
- WebP: XMP chunk (Pillow); no IPTC (a warning). TIFF: tags 700 (XMP) and 33723 (IPTC). BMP: neither.

What the upscale changed is updated (`for_output`): XMP ``tiff:ImageWidth/ImageLength`` and
``exif:PixelXDimension/PixelYDimension`` where present, ``tiff:Orientation`` reset to 1 as EXIF's is; EXIF's own
dimensions are updated in `images`, whose EXIF writer leaves the stale thumbnail (IFD1) out.
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
IPTC_RESOURCE = 0x0404
TIFF_XMP, TIFF_IPTC = 700, 33723
PNG_XMP_KEY = "XML:com.adobe.xmp"
PNG_IPTC_KEY = "Raw profile type iptc"
_SEGMENT_DATA = 65533  # bytes of data in one JPEG marker segment (its length field counts itself)
_EXTENDED_PART = _SEGMENT_DATA - len(EXTENDED_SIGNATURE) - 32 - 8  # payload per extended-XMP segment

HOLDS = {"JPEG": ("XMP", "IPTC"), "PNG": ("XMP", "IPTC"), "TIFF": ("XMP", "IPTC"), "WEBP": ("XMP",),
         "AVIF": ("XMP",), "HEIF": ("XMP",)}
"""Which blocks each output format can carry."""


@dataclass(frozen=True)
class PhotoMetadata:
    """A file's XMP packet (UTF-8 XML, extended parts merged in) and IPTC-IIM datasets, as found."""

    xmp: bytes | None = None
    iptc: bytes | None = None

    def lost_in(self, fmt: str) -> list[str]:
        """Warnings for what an output format cannot hold."""
        held = HOLDS.get(fmt, ())
        return [f"{fmt} holds no {name}: the source's {name} metadata was not carried" for name, block in
                (("XMP", self.xmp), ("IPTC", self.iptc)) if block and name not in held]


# --- reading -------------------------------------------------------------------------------------------------


def from_jpeg_segments(applist: list[tuple[str, bytes]]) -> PhotoMetadata:
    """XMP (standard and extended parts, merged) and IPTC from a JPEG's APPn segments (Pillow's ``applist``)."""
    standard = None
    parts: dict[bytes, dict[int, bytes]] = {}
    iptc = None
    for marker, data in applist:
        if marker == "APP1" and data.startswith(XMP_SIGNATURE) and standard is None:
            standard = data[len(XMP_SIGNATURE):]
        elif marker == "APP1" and data.startswith(EXTENDED_SIGNATURE):
            body = data[len(EXTENDED_SIGNATURE):]
            if len(body) < 40:  # too short for its GUID, length and offset: not a part
                continue
            guid, (_, offset) = body[:32], struct.unpack(">II", body[32:40])
            parts.setdefault(guid, {})[offset] = body[40:]
        elif marker == "APP13" and data.startswith(PHOTOSHOP_SIGNATURE) and iptc is None:
            iptc = iptc_of_resources(data[len(PHOTOSHOP_SIGNATURE):])
    xmp = standard
    if standard is not None:
        named = re.search(rb'HasExtendedXMP(?:="|>)([0-9A-Fa-f]{32})', standard)
        chunks = parts.get(named.group(1).upper()) if named else None
        if chunks:
            extended = b"".join(chunks[o] for o in sorted(chunks))
            xmp = merge_xmp(_without_extension_note(standard), extended)
    return PhotoMetadata(xmp, iptc)


def iptc_of_resources(resources: bytes) -> bytes | None:
    """The IPTC-IIM block (resource 0x0404) among Photoshop image resources (``8BIM`` records)."""
    at = 0
    while at + 12 <= len(resources) and resources[at:at + 4] == b"8BIM":
        (kind,) = struct.unpack(">H", resources[at + 4:at + 6])
        name_length = resources[at + 6]
        at += 6 + ((name_length + 2) & ~1)  # a Pascal string padded to an even length
        if at + 4 > len(resources):
            return None
        (size,) = struct.unpack(">I", resources[at:at + 4])
        data = resources[at + 4:at + 4 + size]
        if kind == IPTC_RESOURCE:
            return data or None
        at += 4 + size + (size & 1)
    return None


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
    return iptc_of_resources(data) if data.startswith(b"8BIM") else (data or None)


def from_tiff_tags(xmp: object, iptc: object) -> PhotoMetadata:
    """Tags 700 and 33723 as tifffile gives them (bytes, or a tuple of numbers for IPTC stored as LONGs)."""
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
    return PhotoMetadata(as_bytes(xmp), as_bytes(iptc, True))


# --- updating ------------------------------------------------------------------------------------------------

_DIMENSIONS = ("tiff:ImageWidth", "tiff:ImageLength", "exif:PixelXDimension", "exif:PixelYDimension")


def for_output(xmp: bytes | None, width: int, height: int) -> bytes | None:
    """The packet with the image's new size where it states one, and orientation 1 (the pixels are upright)."""
    if not xmp:
        return xmp
    values = {"tiff:ImageWidth": width, "tiff:ImageLength": height, "exif:PixelXDimension": width,
              "exif:PixelYDimension": height, "tiff:Orientation": 1}
    for name, value in values.items():
        key = re.escape(name.encode())
        xmp = re.sub(rb"(" + key + rb'\s*=\s*")[^"]*(")', rb"\g<1>" + str(value).encode() + rb"\2", xmp)
        xmp = re.sub(rb"(<" + key + rb">)[^<]*(</" + key + rb">)", rb"\g<1>" + str(value).encode() + rb"\2", xmp)
    return xmp


def exif_for_output(exif: bytes | None, width: int, height: int) -> bytes | None:
    """The EXIF block with PixelXDimension/PixelYDimension saying the new size where it states one. Pillow's
    writer leaves IFD1 out, so a thumbnail of the old pixels never travels."""
    if not exif:
        return exif
    from PIL import Image

    loaded = Image.Exif()
    loaded.load(exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif)
    photo = loaded.get_ifd(_EXIF_IFD)
    for tag, value in ((_PIXEL_X, width), (_PIXEL_Y, height)):
        if tag in photo:
            photo[tag] = value
    return loaded.tobytes()


_EXIF_IFD, _PIXEL_X, _PIXEL_Y = 0x8769, 0xA002, 0xA003


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


def jpeg_segments(meta: PhotoMetadata) -> bytes:
    """APP1 XMP (extended when over one segment) and APP13 IPTC, ready to splice into a JPEG."""
    out = b""
    if meta.xmp:
        if len(XMP_SIGNATURE) + len(meta.xmp) <= _SEGMENT_DATA:
            out += _segment(0xE1, XMP_SIGNATURE + meta.xmp)
        else:  # Adobe's XMP spec, part 3: a standard packet naming the MD5 GUID, the packet in parts
            guid = hashlib.md5(meta.xmp).hexdigest().upper().encode()
            note = (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:'
                    b'meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
                    b'rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="' + guid
                    + b'"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
            out += _segment(0xE1, XMP_SIGNATURE + note)
            for offset in range(0, len(meta.xmp), _EXTENDED_PART):
                part = meta.xmp[offset:offset + _EXTENDED_PART]
                out += _segment(0xE1, EXTENDED_SIGNATURE + guid + struct.pack(">II", len(meta.xmp), offset) + part)
    if meta.iptc:
        resource = b"8BIM" + struct.pack(">H", IPTC_RESOURCE) + b"\x00\x00" + struct.pack(">I", len(meta.iptc))
        resource += meta.iptc + (b"\x00" if len(meta.iptc) & 1 else b"")
        out += _segment(0xED, PHOTOSHOP_SIGNATURE + resource)
    return out


def splice_into_jpeg(data: bytes, segments: bytes) -> bytes:
    """``segments`` placed after the JPEG's leading APPn segments (JFIF, EXIF, ICC), before its tables."""
    if not segments:
        return data
    at = 2  # after SOI
    while at + 4 <= len(data) and data[at] == 0xFF and 0xE0 <= data[at + 1] <= 0xEF:
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    return data[:at] + segments + data[at:]


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
    """Tag number -> bytes for a TIFF writer (both stored as BYTE/UNDEFINED arrays)."""
    return {tag: block for tag, block in ((TIFF_XMP, meta.xmp), (TIFF_IPTC, meta.iptc)) if block}
