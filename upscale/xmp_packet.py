"""Edits to an XMP packet made on its text, so that everything else in it (Lightroom's settings, a stranger's
namespaces, the packet's padding) travels unchanged: the new size, orientation 1, location removed, and
descriptions added.

Properties are found by the prefix the packet binds to their namespace (``tiff:`` is usual, not required), in
both forms RDF allows: an attribute of ``rdf:Description`` and an element (Photoshop writes
``<tiff:ImageWidth>4000</tiff:ImageWidth>``). Every search starts with a literal and runs forward, so a
stranger's packet costs time linear in its length.
"""

from __future__ import annotations

import re

TIFF_NS = b"http://ns.adobe.com/tiff/1.0/"
EXIF_NS = b"http://ns.adobe.com/exif/1.0/"
_DEFAULT_PREFIXES = {TIFF_NS: b"tiff", EXIF_NS: b"exif"}


def prefix_of(packet: bytes, namespace: bytes) -> bytes:
    """The prefix ``packet`` binds to ``namespace`` (the usual one where it binds none)."""
    found = re.search(rb"xmlns:([A-Za-z_][\w.-]*)\s*=\s*[\"']" + re.escape(namespace) + rb"[\"']", packet)
    return found.group(1) if found else _DEFAULT_PREFIXES.get(namespace, b"")


def set_simple(packet: bytes, name: bytes, value: str) -> bytes:
    """Every occurrence of the simple property ``name`` (prefixed) set to ``value``, in attribute and element
    form; other properties untouched."""
    key = re.escape(name)
    text = value.encode()
    packet = re.sub(rb"(\s" + key + rb"\s*=\s*)(\"[^\"]*\"|'[^']*')",
                    lambda m: m.group(1) + m.group(2)[:1] + text + m.group(2)[:1], packet)
    return re.sub(rb"(<" + key + rb"(?:\s[^>]*)?>)[^<]*(</" + key + rb">)",
                  lambda m: m.group(1) + text + m.group(2), packet)


def for_output(xmp: bytes | None, width: int, height: int, drop_location: bool = False) -> bytes | None:
    """The packet with the image's new size where it states one, orientation 1 (the pixels are upright), and with
    ``drop_location`` no GPS property."""
    if not xmp:
        return xmp
    tiff, exif = prefix_of(xmp, TIFF_NS), prefix_of(xmp, EXIF_NS)
    for name, value in ((tiff + b":ImageWidth", width), (tiff + b":ImageLength", height),
                        (exif + b":PixelXDimension", width), (exif + b":PixelYDimension", height),
                        (tiff + b":Orientation", 1)):
        xmp = set_simple(xmp, name, str(value))
    return without_properties(xmp, exif + b":GPS") if drop_location else xmp


def without_properties(packet: bytes, starting: bytes, exact: bool = False) -> bytes:
    """The packet without any property whose prefixed name starts with ``starting`` (``exif:GPS``), or with
    ``exact`` is that name: attributes and elements, whatever they hold."""
    rest = b"" if exact else rb"[\w.-]*"
    packet = re.sub(rb"\s" + re.escape(starting) + rest + rb"\s*=\s*(\"[^\"]*\"|'[^']*')", b"", packet)
    out, at = [], 0
    while (start := packet.find(b"<" + starting, at)) >= 0:
        name_end = start + 1
        while name_end < len(packet) and packet[name_end:name_end + 1] not in b" \t\r\n/>":
            name_end += 1
        name = packet[start + 1:name_end]
        if exact and name != starting:
            out.append(packet[at:name_end])
            at = name_end
            continue
        tag_end = packet.find(b">", name_end)
        if tag_end < 0:
            break
        if packet[tag_end - 1:tag_end] == b"/":
            end = tag_end + 1
        else:
            closing = packet.find(b"</" + name + b">", tag_end)
            end = closing + len(name) + 3 if closing >= 0 else len(packet)
        out.append(packet[at:start])
        at = end
    out.append(packet[at:])
    return b"".join(out)
