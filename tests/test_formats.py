"""AVIF, HEIC and JPEG XL in and out (the codecs' own libraries make the inputs and read the outputs), 10-bit HEIF
kept deep, and a missing plugin as one line naming the extra."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import formats, images
from upscale.cli.app import app

from .conftest import photo

SUFFIX = {"AVIF": ".avif", "HEIF": ".heic", "JXL": ".jxl"}


def _need(fmt: str) -> None:
    if not formats.available(fmt):
        pytest.skip(f"{fmt} codec not installed here")


@pytest.mark.parametrize("fmt", ["AVIF", "HEIF", "JXL"])
def test_a_folder_of_each_format_comes_out_in_it(tmp_path: Path, fmt: str) -> None:
    _need(fmt)
    folder = tmp_path / "in"
    folder.mkdir()
    source = photo(40, 56)
    Image.fromarray(source).save(folder / f"a{SUFFIX[fmt]}", fmt, quality=95)
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", "bicubic-x2"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / f"a{SUFFIX[fmt]}") as written:
        assert written.format == fmt and written.size == (112, 80)
        pixels = np.asarray(written.convert("RGB")).astype(int)
    lossless = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "png"), "-m", "bicubic-x2",
                                        "--format", "png"])
    assert lossless.exit_code == 0, lossless.output
    reference = np.asarray(Image.open(tmp_path / "png" / "a.png")).astype(int)
    assert np.abs(pixels - reference).mean() < 4  # the same upscale, only the final encode lossy


@pytest.mark.parametrize("fmt", ["avif", "heic", "jxl"])
def test_format_option_writes_it_and_carries_xmp_where_it_can(tmp_path: Path, fmt: str) -> None:
    _need(images.FORMATS[fmt])
    pyexiv2 = pytest.importorskip("pyexiv2")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(30, 40)).save(folder / "a.png")
    with pyexiv2.Image(str(folder / "a.png")) as image:
        image.modify_xmp({"Xmp.dc.subject": ["Vögel"]})
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", "bicubic-x2",
                                      "--format", fmt])
    assert result.exit_code == 0, result.output
    written = tmp_path / "out" / f"a{SUFFIX[images.FORMATS[fmt]]}"
    with Image.open(written) as im:
        assert im.format == images.FORMATS[fmt] and im.size == (80, 60)
    if fmt == "jxl":
        assert "JXL holds no XMP" in result.output
    else:
        with pyexiv2.Image(str(written)) as image:
            assert image.read_xmp()["Xmp.dc.subject"] == ["Vögel"]


def test_ten_bit_heif_stays_deep(tmp_path: Path) -> None:
    _need("HEIF")
    import pillow_heif

    from upscale.deep_color import encode_png16

    deep = photo(32, 40).astype(np.uint16) * 257 + 100
    (tmp_path / "deep.png").write_bytes(encode_png16(deep))
    result = CliRunner().invoke(app, ["image", str(tmp_path / "deep.png"), str(tmp_path / "deep.heic"),
                                      "-m", "bicubic-x2"])
    assert result.exit_code == 0 and "8 bits" not in result.output, result.output
    heif = pillow_heif.open_heif(str(tmp_path / "deep.heic"), convert_hdr_to_8bit=False)
    assert heif.info["bit_depth"] == 10 and heif.size == (80, 64)
    back = CliRunner().invoke(app, ["image", str(tmp_path / "deep.heic"), str(tmp_path / "back.png"),
                                    "-m", "bicubic-x2"])
    assert back.exit_code == 0, back.output
    with Image.open(tmp_path / "back.png") as im:
        assert im.info.get("bit_depth", None) in (None, 16)
    raw = (tmp_path / "back.png").read_bytes()
    assert raw[24] == 16  # IHDR bit depth: 16-bit samples, the 10 bits kept


def test_without_the_plugin_one_line_names_the_extra(tmp_path: Path, monkeypatch) -> None:
    def absent(fmt: str) -> str | None:
        return "HEIC needs pillow-heif: pip install 'upscale[heif]'" if fmt == "HEIF" else None

    monkeypatch.setattr(formats, "missing", absent)
    monkeypatch.setattr(images, "missing", absent)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    Image.fromarray(photo(20, 20)).save(folder / "b.png")
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", "bicubic-x2"])
    assert result.exit_code == 1  # the other file still done
    assert "a.heic: HEIC needs pillow-heif: pip install 'upscale[heif]'" in result.output
    assert (tmp_path / "out" / "b.png").exists()
    refused = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "o2"), "-m", "bicubic-x2",
                                       "--format", "heic"])
    assert refused.exit_code == 2 and "upscale[heif]" in refused.output and not (tmp_path / "o2").exists()


def test_avif_and_heic_are_not_ignored_extensions() -> None:
    assert {".avif", ".heic", ".heif", ".jxl"} <= images.image_extensions()


HIDE_PLUGINS = """
import sys
for name in ("pillow_heif", "pillow_jxl"):
    sys.modules[name] = None  # import fails: as on a machine without the extra
from upscale.cli.app import main
sys.argv = ["upscale", *sys.argv[1:]]
main()
"""


def test_without_the_plugins_heic_and_jxl_files_fail_naming_the_extra(tmp_path: Path) -> None:
    """In a process where the plugins really cannot be imported (CI installs them: they are hidden here), an
    upper-case IMG_0001.HEIC and a .jxl are failed rows naming the install command, never ignored with exit 0."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    (folder / "pic.jxl").write_bytes(b"\xff\x0a" + bytes(64))
    Image.fromarray(photo(20, 20)).save(folder / "b.png")
    report = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-c", HIDE_PLUGINS, "dir", str(folder), str(tmp_path / "out"), "-m",
                           "bicubic-x2", "--report", str(report)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["files"]}
    assert rows["IMG_0001.HEIC"]["status"] == "failed" and "upscale[heif]" in rows["IMG_0001.HEIC"]["error"]
    assert rows["pic.jxl"]["status"] == "failed" and "upscale[jxl]" in rows["pic.jxl"]["error"]
    assert rows["b.png"]["status"] == "ok"
