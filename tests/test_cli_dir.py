"""`upscale dir` and `upscale image` end to end, through the Typer app."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app

from .conftest import photo

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def make_images(folder: Path, names=("a.png", "b.jpg", "c.webp")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(photo(20 + i, 30, seed=i)).save(folder / name)


def test_dir_upscales_every_image(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in")
    result = run("dir", tmp_path / "in", tmp_path / "out", "--model", tiny_model, "--device", "cpu")
    assert result.exit_code == 0, result.output
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["a.png", "b.jpg", "c.webp"]
    assert Image.open(tmp_path / "out" / "b.jpg").size == (60, 42)
    assert Image.open(tmp_path / "out" / "b.jpg").format == "JPEG"
    assert "3 ok" in result.output


def test_bad_files_are_reported_and_skipped(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in")
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    (tmp_path / "in" / "text.jpg").write_text("not an image")
    good = (tmp_path / "in" / "a.png").read_bytes()
    (tmp_path / "in" / "cut.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "in" / "README.txt").write_text("notes")
    report = tmp_path / "report.json"
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--report", report)
    assert result.exit_code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg", "c.webp"]
    assert "Traceback" not in result.output
    for name, cause in [("empty.png", "empty"), ("text.jpg", "not an image"), ("cut.png", "truncated")]:
        assert any(name in line and cause in line for line in result.output.splitlines()), (name, result.output)
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"ok": 3, "skipped": 0, "failed": 3, "ignored": 1}
    by_name = {Path(f["input"]).name: f for f in doc["files"]}
    assert by_name["a.png"]["output_size"] == [60, 40] and by_name["a.png"]["seconds"] > 0
    assert by_name["cut.png"]["status"] == "failed" and "truncated" in by_name["cut.png"]["error"]


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png"])
    out = tmp_path / "out"
    out.mkdir()
    Image.fromarray(photo(40, 60, seed=9)).save(out / "a.png")  # a finished output of this run's size: kept
    kept = (out / "a.png").read_bytes()
    result = run("dir", tmp_path / "in", out, "-m", tiny_model)
    assert result.exit_code == 0 and "1 skipped" in result.output
    assert (out / "a.png").read_bytes() == kept
    result = run("dir", tmp_path / "in", out, "-m", tiny_model, "--overwrite")
    assert result.exit_code == 0 and Image.open(out / "a.png").size == (60, 40)


def test_recursive_mirrors_tree_and_never_reads_its_output(tmp_path: Path, tiny_model: Path) -> None:
    src = tmp_path / "in"
    make_images(src, ["top.png"])
    make_images(src / "sub" / "deeper", ["x.png"])
    out = src / "upscaled"  # OUT inside IN
    result = run("dir", src, out, "-m", tiny_model, "--recursive")
    assert result.exit_code == 0, result.output
    assert (out / "top.png").exists() and (out / "sub" / "deeper" / "x.png").exists()
    result = run("dir", src, out, "-m", tiny_model, "--recursive")
    assert "2 skipped" in result.output
    assert not (out / "upscaled").exists()
    flat = run("dir", src, tmp_path / "flat", "-m", tiny_model)
    assert sorted(p.name for p in (tmp_path / "flat").iterdir()) == ["top.png"] and flat.exit_code == 0


def test_naming_formats_and_suffix(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png", "b.jpeg", "c.JPG", "d.tif"])
    result = run("dir", tmp_path / "in", tmp_path / "jpg", "-m", tiny_model, "--format", "jpg", "--suffix", "_x2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "jpg").iterdir()) == ["a_x2.jpg", "b_x2.jpeg", "c_x2.JPG", "d_x2.jpg"]
    result = run("dir", tmp_path / "in", tmp_path / "png", "-m", tiny_model, "--format", "png")
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
    for p in (tmp_path / "png").iterdir():
        assert Image.open(p).format == "PNG"
    same = run("dir", tmp_path / "in", tmp_path / "same", "-m", tiny_model)
    assert Image.open(tmp_path / "same" / "d.tif").format == "TIFF" and same.exit_code == 0


def test_output_name_clash_is_an_error_not_an_overwrite(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png", "a.jpg"])
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--format", "png")
    assert result.exit_code == 1 and "clashes" in result.output


def test_in_place_needs_a_suffix_and_never_reprocesses(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png"])
    refused = run("dir", tmp_path / "in", tmp_path / "in", "-m", tiny_model)
    assert refused.exit_code == 2 and "--suffix" in refused.output
    for _ in range(2):
        assert run("dir", tmp_path / "in", tmp_path / "in", "-m", tiny_model, "--suffix", "_x2").exit_code == 0
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.png", "a_x2.png"]


def test_scale_option(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png"])
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--scale", "3")
    assert result.exit_code == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (90, 60)


def test_cuda_without_gpu_exits_2_with_one_line(tmp_path: Path, tiny_model: Path) -> None:
    from upscale.providers import unusable_reason

    if unusable_reason("cuda") is None:
        pytest.skip("this machine may really have CUDA")
    make_images(tmp_path / "in", ["a.png"])
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--device", "cuda")
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "CUDA" in result.output
    assert not (tmp_path / "out").exists()


def test_interrupt_leaves_no_partial_output_and_exits_130(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    make_images(tmp_path / "in", ["a.png", "b.png", "c.png"])
    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        if Path(dst).name == "b.png":
            raise KeyboardInterrupt  # as if Ctrl-C arrived while b.png was being written
        real_replace(src, dst)

    monkeypatch.setattr("upscale.files.os.replace", replace_then_interrupt)
    report = tmp_path / "r.json"
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--report", report)
    assert result.exit_code == 130
    assert "interrupted" in result.output
    # b.png was interrupted mid-write: no b.png and no temp file. Writes already running (the pipeline may
    # be encoding c.png) finish, since each is atomic.
    finals = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "a.png" in finals and "b.png" not in finals and set(finals) <= {"a.png", "c.png"}
    for name in finals:
        Image.open(tmp_path / "out" / name).load()
    doc = json.loads(report.read_text())
    assert doc["context"]["interrupted"] is True
    assert {Path(f["input"]).name for f in doc["files"] if f["status"] == "ok"} == set(finals)


def test_an_interrupt_between_a_rename_and_its_row_still_reports_the_file(tmp_path: Path, tiny_model: Path,
                                                                          monkeypatch) -> None:
    """The window a terminal's progress drawing widens: a file renamed into place, then Ctrl-C before its row
    reached the report. The report must list it (it is on disk), with the run marked interrupted."""
    from upscale import runner as runner_module

    make_images(tmp_path / "in", ["a.png", "b.png", "c.png"])
    real = runner_module.make_engine

    class WritesThenInterrupts:
        def __init__(self, engine) -> None:
            self.engine, self.name = engine, engine.name

        def load(self):
            return self.engine.load()

        def run(self, jobs, on_result, *rest) -> None:
            self.engine.run(jobs[:1], lambda job, result: None, *rest)  # a.png written, its row never sent
            raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "make_engine", lambda *args: WritesThenInterrupts(real(*args)))
    report = tmp_path / "r.json"
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--report", report)
    assert result.exit_code == 130 and (tmp_path / "out" / "a.png").is_file()
    rows = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert rows["a.png"]["status"] == "ok" and "written as the run was interrupted" in rows["a.png"]["warnings"]
    assert "b.png" not in rows and "1 ok" in result.output


def test_sigterm_mid_batch_leaves_only_complete_files(tmp_path: Path) -> None:
    """A real process killed with SIGTERM: every file under a final name decodes completely."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        Image.fromarray(photo(200, 200, seed=i)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    proc = subprocess.Popen([sys.executable, "-m", "upscale", "dir", str(src), str(out), "--device", "cpu",
                             "--png-compression", "9", "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not (out.exists() and len(list(out.glob("*.png"))) >= 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert b"interrupted" in stderr
    finals = list(out.iterdir())
    assert 2 <= len(finals) < 40
    for path in finals:
        assert path.suffix == ".png"
        with Image.open(path) as im:
            im.load()
            assert im.size == (400, 400)
    # SIGTERM writes the report too: interrupted, and every finished file in it
    doc = json.loads(report.read_text())
    assert doc["context"]["interrupted"] is True
    assert {Path(f["output"]).name for f in doc["files"] if f["status"] == "ok"} == {p.name for p in finals}


def test_a_second_ctrl_c_stops_at_once_and_cleanly(tmp_path: Path) -> None:
    """Ctrl-C asks for a clean stop (running writes finish, the report is written); a second one, while that
    cleanup waits, means now: one line, exit 130 within moments, no traceback, and files under final names whole."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(12):
        Image.fromarray(photo(360, 480, seed=i)).save(src / f"{i:02d}.png")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "upscale", "dir", str(src), str(out), "--device", "cpu",
                             "-m", "repsr-x4", "--png-compression", "9"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out.exists() and list(out.glob("*.png"))):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    start = time.time()
    _, stderr = proc.communicate(timeout=60)
    text = stderr.decode(errors="replace")
    # 130 from our handler; -SIGINT where the second one landed as the interpreter was already finishing (its own
    # handler restored): a shell reports both as 130
    assert proc.returncode in (130, -signal.SIGINT), text
    assert time.time() - start < 10 and ("stopped at once" in text or "interrupted:" in text)
    assert "Traceback" not in text and "Exception ignored" not in text
    for path in out.glob("*.png"):
        with Image.open(path) as im:
            im.load()


def test_plain_lines_when_not_a_terminal_and_quiet(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["a.png", "b.png"])
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model)
    assert "[1/2]" in result.output and "[2/2]" in result.output
    quiet = run("dir", tmp_path / "in", tmp_path / "out2", "-m", tiny_model, "--quiet")
    assert quiet.output.strip() == "" and quiet.exit_code == 0


def test_image_command(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path, ["a.png"])
    result = run("image", tmp_path / "a.png", tmp_path / "big.webp", "-m", tiny_model)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "big.webp").size == (60, 40)
    again = run("image", tmp_path / "a.png", tmp_path / "big.webp", "-m", tiny_model)
    assert again.exit_code == 2 and "exists" in again.output
    missing = run("image", tmp_path / "nope.png", tmp_path / "x.png", "-m", tiny_model)
    assert missing.exit_code == 1 and "nope.png" in missing.output and "Traceback" not in missing.output


def test_info_and_models(tiny_model: Path, bare_model: Path) -> None:
    info = run("info", tiny_model)
    assert info.exit_code == 0 and "tiny-test" in info.output and "2 input pixels" in info.output
    bare = run("info", bare_model)
    assert "probe" in bare.output
    assert re.search(r"^\s*scale\s+3\s*$", bare.output, re.M), bare.output  # found by the probe run
    assert re.search(r"^\s*tile overlap\s+16 input pixels", bare.output, re.M)  # the documented default
    models = run("models")
    assert models.exit_code == 0 and "bicubic-x2" in models.output


def test_default_model_works_out_of_the_box(tmp_path: Path) -> None:
    make_images(tmp_path / "in", ["a.png"])
    result = run("dir", tmp_path / "in", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (40, 60, 3)


def test_brackets_in_names_and_messages_are_not_markup(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "photo[red].png").write_bytes(b"broken")
    result = run("dir", folder, tmp_path / "out", "-m", tiny_model)
    assert result.exit_code == 1 and "photo[red].png" in result.output


def test_warnings_are_printed_for_dir_and_image(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [Image.fromarray(photo(seed=i)) for i in range(2)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    result = run("dir", folder, tmp_path / "out", "-m", tiny_model)
    assert result.exit_code == 0 and "warning:" in result.output and "2 frames" in result.output
    single = run("image", folder / "anim.gif", tmp_path / "one.png", "-m", tiny_model)
    assert single.exit_code == 0 and "2 frames" in single.output


def test_small_tiles_equal_the_whole_image_with_the_default_model(tmp_path: Path) -> None:
    """Tiles overlap by the model's receptive field, so --tile 16 gives the whole-image result (within one level
    of rounding): with no overlap, or too little, the seams differ by many levels."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(45, 70, seed=3)).save(folder / "a.png")
    for tile in ("0", "16"):
        result = run("dir", folder, tmp_path / f"out{tile}", "--tile", tile)
        assert result.exit_code == 0, result.output
    whole = np.asarray(Image.open(tmp_path / "out0" / "a.png")).astype(int)
    tiled = np.asarray(Image.open(tmp_path / "out16" / "a.png")).astype(int)
    assert whole.shape == tiled.shape == (90, 140, 3)
    assert np.abs(whole - tiled).max() <= 1


def test_max_pixels_from_the_command_line(tmp_path: Path, tiny_model: Path) -> None:
    make_images(tmp_path / "in", ["small.png"])
    Image.fromarray(photo(60, 80)).save(tmp_path / "in" / "large.png")  # 4,800 pixels
    result = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--max-pixels", "4000")
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = next(x for x in result.output.splitlines() if "large.png" in x and "error" in x)
    assert "80x60 exceeds the 4,000-pixel limit" in line
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small.png"]
    assert run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--max-pixels", "5000").exit_code == 0


def test_what_a_format_cannot_hold_is_a_warning_in_the_report(tmp_path: Path, tiny_model: Path) -> None:
    from upscale.deep_color import encode_png16

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.dstack([photo(20, 24), np.full((20, 24), 128, np.uint8)])).save(folder / "alpha.png")
    (folder / "deep.png").write_bytes(encode_png16(photo(20, 24).astype(np.uint16) * 257))
    for fmt, warned in [("jpg", {"alpha.png": "JPEG has no alpha channel", "deep.png": "JPEG holds 8 bits"}),
                        ("png", {}),
                        ("webp", {"deep.png": "WEBP holds 8 bits per channel"})]:
        report = tmp_path / f"{fmt}.json"
        result = run("dir", folder, tmp_path / fmt, "-m", tiny_model, "--format", fmt, "--report", report)
        assert result.exit_code == 0, result.output
        files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
        for name, entry in files.items():
            if name in warned:
                assert any(warned[name] in w for w in entry["warnings"]), (fmt, entry)
            else:
                assert not entry["warnings"], (fmt, entry)
