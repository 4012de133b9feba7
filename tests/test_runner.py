"""The per-file step's failure mapping, `run_directory` as a library call, and a runtime that never loads torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from upscale import run_directory
from upscale.errors import ImageError, UpscaleError
from upscale.job import failure_message

from .conftest import photo


def test_failures_are_named_by_step_and_bugs_are_one_line_marked_unexpected(monkeypatch) -> None:
    monkeypatch.delenv("UPSCALE_DEBUG", raising=False)
    assert failure_message(ImageError("a.png", "file is truncated"), "decode") == "file is truncated"
    assert failure_message(MemoryError(), "decode").startswith("out of memory while decoding: ")
    assert "--tile" not in failure_message(MemoryError(), "upscale")  # the tile is not what runs out
    assert failure_message(OSError(28, "No space left on device"), "write", "out/a.png") == \
        "cannot write out/a.png: No space left on device"
    assert failure_message(KeyError("bug"), "upscale") == "unexpected error, please report: KeyError: 'bug'"
    assert failure_message(OSError("not expected\nwhile upscaling"), "upscale") == \
        "unexpected error, please report: OSError: not expected"
    with pytest.raises(KeyboardInterrupt):  # only an interrupt (and SystemExit) passes
        failure_message(KeyboardInterrupt(), "upscale")
    monkeypatch.setenv("UPSCALE_DEBUG", "1")  # developers see the bug itself
    with pytest.raises(KeyError):
        failure_message(KeyError("bug"), "upscale")


def test_run_directory_is_the_whole_command_as_a_call(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(20, 24)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"broken")
    seen: list[str] = []

    class Recorder:
        def model_ready(self, model) -> None:
            seen.append(f"model {model.path.name}")

        def planned(self, jobs, known) -> None:
            seen.append(f"planned {len(jobs)} jobs, {len(known)} known")

        def started(self, job) -> None:
            seen.append(f"start {job.input.name}")

        def pixels(self, count: int) -> None:
            pass

        def finished(self, job, result) -> None:
            seen.append(f"{result.status} {job.input.name}")

        def closed(self) -> None:
            seen.append("closed")

    report = tmp_path / "r.json"
    run = run_directory(folder, tmp_path / "out", str(tiny_model), device="cpu", report=report, observer=Recorder())
    assert run.counts == {"ok": 1, "skipped": 0, "failed": 1, "ignored": 0} and not run.interrupted
    assert seen == ["model tiny-x2.onnx", "planned 1 jobs, 1 known", "start a.png", "ok a.png", "closed"]
    assert json.loads(report.read_text())["context"]["engine"] == "local"
    assert Image.open(tmp_path / "out" / "a.png").size == (48, 40)
    uri = run_directory(folder.as_uri(), (tmp_path / "uri").as_uri(), str(tiny_model), device="cpu")
    assert uri.counts["ok"] == 1  # file:// URIs on the local engine: the same bytes
    assert (tmp_path / "uri" / "a.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()
    with pytest.raises(UpscaleError, match="unknown engine"):
        run_directory(folder, tmp_path / "o", str(tiny_model), engine="dask")


def test_the_runtime_never_imports_torch() -> None:
    """`upscale` needs no torch: importing it and its CLI (every command) must not load it."""
    code = ("import sys, upscale, upscale.cli.app, upscale.runner, upscale.degrade, upscale.auto; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
