"""s3:// folders against a real S3 API over HTTP: moto's standalone server on a free localhost port (not a patched
client), with the endpoint and keys from the standard AWS environment variables, through both engines."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
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

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
pytest.importorskip("pyarrow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server, and the environment that points every AWS client (pyarrow's too) at it."""
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield boto3.client("s3"), env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


def _png(seed: int, size: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo(size, size + 8, seed=seed)).save(buffer, "PNG")
    return buffer.getvalue()


def _keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _fill(client, bucket: str) -> None:
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="photos/a.png", Body=_png(1))
    client.put_object(Bucket=bucket, Key="photos/b.png", Body=_png(2))
    client.put_object(Bucket=bucket, Key="photos/trip/day1/c.png", Body=_png(3))
    client.put_object(Bucket=bucket, Key="photos/broken.png", Body=b"not a png")
    client.put_object(Bucket=bucket, Key="photos/notes.txt", Body=b"text")


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_bucket_to_a_bucket_on_each_engine(s3, engine: str, tiny_model: Path) -> None:
    client, _ = s3
    source, target = f"in-{engine}", f"out-{engine}"
    _fill(client, source)
    client.create_bucket(Bucket=target)
    args = ["dir", f"s3://{source}/photos", f"s3://{target}/up", "-r", "-m", str(tiny_model), "--engine", engine]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # broken.png, reported by its key; the others done
    assert f"{source}/photos/broken.png" in result.output
    assert _keys(client, target) == ["up/a.png", "up/b.png", "up/trip/day1/c.png"]  # no folder-marker objects
    body = client.get_object(Bucket=target, Key="up/trip/day1/c.png")["Body"].read()
    assert Image.open(io.BytesIO(body)).size == (64, 48)
    again = CliRunner().invoke(app, args)
    assert "3 skipped" in again.output  # resume: what is in the bucket is not redone


def test_both_engines_write_the_same_bytes(s3, tiny_model: Path) -> None:
    client, _ = s3
    _fill(client, "same-in")
    client.create_bucket(Bucket="same-out")
    for engine in ("local", "ray"):
        CliRunner().invoke(app, ["dir", "s3://same-in/photos", f"s3://same-out/{engine}", "-r", "-m",
                                 str(tiny_model), "--engine", engine])
    for key in ("a.png", "b.png", "trip/day1/c.png"):
        local = client.get_object(Bucket="same-out", Key=f"local/{key}")["Body"].read()
        assert local == client.get_object(Bucket="same-out", Key=f"ray/{key}")["Body"].read(), key


def test_listing_past_one_page_of_keys(s3) -> None:
    """S3 lists 1,000 keys a request: the planner must follow the pages."""
    from upscale.job import OutputOptions
    from upscale.planning import plan_remote

    client, _ = s3
    client.create_bucket(Bucket="many")
    body = _png(0, 4)
    for i in range(1005):
        client.put_object(Bucket="many", Key=f"in/{i // 100}/{i:04d}.png", Body=body)
    jobs, known = plan_remote("s3://many/in", "s3://many/out", OutputOptions(recursive=True))
    assert len(jobs) == 1005 and not known
    assert len({str(j.output) for j in jobs}) == 1005


def test_an_unwritable_output_is_one_error_before_any_work(s3, tiny_model: Path) -> None:
    client, _ = s3
    _fill(client, "no-out")
    result = CliRunner().invoke(app, ["dir", "s3://no-out/photos", "s3://missing-bucket/up", "-m", str(tiny_model)])
    assert result.exit_code == 2 and "cannot write the output folder" in result.output
    assert len([line for line in result.output.splitlines() if "error" in line]) == 1


def test_a_wrong_credential_is_one_error_before_any_work(tmp_path: Path, tiny_model: Path) -> None:
    """A server that checks keys (moto's IAM authentication from the first request): ours are unknown to it."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        client_env = {**os.environ, "AWS_ACCESS_KEY_ID": "wrong", "AWS_SECRET_ACCESS_KEY": "wrong",
                      "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
                      "AWS_ENDPOINT_URL": ""}
        done = subprocess.run([sys.executable, "-m", "upscale", "dir", "s3://bucket/in", "s3://bucket/out", "-m",
                               str(tiny_model), "--endpoint-url", f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, env=client_env, timeout=120)
    finally:
        server.terminate()
        server.wait()
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith("error:")]) == 1 and "Traceback" not in done.stderr
    assert "s3://bucket/in" in done.stderr


def test_a_killed_run_leaves_no_partial_object(s3, tmp_path: Path) -> None:
    """Kill -9 mid-run: every object under a final key is a whole image (one PUT publishes it or nothing)."""
    client, env = s3
    client.create_bucket(Bucket="kill")
    for i in range(10):
        client.put_object(Bucket="kill", Key=f"in/{i}.png", Body=_png(i, 160))
    run = subprocess.Popen([sys.executable, "-m", "upscale", "dir", "s3://kill/in", "s3://kill/out", "-m",
                            "repsr-x2", "--device", "cpu"], env={**os.environ, **env},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not _keys(client, "kill", "out/"):
        time.sleep(0.02)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    written = _keys(client, "kill", "out/")
    assert 1 <= len(written) < 10, written
    for key in written:
        with Image.open(io.BytesIO(client.get_object(Bucket="kill", Key=key)["Body"].read())) as image:
            image.load()  # complete: a truncated PNG raises here
            assert image.size == (336, 320)
    resumed = subprocess.run([sys.executable, "-m", "upscale", "dir", "s3://kill/in", "s3://kill/out", "-m",
                              "repsr-x2", "--device", "cpu", "--report", str(tmp_path / "r.json")],
                             env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert summary["skipped"] == len(written) and summary["ok"] == 10 - len(written)
    assert np.array_equal(sorted(_keys(client, "kill", "out/")), sorted(f"out/{i}.png" for i in range(10)))
