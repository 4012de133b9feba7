"""XMP and IPTC carried through `upscale image`, read back by an independent reader (exiv2, through pyexiv2), with
the sizes they state updated, EXIF's thumbnail dropped, and a warning where a format cannot hold a block."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from upscale.cli.app import app

from .conftest import photo

pyexiv2 = pytest.importorskip("pyexiv2")

KEYWORDS = ["Vögel", "Ünïcode ✓", "bird"]
IPTC_KEYWORDS = ["kw1", "Ärger"]


def lightroom_like_jpeg(path: Path, caption_words: int = 1500) -> None:
    """A JPEG as a photo manager exports it: EXIF (with its own pixel dimensions and a thumbnail), ICC, XMP of
    ~15 KB (keywords, rating, caption, the sizes) and an IPTC block; written by exiv2, not by us."""
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[271] = "Camera"
    exif.get_ifd(0x8769).update({0xA002: 64, 0xA003: 48})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(photo(48, 64)).save(buffer, "JPEG", quality=92, icc_profile=icc, exif=exif.tobytes())
    with pyexiv2.ImageData(buffer.getvalue()) as image:
        image.modify_xmp({"Xmp.dc.subject": KEYWORDS, "Xmp.xmp.Rating": "4", "Xmp.tiff.ImageWidth": "64",
                          "Xmp.tiff.ImageLength": "48", "Xmp.exif.PixelXDimension": "64",
                          "Xmp.exif.PixelYDimension": "48",
                          "Xmp.dc.description": {'lang="x-default"': "a long caption " * caption_words}})
        image.modify_iptc({"Iptc.Application2.Keywords": IPTC_KEYWORDS, "Iptc.Application2.Copyright": "© someone"})
        thumb = io.BytesIO()
        Image.fromarray(photo(8, 8)).save(thumb, "JPEG")
        image.modify_thumbnail(thumb.getvalue())
        path.write_bytes(image.get_bytes())


def upscale_to(source: Path, target: Path) -> str:
    result = CliRunner().invoke(app, ["image", str(source), str(target), "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".tif", ".webp"])
def test_xmp_iptc_exif_and_icc_reach_every_format_that_holds_them(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / "in.jpg"
    lightroom_like_jpeg(source)
    with pyexiv2.Image(str(source)) as image:
        assert "Exif.Thumbnail.JPEGInterchangeFormat" in image.read_exif()  # the source has a thumbnail
    output = upscale_to(source, tmp_path / f"out{suffix}")
    with pyexiv2.Image(str(tmp_path / f"out{suffix}")) as image:
        xmp, iptc, exif, icc = image.read_xmp(), image.read_iptc(), image.read_exif(), image.read_icc()
    assert xmp["Xmp.dc.subject"] == KEYWORDS and xmp["Xmp.xmp.Rating"] == "4"
    assert len(xmp["Xmp.dc.description"]['lang="x-default"']) > 15000
    assert (xmp["Xmp.tiff.ImageWidth"], xmp["Xmp.tiff.ImageLength"]) == ("128", "96")  # the new size
    assert (xmp["Xmp.exif.PixelXDimension"], xmp["Xmp.exif.PixelYDimension"]) == ("128", "96")
    assert icc and exif["Exif.Image.Make"] == "Camera"
    assert not [k for k in exif if k.startswith("Exif.Thumbnail")]  # a thumbnail of the old pixels: dropped
    if suffix != ".tif":
        assert (exif["Exif.Photo.PixelXDimension"], exif["Exif.Photo.PixelYDimension"]) == ("128", "96")
    if suffix == ".webp":  # no IPTC block: its values reach XMP (IPTC Core)
        assert iptc == {} and "IPTC" not in output
        assert xmp["Xmp.dc.rights"] == {'lang="x-default"': "© someone"}
    else:
        assert iptc == {"Iptc.Application2.Keywords": IPTC_KEYWORDS, "Iptc.Application2.Copyright": "© someone"}
        assert "holds no" not in output


def test_a_png_source_carries_its_blocks_to_a_jpeg(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(photo(30, 40)).save(source)
    with pyexiv2.Image(str(source)) as image:
        image.modify_xmp({"Xmp.dc.subject": KEYWORDS})
        image.modify_iptc({"Iptc.Application2.Keywords": IPTC_KEYWORDS})
    upscale_to(source, tmp_path / "out.jpg")
    with pyexiv2.Image(str(tmp_path / "out.jpg")) as image:
        assert image.read_xmp()["Xmp.dc.subject"] == KEYWORDS
        assert image.read_iptc()["Iptc.Application2.Keywords"] == IPTC_KEYWORDS


def test_bmp_says_what_it_cannot_hold(tmp_path: Path) -> None:
    source = tmp_path / "in.jpg"
    lightroom_like_jpeg(source, caption_words=10)
    output = upscale_to(source, tmp_path / "out.bmp")
    assert "BMP holds no XMP" in output and "BMP holds no IPTC" in output


# --- extended XMP: a packet over one JPEG segment ------------------------------------------------------------
# Written and read here from Adobe's XMP specification (part 3, 1.1.3.1), not by the code under test: exiv2
# neither writes nor reads JPEG's extended XMP.

STANDARD = b"http://ns.adobe.com/xap/1.0/\x00"
EXTENSION = b"http://ns.adobe.com/xmp/extension/\x00"


def _packet(description_xml: str) -> bytes:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + description_xml +
            '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def _segment(payload: bytes) -> bytes:
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def jpeg_with_extended_xmp(path: Path, extended: bytes) -> None:
    guid = hashlib.md5(extended).hexdigest().upper()
    standard = _packet(f'<rdf:Description rdf:about="" xmlns:xmpNote="http://ns.adobe.com/xmp/note/" '
                       f'xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmpNote:HasExtendedXMP="{guid}" '
                       f'xmp:Rating="5"/>')
    segments = _segment(STANDARD + standard)
    for offset in range(0, len(extended), 60000):
        part = extended[offset:offset + 60000]
        segments += _segment(EXTENSION + guid.encode() + struct.pack(">II", len(extended), offset) + part)
    buffer = io.BytesIO()
    Image.fromarray(photo(24, 32)).save(buffer, "JPEG")
    data = buffer.getvalue()
    path.write_bytes(data[:2] + segments + data[2:])


def read_xmp_by_the_spec(path: Path) -> ET.Element:
    """The JPEG's XMP as one tree: the standard packet's descriptions and the extension's (checked by MD5)."""
    data, at, standard, parts = path.read_bytes(), 2, b"", {}
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        (length,) = struct.unpack(">H", data[at + 2:at + 4])
        payload = data[at + 4:at + 2 + length]
        if payload.startswith(STANDARD):
            standard = payload[len(STANDARD):]
        elif payload.startswith(EXTENSION):
            body = payload[len(EXTENSION):]
            parts.setdefault(body[:32], {})[struct.unpack(">I", body[36:40])[0]] = body[40:]
            assert len(payload) + 2 <= 65535
        at += 2 + length
    root = ET.fromstring(standard.decode().split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
    guid = re.search(r'HasExtendedXMP="([0-9A-F]{32})"', standard.decode())
    if guid:
        chunks = parts[guid.group(1).encode()]
        extended = b"".join(chunks[o] for o in sorted(chunks))
        assert hashlib.md5(extended).hexdigest().upper() == guid.group(1)
        ext_root = ET.fromstring(extended.decode().split("?>", 1)[1].rsplit("<?xpacket", 1)[0])
        rdf = root.find("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF")
        rdf.extend(ext_root.find("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}RDF"))
    return root


DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"


def _keywords(root: ET.Element) -> list[str]:
    return [li.text for li in root.iter(f"{RDF}li") if li.text and not li.text.startswith("long")]


def test_an_extended_xmp_packet_over_64_kb_survives_to_jpeg_and_png(tmp_path: Path) -> None:
    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in KEYWORDS)
    long_text = "long caption text " * 6000  # ~108 KB: two extension segments
    extended = _packet(f'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
                       f'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:ImageWidth="32">'
                       f'<dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>'
                       f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{long_text}</rdf:li></rdf:Alt>'
                       f'</dc:description></rdf:Description>')
    assert len(extended) > 100_000
    source = tmp_path / "in.jpg"
    jpeg_with_extended_xmp(source, extended)
    assert _keywords(read_xmp_by_the_spec(source)) == KEYWORDS  # the reader reads what the writer wrote

    upscale_to(source, tmp_path / "out.jpg")
    root = read_xmp_by_the_spec(tmp_path / "out.jpg")
    assert _keywords(root) == KEYWORDS
    descriptions = list(root.iter(f"{RDF}Description"))
    assert any(d.get("{http://ns.adobe.com/xap/1.0/}Rating") == "5" for d in descriptions) or \
        "Rating" in ET.tostring(root).decode()
    assert any(d.get("{http://ns.adobe.com/tiff/1.0/}ImageWidth") == "64" for d in descriptions)
    assert long_text.strip() in ET.tostring(root, encoding="unicode")

    upscale_to(source, tmp_path / "out.png")  # no size limit there: one packet, read by exiv2
    with pyexiv2.Image(str(tmp_path / "out.png")) as image:
        xmp = image.read_xmp()
    assert xmp["Xmp.dc.subject"] == KEYWORDS and xmp["Xmp.xmp.Rating"] == "5" and xmp["Xmp.tiff.ImageWidth"] == "64"


def test_sixteen_bit_tiff_keeps_xmp_and_iptc(tmp_path: Path) -> None:
    from upscale.deep_color import encode_png16

    source = tmp_path / "deep.png"
    source.write_bytes(encode_png16(photo(20, 24).astype(np.uint16) * 257))
    with pyexiv2.Image(str(source)) as image:
        image.modify_xmp({"Xmp.dc.subject": KEYWORDS})
        image.modify_iptc({"Iptc.Application2.Keywords": IPTC_KEYWORDS})
    upscale_to(source, tmp_path / "deep.tif")
    with Image.open(tmp_path / "deep.tif") as written:
        assert written.mode in ("RGB;16", "I;16") or written.getbands() == ("R", "G", "B")
    with pyexiv2.Image(str(tmp_path / "deep.tif")) as image:
        assert image.read_xmp()["Xmp.dc.subject"] == KEYWORDS
        assert image.read_iptc()["Iptc.Application2.Keywords"] == IPTC_KEYWORDS
