"""Planning and running URI folders (pyarrow filesystems) without Ray: file:// stands in for s3://."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from upscale import load_model
from upscale.errors import UpscaleError
from upscale.job import OutputOptions
from upscale.picture import UpscaleOptions

from .conftest import photo

pytest.importorskip("pyarrow")

from upscale.planning import plan_remote
from upscale.remote import run_remote_job


def folder(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for name in ("a.png", "b.jpg", "sub/c.png", ".hidden.png"):
        Image.fromarray(photo(16, 20)).save(root / name)
    (root / "notes.txt").write_text("x")
    return root


def test_plan_matches_local_semantics(tmp_path: Path) -> None:
    src = folder(tmp_path / "in")
    out = tmp_path / "out"
    (out).mkdir()
    Image.fromarray(photo(4, 4)).save(out / "a.webp")
    jobs, known = plan_remote(src.as_uri(), out.as_uri(), OutputOptions(format="webp", recursive=True))
    assert sorted(Path(j.output).name for j in jobs) == ["b.webp", "c.webp"]
    assert {k.status for k in known} == {"skipped", "ignored"}
    flat, _ = plan_remote(src.as_uri(), out.as_uri(), OutputOptions(format="png", overwrite=True))
    assert sorted(Path(j.input).name for j in flat) == ["a.png", "b.jpg"]
    with pytest.raises(UpscaleError, match="--suffix"):
        plan_remote(src.as_uri(), src.as_uri(), OutputOptions())
    with pytest.raises(UpscaleError, match="cannot list"):
        plan_remote((tmp_path / "missing").as_uri(), out.as_uri(), OutputOptions())


def test_run_remote_job_uploads_complete_file(tmp_path: Path, tiny_model: Path) -> None:
    from pyarrow import fs

    src = folder(tmp_path / "in")
    out = tmp_path / "out"
    jobs, _ = plan_remote(src.as_uri(), out.as_uri(), OutputOptions(recursive=True))
    local = fs.LocalFileSystem()
    model = load_model(tiny_model, "cpu")
    results = [run_remote_job(model, local, local, j, UpscaleOptions(), OutputOptions()) for j in jobs]
    assert [r.status for r in results] == ["ok"] * 3
    assert results[0].input_size == (20, 16) and results[0].output_size == (40, 32)
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.png", "b.jpg", "c.png"]
    assert Image.open(out / "sub" / "c.png").size == (40, 32)
