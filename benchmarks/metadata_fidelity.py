"""Metadata fidelity on a folder of real photos: every tag ExifTool reads, before and after, per output format,
for `upscale image` and for the plain Pillow approach (resize, then save with the source's EXIF and ICC).

    python benchmarks/metadata_fidelity.py PHOTOS/ [--formats jpg,tif,webp,png]

Needs ExifTool (``apt install libimage-exiftool-perl``). For each group (maker notes, EXIF, GPS, IPTC, XMP,
Photoshop) it prints how many of the source's tags each output keeps unchanged, changes and loses, leaving out
what an upscale must change (sizes, orientation, the thumbnail, file-level facts). IPTC written into XMP for
formats without IPTC is counted as kept when the XMP holds the value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from PIL import Image

GROUPS = ("MakerNotes", "EXIF", "GPS", "IPTC", "XMP", "Photoshop")
EXPECTED = ("ImageWidth", "ImageHeight", "ImageLength", "ExifImageWidth", "ExifImageHeight", "Orientation",
            "PixelXDimension", "PixelYDimension", "ThumbnailOffset", "ThumbnailLength", "ThumbnailImage",
            "Compression", "XResolution", "YResolution", "ResolutionUnit", "YCbCrPositioning", "BitsPerSample",
            "PhotometricInterpretation", "StripOffsets", "StripByteCounts", "RowsPerStrip", "SamplesPerPixel",
            "PlanarConfiguration", "YCbCrSubSampling", "ExifByteOrder", "CurrentIPTCDigest", "PhotoshopThumbnail",
            "SubfileType", "FillOrder", "Predictor", "TileWidth", "TileLength", "TileOffsets", "TileByteCounts",
            "SampleFormat", "SMinSampleValue", "SMaxSampleValue", "ColorMap", "PreviewImageStart",
            "PreviewImageLength", "PreviewImage", "PageName", "PageNumber", "OtherImageStart", "OtherImageLength",
            "CodedCharacterSet", "ApplicationRecordVersion")
"""Tags an upscale changes on purpose (sizes, orientation, thumbnails of the old pixels), or that describe how a
container stores its pixels (byte order, compression, strips, tiles, pages)."""
IPTC_AS_XMP = {"Keywords": "Subject", "Caption-Abstract": "Description", "By-line": "Creator",
               "CopyrightNotice": "Rights", "ObjectName": "Title", "City": "City", "Province-State": "State",
               "Country-PrimaryLocationName": "Country", "Headline": "Headline", "Credit": "Credit",
               "Source": "Source", "Country-PrimaryLocationCode": "CountryCode", "Sub-location": "Location",
               "DateCreated": "DateCreated", "TimeCreated": "DateCreated", "DigitalCreationDate": "CreateDate",
               "DigitalCreationTime": "CreateDate", "Category": "Category", "Urgency": "Urgency",
               "SupplementalCategories": "SupplementalCategories", "SpecialInstructions": "Instructions",
               "By-lineTitle": "AuthorsPosition", "Writer-Editor": "CaptionWriter",
               "OriginalTransmissionReference": "TransmissionReference", "SubjectReference": "SubjectCode"}


def tags(path: Path) -> dict[str, object]:
    """ExifTool's reading: ``group:tag`` -> value, the group being the maker's name for maker notes."""
    out = subprocess.run(["exiftool", "-j", "-a", "-n", "-G0:1", str(path)], capture_output=True, text=True)
    found = json.loads(out.stdout or "[{}]")[0]
    result = {}
    for key, value in found.items():
        parts = key.split(":")
        if len(parts) == 2:  # ExifTool names the group once where both families agree (IPTC:City)
            parts.insert(1, parts[0])
        if len(parts) != 3:
            continue
        family0, family1, name = parts
        group = "GPS" if family1 == "GPS" else family0
        if group in GROUPS and name not in EXPECTED and not name.startswith("Layer"):  # layers: of old pixels
            result[f"{group}:{name}"] = value
    return result


def compare(before: dict[str, object], after: dict[str, object]) -> Counter:
    counts: Counter = Counter()
    xmp_values = {k.split(":", 1)[1]: v for k, v in after.items() if k.startswith("XMP:")}
    for key, value in before.items():
        group, name = key.split(":", 1)
        if key in after:
            counts[group, "kept" if after[key] == value else "changed"] += 1
        elif group == "IPTC" and IPTC_AS_XMP.get(name) in xmp_values:
            counts[group, "kept"] += 1
        else:
            counts[group, "lost"] += 1
    return counts


def plain_pillow(source: Path, target: Path) -> None:
    """What most scripts do: resize, save with the source's EXIF bytes and ICC profile."""
    with Image.open(source) as im:
        exif, icc = im.info.get("exif"), im.info.get("icc_profile")
        big = im.convert("RGB").resize((im.width * 2, im.height * 2), Image.Resampling.BICUBIC)
        params = {k: v for k, v in (("exif", exif), ("icc_profile", icc)) if v}
        big.save(target, **params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--formats", default="jpg,tif,webp,png")
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".tif", ".tiff"))
    totals: dict[tuple[str, str], Counter] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for photo in photos:
            before = tags(photo)
            for fmt in args.formats.split(","):
                for tool in ("upscale", "pillow"):
                    target = Path(scratch) / f"{photo.stem}.{tool}.{fmt}"
                    try:
                        if tool == "upscale":
                            subprocess.run([sys.executable, "-m", "upscale", "image", str(photo), str(target), "-m",
                                            "bicubic-x2", "-q", "--overwrite"], check=True, capture_output=True)
                        else:
                            plain_pillow(photo, target)
                    except Exception as exc:  # a file either tool cannot write: say so, go on
                        print(f"{photo.name} -> {fmt} ({tool}): {str(exc).splitlines()[0]}")
                        continue
                    totals.setdefault((fmt, tool), Counter()).update(compare(before, tags(target)))
    print(f"{len(photos)} photos; per group: kept / changed / lost tags")
    print(f"{'format':7} {'tool':8} " + " ".join(f"{g:>17}" for g in GROUPS))
    for (fmt, tool), counts in sorted(totals.items()):
        cells = [f"{counts[g, 'kept']:>5}/{counts[g, 'changed']:>4}/{counts[g, 'lost']:>5}" for g in GROUPS]
        print(f"{fmt:7} {tool:8} " + " ".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
