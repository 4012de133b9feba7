"""One `upscale dir` job over several Ray nodes on this machine (Ray's own multi-node test cluster: a head and two
worker nodes, each with its own raylet), and a worker node lost mid-run."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from upscale.job import OutputOptions
from upscale.picture import UpscaleOptions
from upscale.planning import plan_directory

from .conftest import photo

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

from upscale.engines import ModelSpec, RayOptions  # noqa: E402
from upscale.engines.ray_cluster import RayEngine  # noqa: E402


@pytest.fixture
def two_nodes():
    """A head that runs no files (0 CPUs) and two worker nodes of one CPU each."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def _workers(node) -> list[int]:
    """The worker processes a node's raylet started (its children)."""
    raylets = {info.process.pid for info in node.all_processes.get("raylet", [])}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent in raylets:
            found.append(int(entry.name))
    return found


def _running_a_file(node) -> bool:
    """Whether one of the node's workers is inside `upscale_files` now: Ray names a worker's process after the
    task it runs (`ray::upscale_files`) and `ray::IDLE` between tasks."""
    for pid in _workers(node):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::upscale_files"):
                return True
    return False


def _kill_node(cluster, node) -> None:
    """A node lost as a machine is: its worker processes killed with it (a worker outliving its raylet would
    still hand its file back), then its raylet and the rest."""
    for pid in _workers(node):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    cluster.remove_node(node, allow_graceful=False)


def _folder(root: Path, count: int) -> Path:
    root.mkdir()
    for i in range(count):
        Image.fromarray(photo(320, 320, seed=i)).save(root / f"{i:02d}.png")
    return root


def test_a_lost_node_loses_no_file_and_the_report_says_what_ran_again(two_nodes, tmp_path: Path,
                                                                       tiny_model: Path) -> None:
    cluster, workers = two_nodes
    src = _folder(tmp_path / "in", 12)
    output = OutputOptions(format="png")
    options = UpscaleOptions(tile=8)  # many small tiles: each file takes long enough to be caught mid-run
    jobs, _ = plan_directory(src, tmp_path / "ray", output)
    results = []
    failures: list[BaseException] = []

    def drive() -> None:
        try:
            RayEngine(ModelSpec(str(tiny_model), "cpu", 1, None), options, output, RayOptions(workers=6)).run(
                jobs, lambda job, result: results.append(result))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    thread = threading.Thread(target=drive)
    thread.start()
    deadline = time.time() + 180
    while time.time() < deadline and not (len(list((tmp_path / "ray").glob("*.png"))) >= 2
                                          and _running_a_file(workers[1])):  # warm, and a file in flight there
        time.sleep(0.02)
    assert time.time() < deadline, "the second node never ran a file"
    _kill_node(cluster, workers[1])
    thread.join(timeout=600)
    assert not failures, failures
    assert sorted(Path(r.input).name for r in results) == sorted(p.name for p in src.iterdir())  # each once
    assert all(r.status == "ok" for r in results), [(r.input, r.error) for r in results if r.status != "ok"]
    rerun = [r for r in results if any("the worker running it was lost" in w for w in r.warnings)]
    assert rerun, "no file was in flight on the lost node"
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == sorted(p.name for p in src.iterdir())

    local_jobs, _ = plan_directory(src, tmp_path / "local", output)
    from upscale.engines.local import LocalEngine

    engine = LocalEngine(ModelSpec(str(tiny_model), "cpu", 1, None), options, output)
    engine.load()
    engine.run(local_jobs, lambda job, result: None)
    for path in (tmp_path / "local").iterdir():  # the files the cluster wrote, lost node and all, are the local ones
        assert path.read_bytes() == (tmp_path / "ray" / path.name).read_bytes(), path.name
