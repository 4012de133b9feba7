"""What a photographer's files carry, read back by exiv2 (through pyexiv2) or parsed here from the specifications:
maker notes byte for byte, TIFF's Exif and GPS directories, IPTC as XMP with the MWG's rule, sizes in every
form, segment order, Photoshop's resources, DPI, sidecars, and the privacy choices of ``--metadata``."""

from __future__ import annotations

import hashlib
import io
import struct
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.encoding import encode
from upscale.images import Picture

from .camera_exif import OLYMPUS_SERIAL, camera_block, makernote_span
from .conftest import photo

pyexiv2 = pytest.importorskip("pyexiv2")

OLYMPUS, MINOLTA = "OLYMPUS OPTICAL CO.,LTD", "Minolta"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# --- building sources, from the JPEG, Photoshop and IPTC-IIM specifications -------------------------------------

def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def xmp_packet(description: str) -> bytes:
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' + description
            + '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


def iim(*datasets: tuple[int, int, str | bytes]) -> bytes:
    """IPTC-IIM datasets (record, number, value)."""
    out = b""
    for record, number, value in datasets:
        data = value.encode() if isinstance(value, str) else value
        out += bytes([0x1C, record, number]) + struct.pack(">H", len(data)) + data
    return out


def resource(kind: int, data: bytes) -> bytes:
    return b"8BIM" + struct.pack(">HHI", kind, 0, len(data)) + data + b"\x00" * (len(data) & 1)


def jpeg(path: Path, exif: bytes | None = None, extra: bytes = b"", size: tuple[int, int] = (64, 48),
         **save: object) -> None:
    """A JPEG from Pillow with ``exif`` (a TIFF block) and ``extra`` segments spliced in after Pillow's own."""
    buffer = io.BytesIO()
    if exif is not None:
        save["exif"] = b"Exif\x00\x00" + exif
    Image.fromarray(photo(size[1], size[0])).save(buffer, "JPEG", quality=92, **save)
    data = buffer.getvalue()
    at = 2
    while data[at + 1] in range(0xE0, 0xF0):
        at += 2 + struct.unpack(">H", data[at + 2:at + 4])[0]
    path.write_bytes(data[:at] + extra + data[at:])


def upscale(source: Path, target: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["image", str(source), str(target), "-m", "bicubic-x2", *args])
    assert result.exit_code == 0, result.output
    return result.output


def exif_of(path: Path) -> dict[str, str]:
    with pyexiv2.Image(str(path)) as image:
        return image.read_exif()


def maker_tags(exif: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in exif.items() if k.split(".")[1] in ("Olympus", "Minolta")}


# --- maker notes and the Exif and GPS directories ----------------------------------------------------------------

@pytest.mark.parametrize("make", [OLYMPUS, MINOLTA])
@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_maker_notes_with_header_relative_offsets_keep_every_tag(tmp_path: Path, make: str, suffix: str) -> None:
    source = tmp_path / "in.jpg"
    block = camera_block(make)
    jpeg(source, block)
    before = exif_of(source)
    assert len(maker_tags(before)) == 4  # exiv2 decodes the camera's maker note
    if make == OLYMPUS:
        assert bytes(int(v) for v in before["Exif.Olympus.CameraID"].split()).startswith(OLYMPUS_SERIAL.encode())
    upscale(source, tmp_path / f"out{suffix}")
    after = exif_of(tmp_path / f"out{suffix}")
    assert maker_tags(after) == maker_tags(before)
    assert (after["Exif.Photo.PixelXDimension"], after["Exif.Photo.PixelYDimension"]) == ("128", "96")
    for key in ("Exif.Image.Make", "Exif.Photo.DateTimeOriginal", "Exif.Photo.ExposureTime",
                "Exif.Photo.ISOSpeedRatings", "Exif.GPSInfo.GPSLatitude", "Exif.GPSInfo.GPSLongitude"):
        assert after[key] == before[key], key
    assert not [k for k in after if k.startswith("Exif.Thumbnail")]  # a picture of the old pixels: unlinked


def test_the_maker_note_travels_byte_for_byte_in_jpeg(tmp_path: Path) -> None:
    block = camera_block(OLYMPUS)
    jpeg(tmp_path / "in.jpg", block)
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with Image.open(tmp_path / "out.jpg") as im:
        written = im.info["exif"][6:]
    start, length = makernote_span(block)
    assert makernote_span(written) == (start, length)
    assert written[start:start + length] == block[start:start + length]


@pytest.mark.parametrize("deep", [False, True])
def test_tiff_output_holds_the_exif_and_gps_directories(tmp_path: Path, deep: bool) -> None:
    pixels = photo(40, 50)
    if deep:
        pixels = pixels.astype(np.uint16) * 257 + 3
    picture = Picture(np.ascontiguousarray(pixels), icc_profile=SRGB, exif=b"Exif\x00\x00" + camera_block(OLYMPUS),
                      xmp=xmp_packet('<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
                                     'xmp:Rating="5"/>'), iptc=iim((2, 25, "kw")), dpi=(240.0, 240.0))
    data, notes = encode(picture, "TIFF")
    assert notes == []
    with pyexiv2.ImageData(data) as image:
        exif, xmp, iptc = image.read_exif(), image.read_xmp(), image.read_iptc()
        icc = image.read_icc()
    assert exif["Exif.Photo.DateTimeOriginal"] == "2024:05:01 13:45:00"
    assert exif["Exif.Photo.ISOSpeedRatings"] == "200" and exif["Exif.GPSInfo.GPSLatitudeRef"] == "N"
    assert exif["Exif.GPSInfo.GPSLatitude"] == "52/1 31/1 1234/100"
    assert maker_tags(exif)["Exif.Olympus.CameraType"] == "SX756"
    assert (exif["Exif.Photo.PixelXDimension"], exif["Exif.Photo.PixelYDimension"]) == ("50", "40")
    assert xmp["Xmp.xmp.Rating"] == "5" and iptc["Iptc.Application2.Keywords"] == ["kw"] and icc == SRGB
    with tifffile.TiffFile(io.BytesIO(data)) as tif:  # the pixels, through an independent decoder
        page = tif.pages[0]
        assert np.array_equal(page.asarray(), pixels)
        assert page.tags["XResolution"].value == (240, 1)
        assert page.tags["Make"].value == OLYMPUS


def test_tiff_to_tiff_keeps_exif_and_gps(tmp_path: Path) -> None:
    jpeg(tmp_path / "in.jpg", camera_block(MINOLTA, order="<"))
    upscale(tmp_path / "in.jpg", tmp_path / "mid.tif")
    upscale(tmp_path / "mid.tif", tmp_path / "out.tif")
    after = exif_of(tmp_path / "out.tif")  # a TIFF source's EXIF is read and laid out anew (Pillow): equal values
    assert [Fraction(v) for v in after["Exif.GPSInfo.GPSLongitude"].split()] == [13, 24, Fraction(5678, 100)]
    assert after["Exif.Photo.ExposureTime"] == "1/250"
    assert (after["Exif.Photo.PixelXDimension"], after["Exif.Photo.PixelYDimension"]) == ("256", "192")


# --- sizes in every form ---------------------------------------------------------------------------------------

def test_sizes_in_ifd0_and_in_photoshops_element_form_are_updated(tmp_path: Path) -> None:
    """A thermal camera writes ImageWidth/ImageLength into the EXIF IFD0; Photoshop writes XMP sizes as elements,
    and a packet may bind the tiff namespace to any prefix."""
    packet = xmp_packet('<rdf:Description rdf:about="" xmlns:t="http://ns.adobe.com/tiff/1.0/" '
                        'xmlns:exif="http://ns.adobe.com/exif/1.0/"><t:ImageWidth>64</t:ImageWidth>'
                        '<t:ImageLength rdf:datatype="int">48</t:ImageLength>'
                        '<exif:PixelXDimension>\n64\n</exif:PixelXDimension></rdf:Description>')
    jpeg(tmp_path / "in.jpg", camera_block(MINOLTA, image_size=(64, 48)),
         segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet))
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with pyexiv2.Image(str(tmp_path / "out.jpg")) as image:
        exif, xmp = image.read_exif(), image.read_xmp()
    assert (exif["Exif.Image.ImageWidth"], exif["Exif.Image.ImageLength"]) == ("128", "96")
    assert (xmp["Xmp.tiff.ImageWidth"], xmp["Xmp.tiff.ImageLength"], xmp["Xmp.exif.PixelXDimension"]) == (
        "128", "96", "128")


def test_a_size_over_65535_fits_where_a_short_stood(tmp_path: Path) -> None:
    picture = Picture(np.zeros((1, 70000, 3), np.uint8), exif=b"Exif\x00\x00" + camera_block(OLYMPUS))
    data, _ = encode(picture, "PNG")
    with pyexiv2.ImageData(data) as image:
        exif = image.read_exif()
    assert (exif["Exif.Photo.PixelXDimension"], exif["Exif.Photo.PixelYDimension"]) == ("70000", "1")
    assert maker_tags(exif)["Exif.Olympus.Quality"] == "2"


# --- the JPEG's segments ---------------------------------------------------------------------------------------

def markers(data: bytes) -> list[str]:
    """Each leading segment's marker and signature, read by the JPEG specification."""
    out, at = [], 2
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        payload = data[at + 4:at + 2 + length]
        signature = payload.split(b"\x00", 1)[0][:28].decode("latin-1")
        out.append(f"APP{data[at + 1] - 0xE0}:{signature}" if 0xE0 <= data[at + 1] <= 0xEF else "other")
        at += 2 + length
    return out


def test_exif_comes_first_then_xmp_icc_and_photoshop(tmp_path: Path) -> None:
    packet = xmp_packet('<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/>')
    photoshop = resource(0x0404, iim((2, 25, "kw")))
    # the source's order is the wrong one: XMP and IPTC before EXIF
    source = tmp_path / "in.jpg"
    jpeg(source, None, segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet)
         + segment(0xED, b"Photoshop 3.0\x00" + photoshop) + segment(0xE1, b"Exif\x00\x00" + camera_block(OLYMPUS)),
         icc_profile=SRGB)
    upscale(source, tmp_path / "out.jpg")
    found = [m for m in markers((tmp_path / "out.jpg").read_bytes()) if m != "other"]
    assert found == ["APP0:JFIF", "APP1:Exif", "APP1:http://ns.adobe.com/xap/1.0/", "APP2:ICC_PROFILE",
                     "APP13:Photoshop 3.0"]


# --- Photoshop's resources and DPI -----------------------------------------------------------------------------

def resources_of(data: bytes) -> dict[int, bytes]:
    """Photoshop's image resources, read by Adobe's specification."""
    out, at = {}, 0
    while data[at:at + 4] == b"8BIM":
        kind, name = struct.unpack(">HB", data[at + 4:at + 7])
        at += 6 + ((name + 2) & ~1)
        (size,) = struct.unpack(">I", data[at:at + 4])
        out[kind] = data[at + 4:at + 4 + size]
        at += 4 + size + (size & 1)
    return out


def app13_of(path: Path) -> bytes:
    data, at, out = path.read_bytes(), 2, b""
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        length = struct.unpack(">H", data[at + 2:at + 4])[0]
        if data[at + 1] == 0xED and data[at + 4:at + 18] == b"Photoshop 3.0\x00":
            out += data[at + 18:at + 2 + length]
        at += 2 + length
    return out


def test_photoshop_resources_travel_and_thumbnails_do_not(tmp_path: Path) -> None:
    iptc = iim((2, 25, "kw"), (2, 116, "© me"))
    resources = (resource(0x040A, b"\x01") + resource(0x040B, b"https://example.com/licence")
                 + resource(0x040C, b"old thumbnail") + resource(0x0404, iptc)
                 + resource(0x0425, hashlib.md5(iptc).digest()))
    jpeg(tmp_path / "in.jpg", None, segment(0xED, b"Photoshop 3.0\x00" + resources))
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg")
    upscale(tmp_path / "in.jpg", tmp_path / "out.tif")
    output = upscale(tmp_path / "in.jpg", tmp_path / "out.png")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        from_tiff = resources_of(bytes(tif.pages[0].tags[34377].value))
    for found in (resources_of(app13_of(tmp_path / "out.jpg")), from_tiff):
        assert found[0x040A] == b"\x01" and found[0x040B] == b"https://example.com/licence"
        assert found[0x0425] == hashlib.md5(iptc).digest() and 0x040C not in found
    assert resources_of(app13_of(tmp_path / "out.jpg"))[0x0404] == iptc
    assert "PNG holds no Photoshop" in output


def test_the_resolution_is_carried_unchanged(tmp_path: Path) -> None:
    jpeg(tmp_path / "in.jpg", None, dpi=(300, 300))
    for suffix in (".jpg", ".png", ".tif"):
        upscale(tmp_path / "in.jpg", tmp_path / f"out{suffix}")
        with Image.open(tmp_path / f"out{suffix}") as im:
            assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01), suffix


# --- IPTC into XMP ---------------------------------------------------------------------------------------------

FULL_IPTC = iim((1, 90, b"\x1b%G"), (2, 25, "Vögel"), (2, 25, "bird"), (2, 120, "Ein Vogel am Fenster"),
                (2, 80, "Jörg Fotograf"), (2, 116, "© 2024 Jörg"), (2, 90, "Köln"), (2, 100, "DEU"),
                (2, 55, "20240501"), (2, 60, "134500+0200"), (2, 105, "Schlagzeile"), (2, 5, "Titel"),
                (2, 62, "20240502"), (2, 63, "101500+0000"))


def test_iptc_reaches_webp_as_iptc_core_xmp(tmp_path: Path) -> None:
    jpeg(tmp_path / "in.jpg", None, segment(0xED, b"Photoshop 3.0\x00" + resource(0x0404, FULL_IPTC)))
    output = upscale(tmp_path / "in.jpg", tmp_path / "out.webp")
    with pyexiv2.Image(str(tmp_path / "out.webp")) as image:
        xmp = image.read_xmp()
    assert xmp["Xmp.dc.subject"] == ["Vögel", "bird"] and xmp["Xmp.dc.creator"] == ["Jörg Fotograf"]
    assert xmp["Xmp.dc.description"] == {'lang="x-default"': "Ein Vogel am Fenster"}
    assert xmp["Xmp.dc.rights"] == {'lang="x-default"': "© 2024 Jörg"}
    assert xmp["Xmp.dc.title"] == {'lang="x-default"': "Titel"}
    assert (xmp["Xmp.photoshop.City"], xmp["Xmp.iptc.CountryCode"], xmp["Xmp.photoshop.Headline"]) == (
        "Köln", "DEU", "Schlagzeile")
    assert xmp["Xmp.photoshop.DateCreated"] == "2024-05-01T13:45:00+02:00"
    assert xmp["Xmp.xmp.CreateDate"] == "2024-05-02T10:15:00+00:00"  # digitised
    assert "IPTC" not in output  # carried: nothing to warn about


def test_latin1_iptc_without_a_character_set_is_read_as_latin1(tmp_path: Path) -> None:
    iptc = iim((2, 90, "Málaga".encode("latin-1")))
    jpeg(tmp_path / "in.jpg", None, segment(0xED, b"Photoshop 3.0\x00" + resource(0x0404, iptc)))
    upscale(tmp_path / "in.jpg", tmp_path / "out.webp")
    with pyexiv2.Image(str(tmp_path / "out.webp")) as image:
        assert image.read_xmp()["Xmp.photoshop.City"] == "Málaga"


@pytest.mark.parametrize(("digest", "city"), [("matching", "Berlin"), ("stale", "Paris"), ("none", "Berlin")])
def test_iptc_and_xmp_that_disagree_are_reconciled_as_the_mwg_says(tmp_path: Path, digest: str, city: str) -> None:
    """XMP says Berlin, IPTC says Paris. A digest matching the IPTC block: the two were written together, XMP
    stands. A stale digest: the IPTC was edited since by a program unaware of XMP, IPTC wins. No digest: XMP
    stands. A value only IPTC has (the headline) is added in every case."""
    iptc = iim((2, 90, "Paris"), (2, 105, "Only in IPTC"))
    resources = resource(0x0404, iptc)
    if digest != "none":
        resources += resource(0x0425, hashlib.md5(iptc if digest == "matching" else b"older").digest())
    packet = xmp_packet('<rdf:Description rdf:about="" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
                        '<photoshop:City>Berlin</photoshop:City></rdf:Description>')
    jpeg(tmp_path / "in.jpg", None, segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet)
         + segment(0xED, b"Photoshop 3.0\x00" + resources))
    upscale(tmp_path / "in.jpg", tmp_path / "out.webp")
    with pyexiv2.Image(str(tmp_path / "out.webp")) as image:
        xmp = image.read_xmp()
    assert xmp["Xmp.photoshop.City"] == city and xmp["Xmp.photoshop.Headline"] == "Only in IPTC"


# --- sidecars and privacy --------------------------------------------------------------------------------------

GPS_XMP = xmp_packet('<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" '
                     'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
                     'exif:GPSLatitude="52,31.2N" tiff:ImageWidth="64"><exif:GPSLongitude>13,24.9E'
                     '</exif:GPSLongitude><dc:subject><rdf:Bag><rdf:li>kept</rdf:li></rdf:Bag></dc:subject>'
                     '</rdf:Description>')


def sidecar_values(path: Path) -> dict[str, str]:
    root = ET.fromstring(path.read_bytes().split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0])
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    values = {k.split("}")[1]: v for k, v in description.attrib.items() if "}" in k}
    values.update({child.tag.split("}")[1]: "".join(child.itertext()) for child in description})
    return values


@pytest.mark.parametrize(("sidecar", "written"), [("in.xmp", "out.xmp"), ("in.jpg.xmp", "out.png.xmp")])
def test_a_sidecar_is_written_beside_the_output_with_its_sizes(tmp_path: Path, sidecar: str, written: str) -> None:
    jpeg(tmp_path / "in.jpg")
    (tmp_path / sidecar).write_bytes(GPS_XMP)
    upscale(tmp_path / "in.jpg", tmp_path / "out.png")
    values = sidecar_values(tmp_path / written)
    assert values["ImageWidth"] == "128" and values["subject"] == "kept" and "GPSLatitude" in values
    upscale(tmp_path / "in.jpg", tmp_path / "private.png", "--metadata", "no-location")
    private = sidecar_values(tmp_path / written.replace("out", "private"))
    assert "GPSLatitude" not in private and "GPSLongitude" not in private and private["subject"] == "kept"
    upscale(tmp_path / "in.jpg", tmp_path / "bare.png", "--metadata", "minimal")
    assert not list(tmp_path.glob("bare*.xmp"))


def test_no_location_removes_gps_from_exif_and_xmp_and_its_bytes(tmp_path: Path) -> None:
    block = camera_block(OLYMPUS)
    jpeg(tmp_path / "in.jpg", block, segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + GPS_XMP))
    before = exif_of(tmp_path / "in.jpg")
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg", "--metadata", "no-location")
    with pyexiv2.Image(str(tmp_path / "out.jpg")) as image:
        exif, xmp = image.read_exif(), image.read_xmp()
    assert not [k for k in exif if "GPS" in k] and not [k for k in xmp if "GPS" in k]
    assert maker_tags(exif) == maker_tags(before) and exif["Exif.Image.Make"] == OLYMPUS
    assert xmp["Xmp.dc.subject"] == ["kept"]
    latitude = struct.pack(">IIIIII", 52, 1, 31, 1, 1234, 100)  # the position's bytes, as the camera wrote them
    reference = struct.pack(">HHI", 1, 2, 2) + b"N\x00\x00\x00"  # the GPS directory's GPSLatitudeRef entry
    for left_behind in (latitude, reference):
        assert left_behind in (tmp_path / "in.jpg").read_bytes()
        assert left_behind not in (tmp_path / "out.jpg").read_bytes()


def test_minimal_keeps_only_the_colour_profile(tmp_path: Path) -> None:
    jpeg(tmp_path / "in.jpg", camera_block(OLYMPUS), segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + GPS_XMP)
         + segment(0xED, b"Photoshop 3.0\x00" + resource(0x0404, FULL_IPTC)), icc_profile=SRGB, dpi=(300, 300))
    for suffix in (".jpg", ".tif", ".webp"):
        upscale(tmp_path / "in.jpg", tmp_path / f"out{suffix}", "--metadata", "minimal")
        with pyexiv2.Image(str(tmp_path / f"out{suffix}")) as image:
            assert image.read_exif() == {} or suffix == ".tif"
            assert not [k for k in image.read_exif() if k.startswith(("Exif.Photo", "Exif.GPS"))]
            assert image.read_xmp() == {} and image.read_iptc() == {} and image.read_icc() == SRGB


def test_every_block_a_format_cannot_hold_is_named(tmp_path: Path) -> None:
    jpeg(tmp_path / "in.jpg", camera_block(OLYMPUS), segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + GPS_XMP)
         + segment(0xED, b"Photoshop 3.0\x00" + resource(0x040A, b"\x01") + resource(0x0404, FULL_IPTC)))
    output = upscale(tmp_path / "in.jpg", tmp_path / "out.bmp")
    for block in ("EXIF", "XMP", "IPTC", "Photoshop"):
        assert f"BMP holds no {block}" in output


# --- IPTC after the JPEG's end -----------------------------------------------------------------------------------

def fotostation(iptc: bytes) -> bytes:
    """A FotoStation trailer: a record's data, then its footer (tag, size with the footer, signature)."""
    return iptc + struct.pack(">HII", 1, len(iptc) + 10, 0xA1B2C3D4)


def afcp(iptc: bytes, at: int) -> bytes:
    """An AFCP trailer starting at file offset ``at``: header, one ``IPTC`` entry, the data, the end record."""
    header = b"AXS!" + struct.pack(">HH", 1, 1) + bytes(4)
    entry = b"IPTC" + struct.pack(">II", len(iptc), at + 24)
    return header + entry + iptc + b"AXS!" + struct.pack(">I", at) + bytes(4)


@pytest.mark.parametrize("trailer", ["fotostation", "afcp"])
def test_iptc_in_a_trailer_after_the_jpeg_travels(tmp_path: Path, trailer: str) -> None:
    iptc = iim((2, 25, "trailer keyword"), (2, 120, "caption after the end"))
    jpeg(tmp_path / "plain.jpg")
    data = (tmp_path / "plain.jpg").read_bytes()
    data += fotostation(iptc) if trailer == "fotostation" else afcp(iptc, len(data))
    (tmp_path / "in.jpg").write_bytes(data)
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with pyexiv2.Image(str(tmp_path / "out.jpg")) as image:
        found = image.read_iptc()
    assert found["Iptc.Application2.Keywords"] == ["trailer keyword"]
    assert found["Iptc.Application2.Caption"] == "caption after the end"


def test_a_cmyk_jpeg_keeps_its_xmp_iptc_and_resources(tmp_path: Path) -> None:
    """A CMYK picture is converted to sRGB: a new image, which must not take the file's segments with it."""
    buffer = io.BytesIO()
    Image.fromarray(photo(24, 32)).convert("CMYK").save(buffer, "JPEG")
    data = buffer.getvalue()
    packet = xmp_packet('<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="2"/>')
    extra = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00" + packet) + segment(
        0xED, b"Photoshop 3.0\x00" + resource(0x040A, b"\x01") + resource(0x0404, iim((2, 25, "cmyk"))))
    (tmp_path / "in.jpg").write_bytes(data[:2] + extra + data[2:])
    upscale(tmp_path / "in.jpg", tmp_path / "out.jpg")
    with pyexiv2.Image(str(tmp_path / "out.jpg")) as image:
        assert image.read_xmp()["Xmp.xmp.Rating"] == "2"
        assert image.read_iptc()["Iptc.Application2.Keywords"] == ["cmyk"]
    assert resources_of(app13_of(tmp_path / "out.jpg"))[0x040A] == b"\x01"
