"""`upscale dir --engine ray`: the same bytes, report and exit code as the local engine, and a killed worker
loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.errors import UsageError
from upscale.job import OutputOptions, new_result
from upscale.picture import UpscaleOptions
from upscale.planning import plan_directory

from .conftest import photo

ray = pytest.importorskip("ray")

from upscale.engines import ModelSpec, RayOptions  # noqa: E402
from upscale.engines.ray_cluster import RayEngine  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.shutdown()  # a Ray an earlier test's engine joined (the object-store tests run the ray engine) stays up
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def make_folder(folder: Path, n: int, size: int = 64) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(photo(size, size + 8, seed=i)).save(folder / f"{i:02d}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_ray_engine_matches_local_engine(local_ray, tmp_path: Path, tiny_model: Path) -> None:
    src = make_folder(tmp_path / "in", 6)
    runner = CliRunner()
    common = ["-m", str(tiny_model), "--device", "cpu", "--tile", "32"]
    local = runner.invoke(app, ["dir", str(src), str(tmp_path / "local"), *common,
                                "--report", str(tmp_path / "l.json")])
    distributed = runner.invoke(app, ["dir", str(src), str(tmp_path / "ray"), *common, "--engine", "ray",
                                      "--report", str(tmp_path / "r.json")])
    assert local.exit_code == distributed.exit_code == 1  # broken.png fails in both
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()) and len(names) == 6
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
    l_doc, r_doc = json.loads((tmp_path / "l.json").read_text()), json.loads((tmp_path / "r.json").read_text())
    assert l_doc["summary"] == r_doc["summary"] == {"ok": 6, "skipped": 0, "failed": 1, "ignored": 0}
    assert [f["status"] for f in l_doc["files"]] == [f["status"] for f in r_doc["files"]]
    again = runner.invoke(app, ["dir", str(src), str(tmp_path / "ray"), *common, "--engine", "ray"])
    assert "6 skipped" in again.output  # skip-existing works the same


def mixed_folder(folder: Path) -> Path:
    """Two JPEGs (one that auto sends to the photo model), a PNG with alpha, a grey JPEG, a PNG, a 16-bit PNG,
    a broken file, and x.jpg beside x.png (their outputs clash under --format png)."""
    from upscale.deep_color import encode_png16

    folder.mkdir()
    Image.fromarray(photo(48, 64, seed=1)).save(folder / "q50.jpg", quality=50)
    Image.fromarray(photo(48, 64, seed=2)).save(folder / "q95.jpg", quality=95)
    Image.fromarray(np.dstack([photo(40, 56, seed=3), np.full((40, 56), 200, np.uint8)])).save(folder / "alpha.png")
    Image.fromarray(photo(40, 56, seed=4)[..., 0]).save(folder / "grey.jpg", quality=70)
    Image.fromarray(photo(40, 56, seed=5)).save(folder / "x.png")
    Image.fromarray(photo(40, 56, seed=6)).save(folder / "x.jpg", quality=90)
    (folder / "deep.png").write_bytes(encode_png16(photo(32, 40, seed=7).astype(np.uint16) * 257))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def _without_seconds(report: Path) -> dict:
    doc = json.loads(report.read_text())
    for row in doc["files"]:
        row.update({k: 0 for k in row if k.endswith("seconds")}, input=Path(row["input"]).name,
                   output=row["output"] and Path(row["output"]).name)
    return {"summary": doc["summary"], "files": doc["files"], "model": doc["context"]["model"],
            "scale": doc["context"]["scale"]}


@pytest.mark.parametrize("model", [[], ["-m", "repsr-x2", "--format", "png"]], ids=["auto", "fixed"])
def test_the_same_bytes_report_and_exit_code_on_both_engines(local_ray, tmp_path: Path, model: list[str]) -> None:
    src = mixed_folder(tmp_path / "in")
    runs = {}
    for engine in ("local", "ray"):
        report = tmp_path / f"{engine}.json"
        result = CliRunner().invoke(app, ["dir", str(src), str(tmp_path / engine), *model, "--device", "cpu",
                                          "--engine", engine, "--report", str(report)])
        runs[engine] = (result.exit_code, _without_seconds(report))
    assert runs["local"] == runs["ray"]
    code, doc = runs["local"]
    assert code == 1 and doc["summary"]["failed"] == (2 if model else 1)  # broken.png (and the clash)
    if not model:  # auto chose per file on both engines, and not one model for all
        assert {f["model"] for f in doc["files"] if f["status"] == "ok"} == {"repsr-x2", "photo-x2"}
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray").iterdir()) and len(names) == (6 if model else 7)
    for name in names:
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes(), name


def test_a_healthy_ray_run_prints_no_error_lines(tmp_path: Path, tiny_model: Path) -> None:
    """Its own process (Ray's C++ core writes to the process's stderr, which a CliRunner does not capture)."""
    src = make_folder(tmp_path / "in", 2)
    (src / "broken.png").unlink()
    done = subprocess.run([sys.executable, "-m", "upscale", "dir", str(src), str(tmp_path / "out"), "-m",
                           str(tiny_model), "--engine", "ray", "--device", "cpu"], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).splitlines()
    assert not [line for line in lines if " E " in line or "ERROR" in line or "WARNING" in line], lines


def _worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().decode(errors="ignore")
            except OSError:
                continue
            if "ray::upscale_files" in cmd:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds worker processes through /proc")
def test_killed_worker_loses_nothing(local_ray, tmp_path: Path, tiny_model: Path) -> None:
    src = make_folder(tmp_path / "in", 16, size=160)
    out = tmp_path / "out"
    options = OutputOptions(format="png")
    jobs, _ = plan_directory(src, out, options)
    results = []
    error: list[BaseException] = []

    def drive() -> None:
        try:
            engine = RayEngine(ModelSpec(str(tiny_model), "cpu", 1, None), UpscaleOptions(tile=8), options,
                               RayOptions(workers=2))
            engine.run(jobs, lambda job, result: results.append(result))
        except BaseException as exc:  # surfaced in the main thread below
            error.append(exc)

    thread = threading.Thread(target=drive)
    thread.start()
    killed = None
    deadline = time.time() + 120
    while time.time() < deadline and killed is None:
        written = [p for p in out.glob("*.png")] if out.exists() else []
        pids = _worker_pids()
        if 1 <= len(written) < len(jobs) - 4 and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    thread.join(timeout=300)
    assert not error, error
    assert killed is not None, "the run finished before a worker could be killed"
    ok = sorted(Path(r.input).name for r in results if r.status == "ok")
    assert ok == sorted(p.name for p in src.glob("[0-9]*.png"))  # every file exactly once
    assert sorted(p.name for p in out.iterdir()) == ok  # no duplicates, no temporary files
    assert any("run 2 times: the worker running it was lost" in r.warnings for r in results)  # the report says
    for path in out.iterdir():
        with Image.open(path) as im:
            im.load()  # complete, not truncated
            assert im.size == (336, 320)


def test_missing_ray_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    src = make_folder(tmp_path / "in", 1)
    result = CliRunner().invoke(app, ["dir", str(src), str(tmp_path / "out"), "--engine", "ray"])
    assert result.exit_code == 2 and "pip install 'upscale[ray]'" in result.output


def test_uri_folders_through_pyarrow_filesystems(local_ray, tmp_path: Path, tiny_model: Path) -> None:
    """file:// URIs take the object-store path (download, run_job, single-write upload)."""
    src = make_folder(tmp_path / "in", 3)
    (src / "sub").mkdir()
    Image.fromarray(photo(20, 20)).save(src / "sub" / "deep.png")
    (src / "notes.txt").write_text("not an image")
    runner = CliRunner()
    common = ["-m", str(tiny_model), "--device", "cpu", "--recursive"]
    runner.invoke(app, ["dir", str(src), str(tmp_path / "local"), *common])
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["dir", src.as_uri(), (tmp_path / "remote").as_uri(), *common, "--engine", "ray",
                                 "--report", str(report)])
    assert result.exit_code == 1  # broken.png
    doc = json.loads(report.read_text())
    assert doc["summary"] == {"ok": 4, "skipped": 0, "failed": 1, "ignored": 1}
    local = sorted(p.relative_to(tmp_path / "local") for p in (tmp_path / "local").rglob("*.png"))
    remote = sorted(p.relative_to(tmp_path / "remote") for p in (tmp_path / "remote").rglob("*"))
    assert [str(p) for p in remote if p.suffix] == [str(p) for p in local]  # no temp files left either
    for rel in local:
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "remote" / rel).read_bytes()
    again = runner.invoke(app, ["dir", src.as_uri(), (tmp_path / "remote").as_uri(), *common, "--engine", "ray"])
    assert "4 skipped" in again.output
    local_engine = runner.invoke(app, ["dir", src.as_uri(), (tmp_path / "x").as_uri(), *common])
    assert local_engine.exit_code == 1  # URIs on the local engine too: the same files, broken.png failed
    for rel in local:
        assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "x" / rel).read_bytes()


def test_a_rerun_keeps_what_the_lost_worker_finished(tmp_path: Path, tiny_model: Path) -> None:
    """A worker that died after its rename but before reporting: the rerun finds the whole output and keeps it
    (not written twice); a cut-short one is written again."""
    from upscale.engines.ray_cluster import upscale_files

    src = make_folder(tmp_path / "in", 2)
    output = OutputOptions(format="png")
    jobs, _ = plan_directory(src, tmp_path / "out", output)
    spec = ModelSpec(str(tiny_model), "cpu", 1, None)
    first = upscale_files(spec, jobs, UpscaleOptions(), output, None)
    assert [r.status for r in first] == ["ok", "ok"]
    whole, cut = Path(jobs[0].output), Path(jobs[1].output)
    cut.write_bytes(cut.read_bytes()[:-100])
    stamp = whole.stat().st_mtime_ns
    again = upscale_files(spec, jobs, UpscaleOptions(), output, None, rerun=True)
    assert whole.stat().st_mtime_ns == stamp and "kept, not written again" in again[0].warnings[-1]
    assert again[1].status == "ok" and not any("kept" in w for w in again[1].warnings)
    with Image.open(cut) as image:
        image.load()


class _FakeRay:
    """Ray's task API as the engine uses it, run in this process: files finish in reverse order, and the first
    attempt of ``lost`` fails as a lost worker (the scheduling, not Ray, is under test)."""

    class exceptions:
        class RayError(Exception):
            pass

        class RayTaskError(RayError):
            pass

        class WorkerCrashedError(RayError):
            pass

    def __init__(self, lost: int | None = None, interrupt_after: int | None = None) -> None:
        self.lost, self.interrupt_after, self.calls, self.finished = lost, interrupt_after, {}, 0
        self.cancelled: list[int] = []

    def is_initialized(self) -> bool:
        return True

    def cluster_resources(self) -> dict:
        return {"CPU": 2}

    def nodes(self) -> list[dict]:
        return []  # no node to probe: the scheduling, not the folders, is under test

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **kwargs):
                return self

            def remote(self, *args):
                ref = len(fake.calls)
                fake.calls[ref] = (fn, args)
                return ref
        return Task()

    def wait(self, refs, num_returns=1):
        if self.interrupt_after is not None and self.finished >= self.interrupt_after:
            raise KeyboardInterrupt
        self.finished += 1
        return [max(refs)], []

    def get(self, ref):
        fn, args = self.calls[ref]
        job = args[1][0]
        if self.lost is not None and Path(job.input).name == f"{self.lost:02d}.png" and not args[5]:
            raise self.exceptions.WorkerCrashedError()
        return fn(*args)

    def cancel(self, ref) -> None:
        self.cancelled.append(ref)


def _engine_with(fake: _FakeRay, tiny_model: Path, monkeypatch) -> RayEngine:
    from upscale.engines import ray_cluster

    monkeypatch.setattr(ray_cluster, "import_ray", lambda: fake)
    return RayEngine(ModelSpec(str(tiny_model), "cpu", 1, None), UpscaleOptions(), OutputOptions(format="png"),
                     RayOptions(workers=8))


def test_results_come_in_job_order_and_a_lost_file_runs_again(tmp_path: Path, tiny_model: Path,
                                                               monkeypatch) -> None:
    src = make_folder(tmp_path / "in", 5)
    jobs, _ = plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
    seen = []
    _engine_with(_FakeRay(lost=2), tiny_model, monkeypatch).run(jobs, lambda job, result: seen.append(result))
    assert [Path(r.input).name for r in seen] == [f"{i:02d}.png" for i in range(5)]  # not the finishing order
    assert [r.status for r in seen] == ["ok"] * 5
    assert [bool(r.warnings) for r in seen] == [False, False, True, False, False]
    assert "run 2 times" in seen[2].warnings[0]


def test_ctrl_c_reports_the_files_done_but_held_back_for_order(tmp_path: Path, tiny_model: Path,
                                                                monkeypatch) -> None:
    src = make_folder(tmp_path / "in", 5)
    jobs, _ = plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
    seen = []
    fake = _FakeRay(interrupt_after=3)  # 04, 03, 02 done (reverse order), then Ctrl-C with 00 and 01 running
    with pytest.raises(KeyboardInterrupt):
        _engine_with(fake, tiny_model, monkeypatch).run(jobs, lambda job, result: seen.append(result))
    assert sorted(Path(r.input).name for r in seen) == ["02.png", "03.png", "04.png"]  # on disk: in the report
    assert len(fake.cancelled) == 2


class _GpuRay(_FakeRay):
    """A cluster with ``gpus`` GPU resources, recording how tasks were asked for and the spec they were given."""

    def __init__(self, gpus: int) -> None:
        super().__init__()
        self.gpus, self.asked, self.specs = gpus, [], []

    def cluster_resources(self) -> dict:
        return {"CPU": 8, **({"GPU": self.gpus} if self.gpus else {})}

    def remote(self, fn):
        task, fake = super().remote(fn), self
        inner = task.remote

        class Recording:
            def options(self, **kwargs):
                fake.asked.append(kwargs)
                return self

            def remote(self, *args):
                fake.specs.append(args[0])
                return inner(*args)
        return Recording()


@pytest.mark.parametrize("device", ["webgpu", "directml:1", "cuda"])
def test_every_gpu_kind_gets_gpu_workers_on_ray(tmp_path: Path, tiny_model: Path, monkeypatch, device: str) -> None:
    from upscale.engines import ray_cluster

    src = make_folder(tmp_path / "in", 2)
    jobs, _ = plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
    fake = _GpuRay(gpus=3)
    monkeypatch.setattr(ray_cluster, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_cluster, "upscale_files", lambda spec, jobs, *rest: [new_result(j) for j in jobs])
    engine = RayEngine(ModelSpec(str(tiny_model), device, 1, None), UpscaleOptions(), OutputOptions(format="png"),
                       RayOptions())
    engine.run(jobs, lambda job, result: None)
    assert fake.asked[0]["num_gpus"] == 1
    assert {spec.device for spec in fake.specs} == {device.split(":")[0]}  # the GPU Ray gave each worker


def test_a_gpu_device_on_a_cluster_without_gpus_is_one_line(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    from upscale.engines import ray_cluster

    monkeypatch.setattr(ray_cluster, "import_ray", lambda: _GpuRay(gpus=0))
    jobs, _ = plan_directory(make_folder(tmp_path / "in", 1), tmp_path / "out", OutputOptions(format="png"))
    engine = RayEngine(ModelSpec(str(tiny_model), "webgpu", 1, None), UpscaleOptions(), OutputOptions(format="png"),
                       RayOptions())
    with pytest.raises(UsageError, match="has no GPU resource"):
        engine.run(jobs, lambda job, result: None)


class _AlwaysLost(_FakeRay):
    """A cluster where every worker that takes file ``lost`` dies, however often it is retried."""

    def __init__(self, lost: int) -> None:
        super().__init__()
        self.always, self.attempts = lost, 0

    def get(self, ref):
        fn, args = self.calls[ref]
        if Path(args[1][0].input).name == f"{self.always:02d}.png":
            self.attempts += 1
            raise self.exceptions.WorkerCrashedError()
        return fn(*args)


def test_a_file_whose_workers_keep_dying_runs_three_times_and_says_so(tmp_path: Path, tiny_model: Path,
                                                                     monkeypatch) -> None:
    src = make_folder(tmp_path / "in", 3)
    jobs, _ = plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
    seen, fake = [], _AlwaysLost(lost=1)
    _engine_with(fake, tiny_model, monkeypatch).run(jobs, lambda job, result: seen.append(result))
    assert fake.attempts == 3 and [r.status for r in seen] == ["ok", "failed", "ok"]
    assert "lost 3 times" in seen[1].error and "run 3 times" in seen[1].warnings[-1]


def test_the_model_travels_to_workers_that_cannot_see_the_drivers_file(local_ray, tmp_path: Path,
                                                                      tiny_model: Path) -> None:
    """The user's model is gone from disk once the driver has read it (as on a worker machine that never had it):
    the workers run it from the bytes the driver put in Ray's object store, and write what the local engine does."""
    import shutil

    from upscale.runner import run_directory

    src = make_folder(tmp_path / "in", 3)
    private = tmp_path / "private"
    private.mkdir()
    model = private / "mine.onnx"
    shutil.copy(tiny_model, model)
    local = run_directory(src, tmp_path / "local", str(model), device="cpu", output=OutputOptions(format="png"))

    class RemovesTheModel:
        def model_ready(self, loaded) -> None:
            shutil.rmtree(private)  # the driver has checked it; from now on only the shipped bytes exist

        def planned(self, jobs, known) -> None: ...
        def started(self, job) -> None: ...
        def pixels(self, count) -> None: ...
        def finished(self, job, result) -> None: ...
        def closed(self) -> None: ...

    shipped = run_directory(src, tmp_path / "ray", str(model), device="cpu", engine="ray",
                            output=OutputOptions(format="png"), observer=RemovesTheModel())
    assert not private.exists() and shipped.counts == local.counts == {**shipped.counts, "ok": 3, "failed": 1}
    for output in (tmp_path / "local").iterdir():
        assert (tmp_path / "ray" / output.name).read_bytes() == output.read_bytes()


class _NodeThatSharesNothing(_FakeRay):
    """Two nodes: the probe runs for real for the first, and answers as a machine without the folders would for
    the second (``folders_seen`` run against paths it cannot see)."""

    def nodes(self) -> list[dict]:
        return [{"NodeID": "a" * 56, "Alive": True, "Resources": {"CPU": 2}, "NodeManagerAddress": "10.0.0.1"},
                {"NodeID": "b" * 56, "Alive": True, "Resources": {"CPU": 2}, "NodeManagerAddress": "10.0.0.2"}]

    def remote(self, fn):
        task = super().remote(fn)

        class Placed:
            def options(self, scheduling_strategy=None, **kwargs):
                self.node = getattr(scheduling_strategy, "node_id", None)
                return self

            def remote(self, *args):
                if self.node == "b" * 56:
                    args = ("/elsewhere/" + args[0].rsplit("/", 1)[-1], args[1])  # its own disk: not the driver's
                return task.remote(*args)
        return Placed()

    def get(self, ref):
        fn, args = self.calls[ref]
        return fn(*args)


def test_a_node_that_cannot_see_the_local_folders_is_refused_before_any_work(tmp_path: Path, tiny_model: Path,
                                                                             monkeypatch) -> None:
    from upscale.engines.ray_cluster import folders_seen

    src = make_folder(tmp_path / "in", 2)
    jobs, _ = plan_directory(src, tmp_path / "out", OutputOptions(format="png"))
    with pytest.raises(UsageError, match=r"node 10\.0\.0\.2 cannot see /elsewhere/00.png: .* every node shares"):
        _engine_with(_NodeThatSharesNothing(), tiny_model, monkeypatch).run(jobs, lambda job, result: None)
    assert not list((tmp_path / "out").glob("*.png")) and not list((tmp_path / "out").glob(".upscale-probe-*"))
    marker = tmp_path / "out" / ".marker"
    assert folders_seen(str(src / "00.png"), str(marker)) == f"does not share the output folder {tmp_path / 'out'}"
    marker.touch()
    assert folders_seen(str(src / "00.png"), str(marker)) is None


def test_a_cluster_that_wants_its_token_is_one_line_that_says_so() -> None:
    """Ray 2.5x's `ray start` turns token authentication on; a driver without the token gets, after a minute of
    retries, "Failed to connect" with the cause buried in the exception's chain: the line names it."""
    from upscale.engines.ray_cluster import join_error

    try:
        try:
            raise RuntimeError("Failed to connect to GCS. Unauthenticated: RPC error: InvalidAuthToken: missing")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from cause
    except ConnectionError as exc:
        line = join_error(exc, "10.0.0.1:6379")
    assert "10.0.0.1:6379" in line and "RAY_AUTH_TOKEN" in line and "\n" not in line
    plain = join_error(ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379"), "10.0.0.1:6379")
    assert "Failed to connect" in plain and "TOKEN" not in plain
