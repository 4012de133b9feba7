"""IPTC-IIM carried as XMP (IPTC Core and Dublin Core) into formats that hold no IPTC: WebP, AVIF, HEIC.

The Metadata Working Group's guidance, and what photo managers read, is IPTC in XMP. The datasets are mapped as
the IPTC Photo Metadata Standard maps them (keywords to ``dc:subject``, caption to ``dc:description``, by-line
to ``dc:creator``, city to ``photoshop:City``, ...). Where the XMP already holds a property, the MWG's rule for
reading both decides which value travels: Photoshop's IPTC digest (resource 0x0425, the MD5 of the IPTC block
when XMP and IPTC were last written together) matching says the two agree, and XMP is kept; a digest that no
longer matches says another program changed the IPTC since, and the IPTC value wins where the two differ; with
no digest, XMP is kept where it has a value. Text is UTF-8 where the block says so (``ESC % G``) or where it
decodes as UTF-8, else Latin-1, as the MWG advises.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .xmp_packet import prefix_of, without_properties

DC, PHOTOSHOP, IPTC_CORE, XMP = ("http://purl.org/dc/elements/1.1/", "http://ns.adobe.com/photoshop/1.0/",
                                 "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/", "http://ns.adobe.com/xap/1.0/")
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_PREFIXES = {DC: "dc", PHOTOSHOP: "photoshop", IPTC_CORE: "Iptc4xmpCore", XMP: "xmp"}

# record 2 dataset -> (namespace, property, kind): kind "text", "alt" (language alternatives), "bag" or "seq"
_MAPPING = {
    5: (DC, "title", "alt"), 25: (DC, "subject", "bag"), 80: (DC, "creator", "seq"), 116: (DC, "rights", "alt"),
    120: (DC, "description", "alt"), 10: (PHOTOSHOP, "Urgency", "text"), 15: (PHOTOSHOP, "Category", "text"),
    20: (PHOTOSHOP, "SupplementalCategories", "bag"), 40: (PHOTOSHOP, "Instructions", "text"),
    85: (PHOTOSHOP, "AuthorsPosition", "text"), 90: (PHOTOSHOP, "City", "text"),
    95: (PHOTOSHOP, "State", "text"), 101: (PHOTOSHOP, "Country", "text"),
    103: (PHOTOSHOP, "TransmissionReference", "text"), 105: (PHOTOSHOP, "Headline", "text"),
    110: (PHOTOSHOP, "Credit", "text"), 115: (PHOTOSHOP, "Source", "text"), 122: (PHOTOSHOP, "CaptionWriter", "text"),
    12: (IPTC_CORE, "SubjectCode", "bag"), 92: (IPTC_CORE, "Location", "text"),
    100: (IPTC_CORE, "CountryCode", "text"),
}
_DATES = ((55, 60, PHOTOSHOP, "DateCreated"), (62, 63, XMP, "CreateDate"))
"""(date dataset, time dataset, namespace, property): when the picture was taken, and when it was digitised."""
_UTF8_MARK = b"\x1b%G"


@dataclass(frozen=True)
class Property:
    namespace: str
    name: str
    kind: str
    values: tuple[str, ...]


def datasets(iptc: bytes) -> list[tuple[int, int, bytes]]:
    """(record, dataset, data) in order; reading stops at the first byte that does not start a dataset."""
    out, at = [], 0
    while at + 5 <= len(iptc) and iptc[at] == 0x1C:
        record, number, length = iptc[at + 1], iptc[at + 2], int.from_bytes(iptc[at + 3:at + 5], "big")
        at += 5
        if length & 0x8000:  # an extended length: its size in bytes, then the length
            size = length & 0x7FFF
            length, at = int.from_bytes(iptc[at:at + size], "big"), at + size
        out.append((record, number, iptc[at:at + length]))
        at += length
    return out


def properties(iptc: bytes) -> list[Property]:
    """The XMP properties the IPTC block's datasets map to, repeated datasets gathered, in mapping order."""
    found = datasets(iptc)
    utf8 = any(record == 1 and number == 90 and data == _UTF8_MARK for record, number, data in found)
    texts: dict[int, list[str]] = {}
    for record, number, data in found:
        if record == 2:
            texts.setdefault(number, []).append(_text(data, utf8))
    out = [Property(ns, name, kind, tuple(texts[number]) if kind in ("bag", "seq") else (texts[number][0],))
           for number, (ns, name, kind) in _MAPPING.items() if texts.get(number)]
    for date, time, namespace, name in _DATES:
        when = _date_created(texts.get(date, [""])[0], texts.get(time, [""])[0])
        if when:
            out.append(Property(namespace, name, "text", (when,)))
    return out


def _text(data: bytes, utf8: bool) -> str:
    if not utf8:
        try:
            return _printable(data.decode("utf-8"))
        except UnicodeDecodeError:
            return _printable(data.decode("latin-1"))
    return _printable(data.decode("utf-8", "replace"))


def _printable(text: str) -> str:
    """Without the control characters XML 1.0 cannot hold."""
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n\r").strip("\x00")


def _date_created(date: str, time: str) -> str | None:
    """IIM's CCYYMMDD and HHMMSS±HHMM as XMP's date (``2024-05-01T13:45:00+02:00``)."""
    if len(date) != 8 or not date.isdigit():
        return None
    out = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    if len(time) >= 6 and time[:6].isdigit():
        out += f"T{time[:2]}:{time[2:4]}:{time[4:6]}"
        if len(time) == 11 and time[6] in "+-":
            out += f"{time[6:9]}:{time[9:11]}"
    return out


def digest_state(iptc: bytes, digest: bytes | None) -> str:
    """``match``, ``mismatch`` or ``absent``: Photoshop's IPTC digest against the block as it is."""
    if not digest:
        return "absent"
    return "match" if hashlib.md5(iptc).digest() == digest else "mismatch"


def merged(xmp: bytes | None, iptc: bytes, digest: bytes | None) -> bytes:
    """The XMP packet with the IPTC block's properties added, reconciled as the MWG says where both have one."""
    state = digest_state(iptc, digest)
    present = _values(xmp) if xmp else {}
    chosen = []
    for prop in properties(iptc):
        existing = present.get((prop.namespace, prop.name))
        if existing is None:
            chosen.append(prop)
        elif state == "mismatch" and existing != prop.values:  # changed since by a program unaware of XMP
            xmp = without_properties(xmp, _prefix_in(xmp, prop.namespace) + b":" + prop.name.encode(), exact=True)
            chosen.append(prop)
    if not chosen:
        return xmp
    return _with_description(xmp, chosen)


def _values(xmp: bytes) -> dict[tuple[str, str], tuple[str, ...]]:
    """What the packet says for each property (x-default for language alternatives), read by an XML parser."""
    try:
        root = ET.fromstring(xmp.strip(b"\x00 \t\r\n").split(b"?>", 1)[-1].rsplit(b"<?xpacket", 1)[0])
    except ET.ParseError:
        return {}
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for description in root.iter(f"{{{_RDF}}}Description"):
        for name, value in description.attrib.items():
            if name.startswith("{"):
                out[tuple(name[1:].split("}", 1))] = (value,)
        for child in description:
            if child.tag.startswith("{"):
                items = [li.text or "" for li in child.iter(f"{{{_RDF}}}li")]
                out[tuple(child.tag[1:].split("}", 1))] = tuple(items[:1] if _is_alt(child) else items) if items \
                    else ((child.text or "").strip(),)
    return out


def _is_alt(element: ET.Element) -> bool:
    return element.find(f"{{{_RDF}}}Alt") is not None


def _prefix_in(xmp: bytes, namespace: str) -> bytes:
    return prefix_of(xmp, namespace.encode()) or _PREFIXES[namespace].encode()


def _with_description(xmp: bytes | None, chosen: list[Property]) -> bytes:
    """A new ``rdf:Description`` holding ``chosen``, inside the packet's ``rdf:RDF`` (a new packet where none)."""
    namespaces = " ".join(f'xmlns:{_PREFIXES[ns]}="{ns}"' for ns in dict.fromkeys(p.namespace for p in chosen))
    body = "".join(_element(p) for p in chosen)
    description = f'<rdf:Description rdf:about="" {namespaces}>{body}</rdf:Description>'.encode()
    end = xmp.rfind(b"</rdf:RDF>") if xmp else -1
    if end < 0:
        return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
                b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + description
                + b'</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
    return xmp[:end] + description + xmp[end:]


def _element(prop: Property) -> str:
    name = f"{_PREFIXES[prop.namespace]}:{prop.name}"
    if prop.kind == "text":
        return f"<{name}>{escape(prop.values[0])}</{name}>"
    if prop.kind == "alt":
        return f'<{name}><rdf:Alt><rdf:li xml:lang="x-default">{escape(prop.values[0])}</rdf:li></rdf:Alt></{name}>'
    container = "rdf:Bag" if prop.kind == "bag" else "rdf:Seq"
    items = "".join(f"<rdf:li>{escape(v)}</rdf:li>" for v in prop.values)
    return f"<{name}><{container}>{items}</{container}></{name}>"
