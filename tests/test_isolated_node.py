"""A Ray cluster whose worker node shares nothing private with the driver: the model travels, the rest is refused.

Ray's multi-node test cluster runs its nodes as processes of one machine that see one filesystem, so a worker
that reads the driver's paths passes there and fails on a real cluster. Here the worker node is started by `ray
start` inside its own mount namespace (`unshare --mount`), where a tmpfs covers the folder that holds the user's
model files, the driver's conversion cache and its local pictures: as on another machine, they are not there.
Pictures come from and go to an S3 server (moto's, on localhost), which every node reaches. Needs root, or a user
namespace (as an ordinary user on Debian).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app

from .conftest import photo
from .test_object_store import _keys, s3  # noqa: F401 - the S3 server fixture

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

RAY = Path(sys.executable).with_name("ray")


def _need(condition: bool, why: str) -> None:
    if not condition:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the isolated-node tests: {why}")
        pytest.skip(why)


def _namespaces() -> list[str] | None:
    """unshare's options for a mount namespace of one's own: none more as root; else a user namespace where this
    user is root (Debian's kernels allow it), so the tmpfs can be mounted; None where neither works."""
    if os.geteuid() == 0:
        return []
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return ["--user", "--map-root-user"] if probe.returncode == 0 else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """`ray start --block` stops what it started on SIGTERM; its process group is killed after, to be sure."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory: pytest.TempPathFactory):  # noqa: F811 - the imported fixture
    """(address, private folder, seconds the two nodes took to come up): a head with no CPUs (it runs no files)
    and one worker node of one CPU in its own mount namespace, where ``private`` is an empty tmpfs."""
    _need(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    namespaces = _namespaces()
    _need(namespaces is not None, "needs root, or unprivileged user namespaces, for unshare --mount")
    _need(RAY.is_file(), f"no ray command beside {sys.executable}")
    _need(importlib.util.find_spec("spandrel") is not None, "needs spandrel (the .pth conversion)")
    if ray.is_initialized():  # an earlier test's local Ray: the engine would run there, not on this cluster
        ray.shutdown()
    private = tmp_path_factory.mktemp("isolated") / "private"
    private.mkdir()
    port = _free_port()
    address = f"127.0.0.1:{port}"
    logs = private.parent
    # `ray start` turns token authentication on (Ray 2.5x); this process's Ray read its mode at import, so the test
    # cluster runs without it (a real one: the driver holds the cluster's token, RAY_AUTH_TOKEN)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    started = time.perf_counter()
    # its own temporary folder (short: Ray's socket paths must fit 107 bytes): `ray start --head` records the
    # cluster's address there, and every later `ray.init()` of this machine would try to join it once it is gone
    temp = tempfile.mkdtemp(prefix="ray-iso-", dir="/tmp")
    head = subprocess.Popen([str(RAY), "start", "--head", f"--port={port}", "--num-cpus=0", "--block",
                             f"--temp-dir={temp}", "--include-dashboard=false", "--disable-usage-stats"],
                            start_new_session=True, env=env,
                            stdout=(logs / "head.log").open("wb"), stderr=subprocess.STDOUT)
    node = subprocess.Popen(
        ["unshare", *namespaces, "--mount", "--propagation", "private", "sh", "-c",
         f'mount -t tmpfs none "{private}" && exec "{RAY}" start --address={address} --num-cpus=1 --block '
         "--disable-usage-stats"],
        start_new_session=True, env=env, stdout=(logs / "node.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        _wait_for_worker(address, head, node, logs)
        seconds = time.perf_counter() - started
        yield address, private, seconds
    finally:
        if ray.is_initialized():
            ray.shutdown()
        _stop(node)
        _stop(head)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_worker(address: str, head: subprocess.Popen, node: subprocess.Popen, logs: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for process, name in ((head, "head"), (node, "node")):
            if process.poll() is not None:
                pytest.fail(f"the {name} stopped: {(logs / f'{name}.log').read_text()[-2000:]}")
        with contextlib.suppress(Exception):
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            alive = [n for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
            ray.shutdown()
            if alive:
                return
        time.sleep(1)
    pytest.fail("the worker node did not join within 60 s")


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo(40, 48, seed=seed)).save(buffer, "PNG")
    return buffer.getvalue()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["dir", *args, "-q"])
    return result.exit_code, result.output


def _objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    return {key.removeprefix(prefix): client.get_object(Bucket=bucket, Key=key)["Body"].read()
            for key in _keys(client, bucket, prefix)}


def test_models_travel_to_a_node_that_cannot_see_them(cluster, s3, tiny_model: Path,  # noqa: F811
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's .onnx, a .pth (converted once, by the driver) and a --strength blend, each run on the isolated
    node with outputs byte-identical to the local engine's; a broken picture is one line, no traceback."""
    from . import third_party_weights

    address, private, _ = cluster
    client, _ = s3
    client.create_bucket(Bucket="iso-in")
    client.create_bucket(Bucket="iso-out")
    for i in range(3):
        client.put_object(Bucket="iso-in", Key=f"p/{i}.png", Body=_png(i))
    client.put_object(Bucket="iso-in", Key="p/broken.png", Body=b"\x89PNG\r\n\x1a\nno more")
    models = private / "models"
    models.mkdir()
    shutil.copy(tiny_model, models / "my.onnx")
    torch.save(third_party_weights.compact_general_x4v3(nf=8, convs=2, scale=2), models / "net.pth")
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(private / "cache"))  # the driver's cache: the node cannot see it

    import upscale.convert

    conversions = []
    real_run = upscale.convert.subprocess.run
    monkeypatch.setattr(upscale.convert.subprocess, "run",
                        lambda *a, **k: conversions.append(a[0]) or real_run(*a, **k))

    for label, model_args in (("onnx", ["-m", str(models / "my.onnx")]), ("pth", ["-m", str(models / "net.pth")]),
                              ("blend", ["--strength", "0.5"])):
        for engine in ("ray", "local"):
            code, said = _run("s3://iso-in/p", f"s3://iso-out/{label}-{engine}", *model_args, "--engine", engine,
                              "--ray-address", address, "--device", "cpu")
            assert code == 1, (label, engine, said)  # broken.png only
            failure = [line for line in said.splitlines() if "broken.png" in line]
            assert len(failure) == 1 and "Traceback" not in said and "\x1b[" not in said, said
        on_node, here = _objects(client, "iso-out", f"{label}-ray/"), _objects(client, "iso-out", f"{label}-local/")
        assert sorted(on_node) == ["0.png", "1.png", "2.png"] and on_node == here, label
    assert len(conversions) == 1  # the .pth: once, on the driver; the node loaded the ONNX bytes it was sent


def test_a_local_folder_the_node_cannot_see_is_refused_before_any_work(cluster, tiny_model: Path) -> None:
    address, private, _ = cluster
    inputs = private / "in"
    inputs.mkdir()
    for i in range(2):
        (inputs / f"{i}.png").write_bytes(_png(i))
    code, said = _run(str(inputs), str(private / "out"), "-m", str(tiny_model), "--engine", "ray",
                      "--ray-address", address, "--device", "cpu")
    assert code == 2, said
    lines = [line for line in said.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(r"node \S+ cannot see", lines[0]) and str(inputs) in lines[0], said
    assert "shares" in lines[0] and "s3://" in lines[0]
    assert not list((private / "out").glob("*.png"))
