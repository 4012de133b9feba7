"""Never run out of memory: predicted before decoding, refused with both numbers, bounded in flight; PNG streamed."""

from __future__ import annotations

import io
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from upscale import load_model, memory
from upscale import pipeline as pipeline_module
from upscale.job import Job, OutputOptions
from upscale.memory import Budget, budget, image_need, parse_size, refusal
from upscale.picture import UpscaleOptions
from upscale.pipeline import run_pipelined
from upscale.planning import plan_directory
from upscale.png import SIGNATURE, _chunk, write_png

from .conftest import photo


def huge_png(path: Path, side: int) -> None:
    """A valid side x side RGB PNG (black) of a few hundred KB: its header is all the planner reads."""
    compressor, row = zlib.compressobj(9), bytes(side * 3 + 1)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + _chunk(b"IDAT", idat) + _chunk(b"IEND", b""))


def test_an_oversized_image_is_refused_under_an_address_space_limit_and_the_rest_succeed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    huge_png(folder / "huge.png", 12000)  # 144 MP in, 576 MP out at 2x: about 3.8 GB predicted
    for i in range(2):
        Image.fromarray(photo(40, 48, seed=i)).save(folder / f"small{i}.png")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))

    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(folder), str(tmp_path / "out"), "-m",
                           "bicubic-x2"], preexec_fn=limit, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    line = next(x for x in done.stderr.splitlines() if "huge.png" in x)
    assert "needs 3.8 GB" in line and "available (the address-space limit)" in line and "smaller --scale" in line
    assert "Traceback" not in done.stderr and "2 ok, 1 failed" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small0.png", "small1.png"]
    for name in ("small0.png", "small1.png"):
        assert Image.open(tmp_path / "out" / name).size == (96, 80)


def test_the_budget_names_its_limit_and_max_memory_counts() -> None:
    assert parse_size("800M") == 800 * 2**20 and parse_size("4G") == 4 * 2**30 and parse_size("1.5GB") == 1.5 * 2**30
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")
    small = budget(200 * 2**20)
    assert small.limited_by == "--max-memory" and small.available < 200 * 2**20
    assert budget().available > small.available
    message = refusal(5 * 10**9, Budget(10**9, "--max-memory"), "JPEG")
    assert message == ("needs 5.0 GB, 1.0 GB available (--max-memory); try a smaller --scale, PNG output "
                       "(written band by band) or a larger --max-memory")


def test_the_prediction_grows_with_what_costs_memory() -> None:
    base = image_need((1000, 1000), 2)
    assert image_need((2000, 2000), 2) > 3 * (base - image_need((1, 1), 2))  # pixels, not a constant
    assert image_need((1000, 1000), 4) > base  # the scale
    assert image_need((1000, 1000), 2, deep=True) > base  # 16 bits
    assert image_need((1000, 1000), 2, fmt="JPEG") > base  # Pillow's copy for formats it encodes
    assert Job(Path("a"), Path("b"), "PNG", (1000, 1000)).need(2) == base
    assert Job(Path("a"), Path("b"), "PNG").need(2) is None  # no header read: no prediction


def test_images_in_flight_stay_within_the_budget(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    """Room for two images: however many decoders and encoders there are, never three in memory at once."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(photo(60, 60, seed=i)).save(folder / f"{i}.png")
    jobs, _ = plan_directory(folder, tmp_path / "out", OutputOptions())
    need = jobs[0].need(2.0)
    monkeypatch.setattr(pipeline_module, "budget", lambda max_memory=None: Budget(int(need * 2.5), "test"))
    in_flight, peak = set(), [0]
    real_decode = pipeline_module._decode

    def decode(job, *args):
        in_flight.add(job.input.name)
        peak[0] = max(peak[0], len(in_flight))
        return real_decode(job, *args)

    monkeypatch.setattr(pipeline_module, "_decode", decode)
    results = []

    def finished(job, result) -> None:
        in_flight.discard(job.input.name)
        results.append(result)

    run_pipelined(load_model(tiny_model, "cpu"), jobs, UpscaleOptions(), OutputOptions(), finished,
                  workers=pipeline_module.IOWorkers(3, 4))
    assert [r.status for r in results] == ["ok"] * 6
    assert peak[0] == 2


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_written_in_bands_decodes_to_the_same_pixels(dtype, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    peak = np.iinfo(dtype).max
    rgb = rng.integers(0, peak + 1, (150, 37, 3)).astype(dtype)  # 150 rows: three bands
    alpha = rng.integers(0, peak + 1, (150, 37)).astype(dtype)
    buffer = io.BytesIO()
    size = write_png(buffer, rgb, alpha, icc_profile=b"not checked", compress_level=1)
    assert size == len(buffer.getvalue())
    if dtype == np.uint8:
        with Image.open(io.BytesIO(buffer.getvalue())) as im:
            assert im.mode == "RGBA" and np.array_equal(np.asarray(im), np.dstack([rgb, alpha]))
    else:
        from upscale.decoding import read_image

        (tmp_path / "d.png").write_bytes(buffer.getvalue())
        pic = read_image(tmp_path / "d.png")
        assert np.array_equal(pic.pixels, rgb) and np.array_equal(pic.alpha, alpha)
    grey = io.BytesIO()
    write_png(grey, rgb[..., :1].astype(np.uint8) if dtype == np.uint8 else rgb[..., :1])
    with Image.open(io.BytesIO(grey.getvalue())) as im:
        assert im.size == (37, 150)
    with pytest.raises(ValueError, match="uint8/uint16"):
        write_png(io.BytesIO(), rgb.astype(np.float32))


def test_a_full_disk_stops_the_run_and_names_what_was_not_attempted(tmp_path: Path, tiny_model: Path,
                                                                     monkeypatch) -> None:
    import errno
    import json

    from typer.testing import CliRunner

    from upscale import job as batch
    from upscale.cli.app import app

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(photo(20, 24, seed=i)).save(folder / f"{i}.png")
    real, writes = batch.write_picture, []

    def filling_up(path, *args, **kwargs):
        writes.append(path.name)
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(batch, "write_picture", filling_up)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "-m", str(tiny_model),
                                      "--report", str(report)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    files = {Path(f["input"]).name: f for f in json.loads(report.read_text())["files"]}
    assert files["0.png"]["status"] == "ok"
    assert files["1.png"]["status"] == "failed" and "No space left on device" in files["1.png"]["error"]
    stopped = [n for n, f in files.items() if f["status"] == "not attempted"]
    assert stopped and all("disk is full" in files[n]["error"] for n in stopped)
    assert len(writes) <= 4  # it stopped writing: the writes already under way at most, not all six
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png"]  # nothing partial


def fake_kernel(root: Path, monkeypatch, *, meminfo_kb: int = 8_000_000, rss_kb: int = 100_000,
                cgroup: str = "0::/job/step", files: dict[str, str] | None = None) -> None:
    """A fake /proc and cgroup tree for `upscale.memory` (the kernel's own units: kB in /proc, bytes in cgroups)."""
    proc, groups = root / "proc", root / "cgroup"
    (proc / "self").mkdir(parents=True)
    (proc / "meminfo").write_text(f"MemTotal:       16000000 kB\nMemAvailable:   {meminfo_kb} kB\n")
    (proc / "self" / "status").write_text(f"VmSize:   200000 kB\nVmRSS:   {rss_kb} kB\n")
    (proc / "self" / "cgroup").write_text(cgroup + "\n")
    for name, text in (files or {}).items():
        (groups / name).parent.mkdir(parents=True, exist_ok=True)
        (groups / name).write_text(text)
    groups.mkdir(exist_ok=True)
    monkeypatch.setattr(memory, "PROC", proc)
    monkeypatch.setattr(memory, "CGROUP", groups)


def test_proc_figures_are_read_in_kilobytes(tmp_path: Path, monkeypatch) -> None:
    fake_kernel(tmp_path, monkeypatch, meminfo_kb=3_000_000)
    assert budget() == Budget(3_000_000 * 1024, "available memory")


def test_cgroup_v2_usage_is_subtracted_from_the_tightest_limit_above_the_process(tmp_path: Path,
                                                                               monkeypatch) -> None:
    fake_kernel(tmp_path, monkeypatch, files={
        "memory.max": "max", "memory.current": "999",  # the root: no limit
        "job/memory.max": str(2 * 2**30), "job/memory.current": str(2**30),  # the job: 1 GiB left
        "job/step/memory.max": "max", "job/step/memory.current": str(2**29),
    })
    assert budget() == Budget(2**30, "the cgroup's memory limit")


def test_cgroup_v1_memory_controller_and_its_no_limit_value(tmp_path: Path, monkeypatch) -> None:
    fake_kernel(tmp_path, monkeypatch, cgroup="4:memory:/box\n0::/", files={
        "memory/box/memory.limit_in_bytes": str(3 * 2**30), "memory/box/memory.usage_in_bytes": str(2**30),
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "5",
    })
    assert budget() == Budget(2 * 2**30, "the cgroup's memory limit")
    fake_kernel(tmp_path / "free", monkeypatch, cgroup="4:memory:/", files={
        "memory/memory.limit_in_bytes": "9223372036854771712", "memory/memory.usage_in_bytes": "5"})
    assert budget().limited_by == "available memory"


def test_max_memory_counts_from_the_resident_set(tmp_path: Path, monkeypatch) -> None:
    fake_kernel(tmp_path, monkeypatch, rss_kb=100_000)
    assert budget(500 * 2**20) == Budget(500 * 2**20 - 100_000 * 1024, "--max-memory")


def test_max_memory_from_the_command_line_reaches_the_planner(tmp_path: Path, tiny_model: Path) -> None:
    from typer.testing import CliRunner

    from upscale.cli.app import app

    (tmp_path / "in").mkdir()
    Image.fromarray(photo(40, 40)).save(tmp_path / "in" / "a.png")
    args = ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", str(tiny_model)]
    refused = CliRunner().invoke(app, [*args, "--max-memory", "1M"])
    assert refused.exit_code == 1 and "(--max-memory)" in refused.output and "a larger --max-memory" in refused.output
    assert CliRunner().invoke(app, [*args, "--max-memory", "64G"]).exit_code == 0


def test_encoders_that_copy_and_16_bit_samples_cost_what_the_model_says() -> None:
    size, factor = (1000, 800), 3
    outputs = 1000 * 800 * factor**2
    png = image_need(size, factor) - memory.WORKING_SET
    assert image_need(size, factor, deep=True) - memory.WORKING_SET == 2 * png  # 16-bit: every buffer doubles
    for fmt in ("JPEG", "WEBP", "TIFF"):  # Pillow's own copy of the output (4 bytes a pixel) and the file
        assert image_need(size, factor, fmt=fmt) - image_need(size, factor) >= 4 * outputs
