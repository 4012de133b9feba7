"""Atomic files: the temporary lies beside its target (so the rename is atomic, whatever filesystem OUT is on),
is fsynced before the rename, checkpoints go the same way, and what killed writes left is swept every run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import files
from upscale.cli.app import app
from upscale.files import TEMP_SUFFIX, write_atomic

from .conftest import photo


def test_the_temporary_is_beside_the_target_and_fsynced_before_the_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[tuple[str, object]] = []
    real_mkstemp, real_fsync, real_replace = files.tempfile.mkstemp, files.os.fsync, files.os.replace

    def mkstemp(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        events.append(("created", Path(name).parent))
        return fd, name

    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(files.os, "fsync", lambda fd: (events.append(("fsync", fd)), real_fsync(fd))[1])
    monkeypatch.setattr(files.os, "replace", lambda a, b: (events.append(("replace", Path(b))), real_replace(a, b))[1])
    target = tmp_path / "deep" / "out.bin"
    write_atomic(target, b"payload")
    assert [e[0] for e in events] == ["created", "fsync", "replace"]
    assert events[0][1] == target.parent and events[2][1] == target
    assert target.read_bytes() == b"payload"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_training_checkpoints_are_written_atomically(tmp_path: Path, monkeypatch) -> None:
    torch = pytest.importorskip("torch")
    from upscale.train.arch import create_model
    from upscale.train.checkpoint import checkpoint_state, load_checkpoint, save_checkpoint
    from upscale.train.config import TrainConfig

    model = create_model("srcnn", 2)
    state = checkpoint_state(model, None, torch.optim.Adam(model.parameters()), 1, 0.0, TrainConfig(arch="srcnn"))
    path = tmp_path / "last.pt"
    save_checkpoint(path, state)
    before = path.read_bytes()

    def killed(*args):
        raise KeyboardInterrupt  # as if the run were stopped just before the rename

    monkeypatch.setattr(files.os, "replace", killed)
    state["step"] = 2
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, state)
    assert path.read_bytes() == before and load_checkpoint(path)["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_outputs_on_another_filesystem_are_renamed_within_it(tmp_path: Path, tiny_model: Path) -> None:
    """OUT on /dev/shm (tmpfs) while the system's temporary folder is elsewhere: a temporary in /tmp could not be
    renamed onto it atomically; beside the target it can."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem here")
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(20, 24)).save(tmp_path / "in" / "a.png")
    out = shm / f"upscale-test-{os.getpid()}"
    try:
        code = ("import sys, tempfile; from upscale.cli.app import main; sys.argv = ['upscale', 'dir', "
                f"'{tmp_path / 'in'}', '{out}', '-m', '{tiny_model}']; main()")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        assert Image.open(out / "a.png").size == (48, 40)
    finally:
        for p in out.glob("*") if out.exists() else []:
            p.unlink()
        if out.exists():
            out.rmdir()


def test_what_killed_writes_left_is_swept_by_the_next_run(tmp_path: Path, tiny_model: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    Image.fromarray(photo(20, 24)).save(tmp_path / "in" / "a.png")
    Image.fromarray(photo(20, 24, seed=1)).save(tmp_path / "in" / "sub" / "b.png")
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = [out / f".a.png.x1y2{TEMP_SUFFIX}", out / "sub" / f".b.png.q9{TEMP_SUFFIX}"]
    for p in stale:
        p.write_bytes(b"half a file")
    (out / "notes.txt").write_text("the user's")
    result = CliRunner().invoke(app, ["dir", str(tmp_path / "in"), str(out), "-r", "-m", str(tiny_model)])
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.png", "b.png", "notes.txt"]
