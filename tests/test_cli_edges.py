"""Where a user first touches `upscale`: refusals before work, exit codes, honest progress, timings and reports.

Each test fails with the bug it guards in place (see the module's cases): a run that found an unwritable
output only after upscaling, per-file seconds that ran on while a neighbour was upscaled, a report missing
files finished during Ctrl-C, a counter that forgot bad inputs, and re-runs that trusted broken outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import pipeline
from upscale.cli.app import app
from upscale.job import Job, OutputOptions
from upscale.model import load_model
from upscale.picture import UpscaleOptions

from .conftest import photo


def run(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def images(folder: Path, names=("a.png", "b.png")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(photo(20 + i, 24, seed=i)).save(folder / name)
    return folder


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.fixture
def counted_model(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts model calls, to show that a refusal came before any work."""
    calls: list[int] = []
    real = pipeline.upscale_jobs

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "upscale_jobs", counting)
    return calls


def test_an_output_folder_that_cannot_be_created_is_refused_before_any_image(tmp_path: Path, tiny_model: Path,
                                                                           counted_model: list[int]) -> None:
    (tmp_path / "file").write_text("a file where a folder should be")
    out = tmp_path / "file" / "out"
    result = run("dir", images(tmp_path / "in"), out, "-m", tiny_model)
    assert result.exit_code == 2
    line = one_error_line(result.output)
    assert str(out) in line and "not writable" in line and "in/a.png" not in line
    assert counted_model == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_any_image(tmp_path: Path, tiny_model: Path,
                                                              counted_model: list[int]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o500)
    try:
        result = run("dir", images(tmp_path / "in"), out, "-m", tiny_model)
    finally:
        out.chmod(0o700)
    assert result.exit_code == 2 and str(out) in one_error_line(result.output) and counted_model == []


def test_an_unwritable_report_is_refused_before_the_run(tmp_path: Path, tiny_model: Path,
                                                        counted_model: list[int]) -> None:
    (tmp_path / "file").write_text("x")
    report = tmp_path / "file" / "report.json"
    result = run("dir", images(tmp_path / "in"), tmp_path / "out", "-m", tiny_model, "--report", report)
    assert result.exit_code == 2 and "report" in one_error_line(result.output)
    assert counted_model == [] and not list((tmp_path / "out").glob("*.png"))
    folder_report = run("dir", tmp_path / "in", tmp_path / "out", "-m", tiny_model, "--report", tmp_path)
    assert folder_report.exit_code == 2 and "is a folder" in folder_report.output


def test_write_errors_name_the_output(tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("upscale.job.write_picture", refuse)
    result = run("dir", images(tmp_path / "in", ["a.png"]), tmp_path / "out", "-m", tiny_model)
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert f"cannot write {tmp_path / 'out' / 'a.png'}: Permission denied" in line


@pytest.mark.parametrize("args", [
    ["dir", "{in}", "{in}"],  # IN == OUT without --suffix
    ["dir", "{in}", "{out}", "-m", "no-such-model"],
    ["dir", "{missing}", "{out}"],
    ["image", "{in}/a.png", "{out}/a.xyz", "-m", "{model}"],
    ["eval", "{missing}", "--scale", "2"],
    ["dir", "{in}", "s3://bucket/out"],  # object stores without --engine ray
])
def test_usage_errors_exit_2_with_one_line(tmp_path: Path, tiny_model: Path, args: list[str]) -> None:
    folder = images(tmp_path / "in")
    values = {"in": folder, "out": tmp_path / "out", "missing": tmp_path / "missing", "model": tiny_model}
    result = run(*[a.format(**values) for a in args])
    assert result.exit_code == 2, result.output
    one_error_line(result.output)


def test_the_counter_counts_every_input(tmp_path: Path, tiny_model: Path) -> None:
    folder = images(tmp_path / "in")
    (folder / "c.png").write_text("junk")
    (folder / "d.jpg").write_bytes(b"")
    result = run("dir", folder, tmp_path / "out", "-m", tiny_model)
    counters = [line.split("]")[0] + "]" for line in result.output.splitlines() if line.startswith("[")]
    assert counters == ["[3/4]", "[4/4]"], result.output


def test_each_file_reports_its_own_seconds(tmp_path: Path, tiny_model: Path) -> None:
    """A small file decoded while a large neighbour is upscaled is not charged for the neighbour."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(1200, 1200, seed=1)).save(folder / "a-large.png")
    Image.fromarray(photo(16, 16, seed=2)).save(folder / "b-small.png")
    report = tmp_path / "r.json"
    assert run("dir", folder, tmp_path / "out", "-m", tiny_model, "--report", report).exit_code == 0
    doc = json.loads(report.read_text())
    files = {Path(f["input"]).name: f for f in doc["files"]}
    large, small = files["a-large.png"], files["b-small.png"]
    for f in (large, small):
        assert f["seconds"] == pytest.approx(f["decode_seconds"] + f["upscale_seconds"] + f["write_seconds"])
        assert min(f["decode_seconds"], f["upscale_seconds"], f["write_seconds"]) > 0
    # charged for the neighbour, it would take longer than the neighbour's upscale; its own work is a tiny share
    # of it (a factor 2 of margin: the first file of a run also pays for warming the session's threads)
    assert small["seconds"] < large["upscale_seconds"] / 2
    assert doc["context"]["seconds"] >= large["upscale_seconds"]


@pytest.mark.parametrize("size", [None, (300, 280)])  # small pictures (written together) and large ones
def test_files_written_while_ctrl_c_stops_the_run_are_in_the_results(tmp_path: Path, tiny_model: Path, size,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     plenty_of_memory: None) -> None:
    """Ctrl-C lands while the main thread waits for b.png's write; that write finishes: b.png must be reported."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        Image.fromarray(photo(*(size or (20, 24)), seed=i)).save(folder / name)
    # Ctrl-C as in an interactive shell: a process started in the background (nohup, `cmd &`, some CI runners)
    # inherits SIGINT ignored, and would never see it
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    waiting, released = threading.Event(), threading.Event()

    def slowed(real):
        def write(job, picture, output, *rest):
            if job.output.name == "b.png":
                waiting.set()
                released.wait(30)  # held until Ctrl-C is pending: however loaded the machine, it lands first
            return real(job, picture, output, *rest)
        return write

    def ctrl_c() -> None:
        waiting.wait(30)
        time.sleep(0.2)  # the main thread is waiting for b.png's write by now (it cannot finish before release)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        released.set()

    monkeypatch.setattr(pipeline, "write_timed", slowed(pipeline.write_timed))
    monkeypatch.setattr(pipeline, "write_job", slowed(pipeline.write_job))
    threading.Thread(target=ctrl_c, daemon=True).start()
    header = (size[1], size[0]) if size else (24, 20)
    jobs = [Job(folder / n, tmp_path / "out" / n, "PNG", header) for n in ("a.png", "b.png", "c.png")]
    results = []
    try:
        with pytest.raises(KeyboardInterrupt):
            pipeline.run_pipelined(load_model(tiny_model, "cpu"), jobs, UpscaleOptions(), OutputOptions(),
                                   lambda job, result: results.append(result))
    finally:
        signal.signal(signal.SIGINT, previous)
    on_disk = {p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")}
    assert "b.png" in on_disk
    assert {Path(r.input).name for r in results if r.status == "ok"} == on_disk


def test_a_rerun_redoes_outputs_that_are_not_finished(tmp_path: Path, tiny_model: Path) -> None:
    folder = images(tmp_path / "in", ["a.png", "b.png", "c.jpg", "d.webp", "e.png"])
    out = tmp_path / "out"
    assert run("dir", folder, out, "-m", tiny_model).exit_code == 0
    good = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "a.png").write_bytes(good["a.png"][: len(good["a.png"]) // 2])  # cut short, header intact
    (out / "b.png").write_bytes(b"")
    (out / "c.jpg").write_bytes(good["c.jpg"][:-200])
    (out / "d.webp").write_bytes(good["d.webp"][:-40])
    report = tmp_path / "r.json"
    result = run("dir", folder, out, "-m", tiny_model, "--report", report)
    assert result.exit_code == 0, result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["e.png"]["status"] == "skipped"
    for name, why in [("a.png", "is truncated"), ("b.png", "is unreadable"), ("c.jpg", "is truncated"),
                      ("d.webp", "redone: the existing output is")]:  # libwebp may refuse the header itself
        assert files[name]["status"] == "ok" and any(why in w for w in files[name]["warnings"]), files[name]["warnings"]
        assert (out / name).read_bytes() == good[name]
    # a different scale makes every output the wrong size: all redone, none trusted
    resized = run("dir", folder, out, "-m", tiny_model, "--scale", "3", "--report", report)
    assert resized.exit_code == 0
    statuses = {f["status"] for f in json.loads(report.read_text())["files"]}
    assert statuses == {"ok"} and Image.open(out / "e.png").size == (72, 72)


def test_upscale_train_without_torch_says_what_to_install(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['torch'] = None; sys.argv = ['upscale-train', '--help']; "
            "from upscale.train import main; main()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "pip install 'upscale[train]'" in done.stderr
    export = ("import sys; sys.modules['torch'] = None; "
              f"sys.argv = ['upscale-export', '{tmp_path / 'm.onnx'}', '--checkpoint', 'x.pth']; "
              "from upscale.export.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", export], capture_output=True, text=True)
    assert done.returncode == 2 and "upscale[train]" in done.stderr and "Traceback" not in done.stderr


