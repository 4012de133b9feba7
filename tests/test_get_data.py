"""`upscale data get` against a local HTTP server with fixture files (no network): fetched, checked, refused, and
without a network one line per cause."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest


@pytest.fixture
def server(tmp_path: Path):
    """A local HTTP server over tmp_path/site; yields its base URL."""
    site = tmp_path / "site"
    site.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", site
    httpd.shutdown()


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "upscale", "data", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "300"})


def test_sets_are_fetched_checked_and_mismatches_refused(tmp_path: Path, server) -> None:
    base, site = server
    (site / "Tiny").mkdir()
    files = {"a.png": b"first image bytes", "b.png": b"second image bytes"}
    for name, data in files.items():
        (site / "Tiny" / name).write_bytes(data)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"tiny": {
        "folder": "Tiny", "base": f"{base}/Tiny/", "origin": "a test", "licence": "none",
        "files": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}}))
    data = tmp_path / "data"
    done = run("get", "tiny", "--manifest", manifest, "--to", data)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in (data / "Tiny").iterdir()} == files
    again = run("get", "tiny", "--manifest", manifest, "--to", data)  # nothing fetched twice
    assert again.returncode == 0 and "(0 fetched now)" in again.stderr
    (site / "Tiny" / "b.png").write_bytes(b"tampered")
    (data / "Tiny" / "b.png").unlink()
    refused = run("get", "tiny", "--manifest", manifest, "--to", data)
    assert refused.returncode == 1 and "1 of 2 files not fetched: sha256 differs" in refused.stderr
    assert sorted(p.name for p in (data / "Tiny").iterdir()) == ["a.png"]  # nothing under the final name
    mirrored = run("get", "tiny", "--manifest", manifest, "--to", tmp_path / "m", "--mirror", "http://127.0.0.1:9/x")
    errors = [line for line in mirrored.stderr.splitlines() if line.startswith("error:")]
    assert mirrored.returncode == 1 and len(errors) == 1  # no server: one line for the cause, not one per file
    assert "2 of 2 files not fetched" in errors[0]


def test_the_real_manifest_lists_the_standard_sets_with_their_licences() -> None:
    listing = run("list")
    assert listing.returncode == 0
    for key, count in [("set5", 5), ("set14", 14), ("t91", 91), ("bsd200", 200)]:
        assert f"{key}: {count} images" in listing.stdout and "licence:" in listing.stdout
    unknown = run("get", "nope")
    assert unknown.returncode == 2 and "unknown set nope" in unknown.stderr


def test_eval_on_a_missing_folder_points_at_upscale_data_get(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "upscale", "eval", str(tmp_path / "data" / "Set5"), "--scale", "2"],
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "300"})
    assert done.returncode == 2 and "upscale data get set5 set14" in done.stderr
