"""Files no one here made: Pillow's own test images and a few hundred mutated photos with rich metadata, run through
`upscale dir` as a user would. One file's trouble is that file's row: no traceback, a report row per file, every
output decodes at its reported size, and every file Pillow itself loads comes out as Pillow sees it."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from upscale.photo_metadata import PhotoMetadata, splice_into_jpeg

from .conftest import photo
from .strangers import output_pixels, pillow_reference

CORPUS = Path(__file__).parent / ".corpus"
"""Where the README's test command puts Pillow's source distribution (`pip download --no-binary :all: pillow`)."""


def run_dir(folder: Path, out: Path, *args: str, timeout: float = 600) -> tuple[subprocess.CompletedProcess, dict]:
    """`upscale dir` in a fresh process, as a user runs it; (the process, its report)."""
    report = out.parent / f"{out.name}.json"
    env = {k: v for k, v in os.environ.items() if k != "UPSCALE_DEBUG"}
    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(folder), str(out), "--report", str(report),
                           *args], capture_output=True, text=True, timeout=timeout, env=env)
    return done, json.loads(report.read_text())


def assert_each_file_fails_alone(folder: Path, done: subprocess.CompletedProcess, report: dict) -> None:
    """No traceback, exit 0 or 1, one row per file, and every written output decodes at its reported size."""
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    names = sorted(str(p) for p in folder.iterdir() if not p.name.startswith("."))
    assert sorted(row["input"] for row in report["files"]) == names
    for row in report["files"]:
        if row["status"] == "ok":
            with Image.open(row["output"]) as im:
                im.load()
                assert list(im.size) == list(row["output_size"]), row


# --- Pillow's test images ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pillow_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pillow's ``Tests/images``, every file copied flat into one folder (sub-folder names joined with ``_``)."""
    archives = sorted(CORPUS.glob("pillow-*.tar.gz"))
    if not archives:
        if os.environ.get("CI"):
            pytest.fail(f"no Pillow source distribution in {CORPUS}: the README's test command downloads it")
        pytest.skip(f"no Pillow source distribution in {CORPUS} (pip download --no-binary :all: --no-deps pillow "
                    f"-d {CORPUS})")
    flat = tmp_path_factory.mktemp("pillow") / "images"
    flat.mkdir()
    with tarfile.open(archives[-1]) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isfile() and parts[1:3] == ["Tests", "images"]:
                data = tar.extractfile(member)
                assert data is not None
                (flat / "_".join(parts[3:])).write_bytes(data.read())
    assert len(list(flat.iterdir())) > 1000
    return flat


def test_every_pillow_test_image_fails_alone_or_decodes(pillow_images: Path, tmp_path: Path) -> None:
    done, report = run_dir(pillow_images, tmp_path / "same", "--model", "bicubic-x2")
    assert_each_file_fails_alone(pillow_images, done, report)
    assert report["summary"]["ok"] > 700


def test_every_pillow_test_image_that_pillow_loads_comes_out_as_pillow_sees_it(
        pillow_images: Path, nearest_model: Path, tmp_path: Path) -> None:
    """With a model that repeats pixels and lossless PNG outputs, every other output pixel is an input pixel: a file
    turned twice, a grey fill, a lost alpha or depth is a difference of tens of levels from Pillow's own reading
    (turned by Pillow's own `exif_transpose`)."""
    done, report = run_dir(pillow_images, tmp_path / "png", "--model", str(nearest_model), "--format", "png")
    assert_each_file_fails_alone(pillow_images, done, report)
    wrong = []
    for row in report["files"]:
        reference = pillow_reference(Path(row["input"]))
        if reference is None:
            continue
        if row["status"] == "failed":  # a file Pillow loads fails only for a reason of its own, never a bug
            assert row["error"].startswith("output name clashes") or "unexpected" not in row["error"], row
            continue
        if row["status"] != "ok":
            continue
        if _pillow_reads_high_bytes_only(Path(row["output"])):
            continue
        output = output_pixels(Path(row["output"]))
        h, w = reference.shape[:2]
        assert output.shape[:2] == (2 * h, 2 * w), row
        weight = reference[..., 3:] / 255
        colour = float(np.abs((output[::2, ::2, :3] - reference[..., :3]) * weight).mean())
        # alpha is resized by Lanczos, not the model: each 2x2 block's mean is near the source's alpha
        alpha = float(np.abs(output[..., 3].reshape(h, 2, w, 2).mean(axis=(1, 3)) - reference[..., 3]).mean())
        blocks = output[..., 3].reshape(h, 2, w, 2).mean(axis=(1, 3))
        alpha_kept = alpha <= 12.0 or np.corrcoef(blocks.ravel(), reference[..., 3].ravel())[0, 1] > 0.8
        dropped = any("transparency dropped" in text for text in row["warnings"])
        if colour > 1.0 or not (alpha_kept or dropped):  # premultiplied 16-bit: Pillow's 8-bit rounding
            wrong.append((Path(row["input"]).name, round(colour, 1), round(alpha, 1)))
    assert not wrong, wrong


def _pillow_reads_high_bytes_only(path: Path) -> bool:
    """A 16-bit PNG with alpha (grey or colour), which Pillow opens keeping each sample's high byte only."""
    with path.open("rb") as f:
        head = f.read(26)
    return head[24] == 16 and head[25] in (4, 6)


# --- mutated photos with metadata ----------------------------------------------------------------------------


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112], exif[0x011A] = "Maker", "Model 1", 6, 300.0
    exif.get_ifd(0x8769)[0x9003] = "2024:05:01 10:00:00"
    exif.get_ifd(0x8825)[1] = "N"
    return exif


_XMP = (b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:ImageWidth="24" tiff:Orientation="6"><dc:subject '
        b'xmlns:dc="http://purl.org/dc/elements/1.1/">%s</dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>'
        b'<?xpacket end="w"?>')
_IPTC = b"\x1c\x02\x19\x00\x05hello\x1c\x02\x78\x00\x07caption"


def seeds() -> dict[str, bytes]:
    """One small picture with rich metadata in every format read here (an extended-XMP JPEG among them)."""
    picture = Image.fromarray(photo(24, 32))
    out: dict[str, bytes] = {}
    for name, xmp in (("plain.jpg", _XMP % b"k"), ("extended.jpg", _XMP % (b"k" * 70_000))):
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", exif=_exif(), quality=90)
        out[name] = splice_into_jpeg(buffer.getvalue(), PhotoMetadata(xmp, _IPTC))
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", (_XMP % b"k").decode())
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", exif=_exif(), pnginfo=info)
    out["meta.png"] = buffer.getvalue()
    buffer = io.BytesIO()
    picture.save(buffer, "TIFF", exif=_exif(), tiffinfo={700: _XMP % b"k", 33723: _IPTC})
    out["meta.tif"] = buffer.getvalue()
    buffer = io.BytesIO()
    picture.save(buffer, "WEBP", exif=_exif(), xmp=_XMP % b"k", quality=80)
    out["meta.webp"] = buffer.getvalue()
    buffer = io.BytesIO()
    picture.convert("P").save(buffer, "GIF", save_all=True, append_images=[picture.convert("P").rotate(90)])
    out["anim.gif"] = buffer.getvalue()
    return out


_FIELDS = (b"\x00\x00", b"\xff\xff", b"\xff\xff\xff\xff", b"\x00\x00\x00\x08", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One deterministic mutation: flipped bytes, a cut, or a length/offset field set to 0, 0xFFFF, huge, or back
    to the start of the file."""
    kind = rng.randrange(3)
    data = bytearray(data)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[rng.randrange(2, len(data)):]
    else:
        field = rng.choice(_FIELDS)
        at = rng.randrange(2, max(3, min(len(data), 4096) - len(field)))  # the headers, where lengths and offsets are
        data[at:at + len(field)] = field
    return bytes(data)


def test_mutated_photos_with_metadata_each_fail_alone(tmp_path: Path) -> None:
    folder = tmp_path / "fuzz"
    folder.mkdir()
    rng = random.Random(32)
    for name, data in seeds().items():
        stem, ext = name.rsplit(".", 1)
        (folder / name).write_bytes(data)
        for i in range(50):
            (folder / f"{stem}-{i:02d}.{ext}").write_bytes(mutate(data, rng))
    done, report = run_dir(folder, tmp_path / "out", "--model", "bicubic-x2", timeout=300)
    assert_each_file_fails_alone(folder, done, report)
    by_name = {Path(row["input"]).name: row for row in report["files"]}
    for name in seeds():  # the unmutated seeds themselves come out, metadata and all
        assert by_name[name]["status"] == "ok", by_name[name]
    assert report["summary"]["failed"] > 10  # the mutations did reach the decoders
