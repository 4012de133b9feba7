"""One file's trouble is that file's row, on every path and at every stage; no parser of ours can be made to hang,
and no file comes out silently wrong (turned twice, grey-filled, depth or alpha lost without a word)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from onnxruntime.capi.onnxruntime_pybind11_state import Fail
from PIL import Image

import upscale.job as job_module
import upscale.planning as planning_module
from upscale import run_directory
from upscale.decoding import read_image
from upscale.errors import ModelRunError
from upscale.job import Job, OutputOptions, run_job
from upscale.model import _run_session, load_model
from upscale.photo_metadata import from_jpeg_segments, merge_xmp
from upscale.picture import UpscaleOptions
from upscale.untrusted import UnsafeFileError, check_safetensors

from .conftest import photo

FAULTS = [TypeError("bad operand"), struct.error("unpack requires a buffer of 8 bytes"), RuntimeError("libtiff"),
          IndexError("list index out of range"), RecursionError("maximum recursion depth"), Fail("[ONNXRuntimeError]")]
STAGES = {  # stage -> (module, function) replaced by one that raises for b.png only
    "probe": [(planning_module, "probe_header")],
    "decode": [(job_module, "read_image")],
    "upscale": [(job_module, "upscale_pictures")],
    "write": [(job_module, "write_picture")],
}


def folder_of(path: Path, size: int = 24, names: tuple[str, ...] = ("a.png", "b.png", "c.png")) -> Path:
    path.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(photo(size, size + 8, seed=i)).save(path / name)
    return path


def break_for_b(monkeypatch: pytest.MonkeyPatch, stage: str, fault: BaseException) -> None:
    """The stage raises ``fault`` on b.png (whichever argument names it) and works on every other file."""
    for module, name in STAGES[stage]:
        original = getattr(module, name)

        def broken(*args, _original=original, **kwargs):
            named = [a for a in args if isinstance(a, Path | str) or hasattr(a, "input")]
            if any("b.png" in str(getattr(a, "input", a)) for a in named) or \
                    (stage == "upscale" and any(getattr(p, "size", None) == (32, 24) for p in args[1])):
                raise fault
            return _original(*args, **kwargs)
        monkeypatch.setattr(module, name, broken)


def assert_only_b_failed(results, fault: BaseException) -> None:
    rows = {Path(r.input).name: r for r in results}
    assert [rows[n].status for n in ("a.png", "b.png", "c.png")] == ["ok", "failed", "ok"], rows
    assert rows["b.png"].error == f"unexpected error, please report: {type(fault).__name__}: {fault}"
    assert "\n" not in rows["b.png"].error
    assert rows["b.png"].traceback and type(fault).__name__ in rows["b.png"].traceback


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: type(f).__name__)
def test_a_fault_at_any_stage_fails_only_its_file_and_the_report_is_written(
        tmp_path: Path, tiny_model: Path, monkeypatch, stage: str, fault: BaseException) -> None:
    monkeypatch.delenv("UPSCALE_DEBUG", raising=False)
    src = folder_of(tmp_path / "in", size=24)  # small pictures: decoded ahead, upscaled and written as one group
    if stage == "upscale":  # b.png alone is 32x24 here, so the batched call names it by its size
        Image.fromarray(photo(24, 32, seed=1)).save(src / "b.png")
        for name in ("a.png", "c.png"):
            Image.fromarray(photo(30, 30, seed=2)).save(src / name)
    break_for_b(monkeypatch, stage, fault)
    report = tmp_path / "report.json"
    run = run_directory(src, tmp_path / "out", str(tiny_model), device="cpu", report=report)
    assert_only_b_failed(run.results, fault)
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["files"]}
    assert rows["b.png"]["traceback"] and rows["a.png"]["traceback"] is None
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


@pytest.mark.parametrize("stage", ["decode", "upscale", "write"])
@pytest.mark.parametrize("path", ["large", "run_job", "uri", "ray"])
def test_every_engine_path_keeps_a_fault_to_its_file(tmp_path: Path, tiny_model: Path, monkeypatch, stage: str,
                                                     path: str) -> None:
    """Large pictures (one at a time through the pipeline), `run_job` (upscale image, Ray tasks), object-store
    folders (file:// URIs) and the Ray engine's scheduling (its task API faked in this process)."""
    monkeypatch.delenv("UPSCALE_DEBUG", raising=False)
    fault = TypeError("bad operand")
    src = folder_of(tmp_path / "in", size=300 if path == "large" else 24)
    if stage == "upscale":  # b.png is told by its size: 32x24 (others 30x30), or 310 wide among large ones
        Image.fromarray(photo(24, 32, seed=1) if path != "large" else photo(300, 310)).save(src / "b.png")
        for name in ("a.png", "c.png") if path != "large" else ():
            Image.fromarray(photo(30, 30, seed=2)).save(src / name)
    if stage == "upscale" and path == "large":
        monkeypatch.setattr(job_module, "upscale_pictures", _raising_for_width(job_module.upscale_pictures, 310))
    else:
        break_for_b(monkeypatch, stage, fault)
    if path in ("large", "uri"):
        where = (src, tmp_path / "out") if path == "large" else (src.as_uri(), (tmp_path / "out").as_uri())
        results = run_directory(*where, str(tiny_model), device="cpu").results
    elif path == "run_job":
        model = load_model(tiny_model, "cpu")
        results = [run_job(model, Job(src / n, tmp_path / "out" / n, "PNG"), UpscaleOptions(), OutputOptions())
                   for n in ("a.png", "b.png", "c.png")]
    else:
        from .test_ray_engine import _engine_with, _FakeRay

        jobs, _ = planning_module.plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
        results = []
        _engine_with(_FakeRay(), tiny_model, monkeypatch).run(jobs, lambda job, result: results.append(result))
    assert_only_b_failed(results, fault)


def _raising_for_width(original, width: int):
    def broken(model, pictures, *args, **kwargs):
        if any(p.size[0] == width for p in pictures):
            raise TypeError("bad operand")
        return original(model, pictures, *args, **kwargs)
    return broken


def test_a_failure_outside_any_file_still_writes_the_report_and_is_one_line(tmp_path: Path, tiny_model: Path,
                                                                             monkeypatch) -> None:
    src = folder_of(tmp_path / "in")
    report = tmp_path / "report.json"
    env = {**{k: v for k, v in os.environ.items() if k != "UPSCALE_DEBUG"},
           "PYTHONPATH": str(tmp_path)}  # sitecustomize breaks the engine in the child process
    (tmp_path / "sitecustomize.py").write_text(
        "import upscale.engines.local as local\n"
        "def run(self, *a, **k):\n    raise RuntimeError('the engine broke')\n"
        "local.LocalEngine.run = run\n")
    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(src), str(tmp_path / "out"), "-m",
                           str(tiny_model), "--report", str(report)], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "unexpected error, please report: RuntimeError: the engine broke" in done.stderr
    context = json.loads(report.read_text())["context"]
    assert context["error"] == "the run stopped: RuntimeError: the engine broke"


def test_onnxruntime_errors_at_run_time_are_one_line_and_out_of_memory_is_named() -> None:
    class Session:
        def __init__(self, message: str) -> None:
            self.message = message

        def run(self, *args):
            raise Fail(self.message + "\nStacktrace:\n...")

    with pytest.raises(ModelRunError, match=r"^the model failed on this picture: \[ONNXRuntimeError\] bad node$"):
        _run_session(Session("[ONNXRuntimeError] bad node"), "input", np.zeros(1))
    with pytest.raises(MemoryError):
        _run_session(Session("Failed to allocate memory for requested buffer of size 123"), "input", np.zeros(1))


@pytest.mark.parametrize("header", [b'{"a": ' + b"9" * 4400 + b"}", b"[" * 100_000 + b"]" * 100_000])
def test_a_safetensors_header_of_huge_numbers_or_deep_nesting_is_refused(tmp_path: Path, header: bytes) -> None:
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(UnsafeFileError, match="header is not JSON we read"):
        check_safetensors(path)


# --- bounded work ---------------------------------------------------------------------------------------------


def test_the_extended_xmp_merge_is_linear_on_hostile_packets() -> None:
    """1 MB of ``<rdf:RDF `` without ``>`` (the backtracking expression never finished) and an extension note after
    1 MB of white space: each merges in well under a second."""
    hostile = b"<rdf:RDF " * 120_000
    start = time.perf_counter()
    assert merge_xmp(b"<x><rdf:RDF></rdf:RDF></x>", hostile) == b"<x><rdf:RDF></rdf:RDF></x>"
    guid = b"0" * 32
    standard = b"<rdf:RDF>" + b" " * 1_000_000 + b'xmpNote:HasExtendedXMP="' + guid + b'"</rdf:RDF>'
    part = b"http://ns.adobe.com/xmp/extension/\x00" + guid + struct.pack(">II", 20, 0) + b"<rdf:RDF><a/></rdf:RDF>"
    merged = from_jpeg_segments([("APP1", b"http://ns.adobe.com/xap/1.0/\x00" + standard), ("APP1", part)]).xmp
    assert merged == b"<rdf:RDF><a/></rdf:RDF>"
    assert time.perf_counter() - start < 2.0


def test_an_extended_xmp_part_too_short_for_its_header_is_skipped() -> None:
    short = b"http://ns.adobe.com/xmp/extension/\x00" + b"0" * 20
    assert from_jpeg_segments([("APP1", short)]).xmp is None


def test_a_fifo_among_the_inputs_is_ignored_and_never_opened(tmp_path: Path, tiny_model: Path) -> None:
    src = folder_of(tmp_path / "in")
    os.mkfifo(src / "x.png")  # opening it for reading would block until a writer comes: never
    run = run_directory(src, tmp_path / "out", str(tiny_model), device="cpu")
    rows = {Path(r.input).name: r for r in run.results}
    assert rows["x.png"].status == "ignored" and "not a regular file" in rows["x.png"].error
    assert run.counts["ok"] == 3


def test_frames_are_counted_only_as_far_as_the_warning_needs(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, np.zeros((300, 4, 4), np.uint8), photometric="minisblack")
    assert "100 or more frames" in read_image(path).warnings[0]


# --- never silently wrong -------------------------------------------------------------------------------------


def _exiv2_orientation(path: Path) -> int:
    """The orientation tag as exiv2 reads it (not Pillow, not us)."""
    import pyexiv2

    with pyexiv2.Image(str(path)) as image:
        exif = image.read_exif()
    return int(exif.get("Exif.Image.Orientation", 1))


_TURNS = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
          5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
          8: lambda a: np.rot90(a, 1)}
"""EXIF orientation -> how the stored pixels turn upright, written here from the EXIF specification's table."""


def _save(pixels: np.ndarray, path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    if pixels.dtype == np.uint16:
        tifffile.imwrite(path, pixels, photometric="rgb", extratags=[(274, 3, 1, orientation, True)])
    elif path.suffix == ".webp":
        Image.fromarray(pixels).save(path, exif=exif, lossless=True)
    else:
        Image.fromarray(pixels).save(path, exif=exif)


@pytest.mark.parametrize("suffix", [".png", ".webp", ".tif", ".tif16", ".jpg"])
def test_every_orientation_is_applied_exactly_once_in_every_format(tmp_path: Path, nearest_model: Path,
                                                                   suffix: str) -> None:
    src = tmp_path / "in"
    src.mkdir()
    deep = suffix == ".tif16"
    suffix = ".tif" if deep else suffix
    stored = photo(12, 20).astype(np.uint16) * 257 if deep else photo(12, 20)
    for orientation in range(1, 9):
        _save(stored, src / f"o{orientation}{suffix}", orientation)
    run = run_directory(src, tmp_path / "out", str(nearest_model), device="cpu",
                        output=OutputOptions(format="png"))
    assert run.counts["ok"] == 8
    for orientation in range(1, 9):
        source = src / f"o{orientation}{suffix}"
        assert _exiv2_orientation(source) == orientation
        if suffix == ".jpg":  # lossy: what another decoder reads from this file, turned by the table
            with Image.open(source) as im:
                stored_pixels = np.asarray(im.convert("RGB"))
        else:
            stored_pixels = stored
        with Image.open(tmp_path / "out" / f"o{orientation}.png") as out:
            written = _png16(out) if deep else np.asarray(out)
        expected = _TURNS[orientation](stored_pixels)
        assert written[::2, ::2].shape == expected.shape, orientation
        assert np.array_equal(written[::2, ::2], expected), orientation


def _png16(image: Image.Image) -> np.ndarray:
    """A 16-bit RGB PNG's samples, read with Pillow's 16-bit raw mode (it opens such files as 8-bit RGB)."""
    from upscale.deep_color import read_deep_color

    return read_deep_color(Path(image.filename), "RGB;16B")


def test_a_jpeg_whose_data_is_too_short_for_its_size_fails_and_is_never_grey(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(photo(16, 16)).save(buffer, "JPEG", quality=90)
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 2000, 2000)  # the header now says 2000x2000
    path = tmp_path / "liar.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match=r"compressed data ends early: .* 2000x2000"):
        read_image(path)
    start = time.perf_counter()
    data[sof + 5:sof + 9] = struct.pack(">HH", 13000, 13000)  # minutes and 1.7 GB to decode into grey: refused
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="ends early"):
        read_image(path)
    assert time.perf_counter() - start < 5


def test_sixteen_bit_premultiplied_tiff_keeps_its_depth_and_straight_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    alpha = rng.integers(1, 65536, (6, 5), dtype=np.uint16)
    straight = rng.integers(0, 65536, (6, 5, 3)).astype(np.float64)
    premultiplied = np.rint(straight * alpha[..., None] / 65535).astype(np.uint16)
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, np.concatenate([premultiplied, alpha[..., None]], axis=2), photometric="rgb",
                     extrasamples=["assocalpha"])
    picture = read_image(path)
    assert picture.pixels.dtype == np.uint16 and np.array_equal(picture.alpha, alpha)
    assert np.abs(picture.pixels.astype(float) - straight).max() <= 65535 / alpha.min() + 1


def test_a_bmp_with_alpha_says_its_transparency_is_dropped(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    rgba = np.dstack([photo(10, 12), np.full((10, 12), 128, np.uint8)])
    header = struct.pack("<IiiHHIIiiII", 108, 12, -10, 1, 32, 3, 12 * 10 * 4, 2835, 2835, 0, 0)
    masks = struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000) + b"BGRs" + bytes(48)
    pixels = rgba[..., [2, 1, 0, 3]].tobytes()
    body = header + masks
    (src / "a.bmp").write_bytes(b"BM" + struct.pack("<IHHI", 14 + len(body) + len(pixels), 0, 0, 14 + len(body))
                                + body + pixels)
    with Image.open(src / "a.bmp") as im:
        assert im.mode == "RGBA"  # a real alpha, as Pillow reads it
    run = run_directory(src, tmp_path / "out", str(tiny_model), device="cpu")
    assert any("transparency dropped" in w for w in run.results[0].warnings)


def test_an_mpo_is_read_as_the_jpeg_it_is(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    first, second = Image.fromarray(photo(16, 20)), Image.fromarray(photo(16, 20, seed=3))
    first.save(src / "DSCF0001.MPO", "MPO", save_all=True, append_images=[second])
    run = run_directory(src, tmp_path / "out", str(tiny_model), device="cpu")
    assert run.counts["ok"] == 1 and run.results[0].output.endswith("DSCF0001.jpg")


def test_a_panorama_too_wide_for_webp_fails_alone_in_one_line(tmp_path: Path) -> None:
    src = folder_of(tmp_path / "in")
    Image.new("RGB", (8200, 4)).save(src / "wide.png")
    run = run_directory(src, tmp_path / "out", "bicubic-x2", device="cpu", output=OutputOptions(format="webp"))
    rows = {Path(r.input).name: r for r in run.results}
    assert rows["wide.png"].status == "failed" and "WEBP holds at most 16,383 pixels a side" in rows["wide.png"].error
    assert run.counts["ok"] == 3


def test_a_name_as_long_as_the_filesystem_allows_is_written(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    name = "é" * 100 + "x" * 46 + ".png"  # 250 bytes in UTF-8, within the 255 a name may have
    assert len(name.encode()) == 250
    Image.fromarray(photo(8, 8)).save(src / name)
    run = run_directory(src, tmp_path / "out", str(tiny_model), device="cpu")
    assert run.counts["ok"] == 1 and (tmp_path / "out" / name).is_file()


def test_control_characters_in_names_are_escaped_when_printed(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(photo(8, 8)).save(src / "a\x1b[2Jb\nc.png")
    (src / "bad\x1b]0;title\x07.png").write_bytes(b"not a picture")
    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(src), str(tmp_path / "out"), "-m",
                           str(tiny_model)], capture_output=True, text=True)
    printed = done.stdout + done.stderr
    assert "\x1b" not in printed and "\x07" not in printed
    assert "a\\x1b[2Jb\\nc.png" in printed and "bad\\x1b]0;title\\x07.png" in printed
