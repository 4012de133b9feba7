"""Many small files: pictures of the same shape are upscaled several to a batch, with exactly the bytes each gets
alone; auto's choices are kept per picture; a failure inside a batch is still one file's."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from upscale import job as batch_module
from upscale import load_model
from upscale import pipeline as pipeline_module
from upscale.auto import AutoModel
from upscale.job import Job, OutputOptions, run_job
from upscale.model import UpscaleModel
from upscale.picture import UpscaleOptions
from upscale.pipeline import run_pipelined

from .conftest import photo


def small_jobs(folder: Path, count: int, size=(24, 32), fmt="PNG") -> list[Job]:
    folder.mkdir(parents=True, exist_ok=True)
    jobs = []
    for i in range(count):
        path = folder / f"{i:03d}.png"
        Image.fromarray(photo(*size, seed=i)).save(path)
        jobs.append(Job(path, folder.parent / "out" / path.name, fmt, (size[1], size[0])))
    return jobs


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """The batch size of every model call."""
    sizes: list[int] = []
    real = UpscaleModel.__call__

    def recording(self, batch):
        sizes.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(UpscaleModel, "__call__", recording)
    return sizes


@pytest.mark.parametrize("name", ["tiny", "fast-x2"])
def test_batched_small_pictures_give_the_bytes_each_gets_alone(tmp_path: Path, tiny_model: Path, batches,
                                                               name: str, plenty_of_memory) -> None:
    model = load_model(tiny_model if name == "tiny" else name, "cpu")
    jobs = small_jobs(tmp_path / "in", 20)
    results = []
    run_pipelined(model, jobs, UpscaleOptions(), OutputOptions(), lambda job, r: results.append(r))
    assert [r.status for r in results] == ["ok"] * 20 and [r.input for r in results] == [str(j.input) for j in jobs]
    assert max(batches) >= 8  # several pictures per model call
    batched = {j.output.name: j.output.read_bytes() for j in jobs}
    batches.clear()
    for job in jobs:
        alone = Job(job.input, tmp_path / "alone" / job.output.name, "PNG", job.size)
        assert run_job(model, alone, UpscaleOptions(), OutputOptions()).status == "ok"
        assert alone.output.read_bytes() == batched[job.output.name], job.output.name
    assert max(batches) == 1
    for r in results:  # each file's own share of its batch's time, not the batch's
        assert r.seconds == pytest.approx(r.decode_seconds + r.upscale_seconds + r.write_seconds)


def test_auto_keeps_its_choice_per_picture_inside_a_batch(tmp_path: Path, tiny_model: Path) -> None:
    clean, degraded = load_model(tiny_model, "cpu"), load_model(tiny_model, "cpu")
    pair = AutoModel(clean, degraded)
    folder = tmp_path / "in"
    folder.mkdir()
    jobs = []
    for i in range(8):
        pixels = photo(64, 64, seed=i)
        path = folder / f"{i}.{'jpg' if i % 2 else 'png'}"
        if i % 2:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "JPEG", quality=40)
            path.write_bytes(buffer.getvalue())
        else:
            Image.fromarray(pixels).save(path)
        jobs.append(Job(path, tmp_path / "out" / f"{i}.png", "PNG", (64, 64)))
    results = []
    run_pipelined(pair, jobs, UpscaleOptions(), OutputOptions(), lambda job, r: results.append(r))
    reasons = [r.model_reason for r in results]
    assert all(reason.startswith("JPEG quality ~40") for reason in reasons[1::2])
    assert all(reason.startswith("clean") for reason in reasons[0::2])


def test_a_failure_inside_a_batch_is_one_files(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    model = load_model(tiny_model, "cpu")
    jobs = small_jobs(tmp_path / "in", 6)
    real = batch_module.upscale_pictures

    def failing(runner, pictures, options, on_pixels=None):
        if any(int(p.pixels[0, 0, 0]) == int(photo(24, 32, seed=3)[0, 0, 0]) and
               np.array_equal(p.pixels, photo(24, 32, seed=3)) for p in pictures):
            raise MemoryError
        return real(runner, pictures, options, on_pixels)

    monkeypatch.setattr(batch_module, "upscale_pictures", failing)
    results = []
    run_pipelined(model, jobs, UpscaleOptions(), OutputOptions(), lambda job, r: results.append(r))
    statuses = {Path(r.input).name: r.status for r in results}
    assert statuses.pop("003.png") == "failed" and set(statuses.values()) == {"ok"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{i:03d}.png" for i in (0, 1, 2, 4, 5)]


def test_large_pictures_are_not_held_back_for_batching(tmp_path: Path, tiny_model: Path, batches) -> None:
    model = load_model(tiny_model, "cpu")
    jobs = small_jobs(tmp_path / "in", 3, size=(300, 300))  # 90,000 pixels: above the small-picture bound
    run_pipelined(model, jobs, UpscaleOptions(tile=0), OutputOptions(), lambda job, r: None)
    assert batches == [1, 1, 1]
    assert pipeline_module.SMALL_PICTURE < 300 * 300


def test_small_outputs_are_synced_once_per_group_before_any_final_name(tmp_path: Path, tiny_model: Path,
                                                                       monkeypatch, plenty_of_memory) -> None:
    """Durability moved from one fsync per file to one filesystem sync per group, before the renames: at the sync
    no output of the group is under its final name, and none is reported before its group's sync."""
    from upscale import files

    jobs = small_jobs(tmp_path / "in", 20)
    out = tmp_path / "out"
    fsyncs, syncs, reported = [], [], []
    real_fsync, real_sync = files.os.fsync, files.sync_filesystem
    monkeypatch.setattr(files.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])

    def sync(folder):
        group = sys._getframe(1).f_locals["self"]  # the Publication syncing: its own staged outputs
        own = {path.name for _, path in group.staged}
        visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
        syncs.append((len(own), own & visible, own & set(reported)))
        real_sync(folder)

    monkeypatch.setattr(files, "sync_filesystem", sync)
    run_pipelined(load_model(tiny_model, "cpu"), jobs, UpscaleOptions(), OutputOptions(),
                  lambda job, r: reported.append(job.output.name))
    assert fsyncs == [] and sorted(n for n, _, _ in syncs) == [4, 16]  # 20 small files: groups of 16 and 4
    # at its sync, none of a group's outputs is under its final name or reported (the other group, on the other
    # write thread, may be anywhere in its own publication)
    assert all(published == set() and told == set() for _, published, told in syncs)
    assert sorted(p.name for p in out.iterdir()) == [j.output.name for j in jobs]


def test_a_kill_before_a_group_is_published_leaves_no_final_name(tmp_path: Path, tiny_model: Path,
                                                                 monkeypatch, plenty_of_memory) -> None:
    from upscale import files

    jobs = small_jobs(tmp_path / "in", 5)

    def killed(folder):
        raise KeyboardInterrupt  # the process stops between writing the temporaries and publishing them

    monkeypatch.setattr(files, "sync_filesystem", killed)
    results = []
    with pytest.raises(KeyboardInterrupt):
        run_pipelined(load_model(tiny_model, "cpu"), jobs, UpscaleOptions(), OutputOptions(),
                      lambda job, r: results.append(r))
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == []
    assert [r for r in results if r.status == "ok"] == []


def test_pictures_of_different_depths_share_a_batch_correctly(tiny_model: Path, batches) -> None:
    from upscale.images import Picture
    from upscale.picture import upscale_picture, upscale_pictures

    model = load_model(tiny_model, "cpu")
    eight = photo(24, 32, seed=1)
    sixteen = photo(24, 32, seed=2).astype(np.uint16) * 257 + 3
    grey = photo(24, 32, channels=1, seed=3)
    pictures = [Picture(eight), Picture(sixteen), Picture(grey)]
    together = upscale_pictures(model, pictures, UpscaleOptions())
    assert batches[0] == 3
    for picture, got in zip(pictures, together, strict=True):
        alone = upscale_picture(model, picture, UpscaleOptions())
        assert got.pixels.dtype == alone.pixels.dtype and np.array_equal(got.pixels, alone.pixels)
