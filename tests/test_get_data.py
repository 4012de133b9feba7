"""scripts/get_data.py against a local HTTP server with fixture files (no network): fetched, checked, refused."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "get_data.py"


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
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


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
    done = run("tiny", "--manifest", manifest, "--to", data)
    assert done.returncode == 0, done.stderr
    assert {p.name: p.read_bytes() for p in (data / "Tiny").iterdir()} == files
    again = run("tiny", "--manifest", manifest, "--to", data)  # nothing fetched twice
    assert again.returncode == 0 and "(0 fetched now)" in again.stdout
    (site / "Tiny" / "b.png").write_bytes(b"tampered")
    (data / "Tiny" / "b.png").unlink()
    refused = run("tiny", "--manifest", manifest, "--to", data)
    assert refused.returncode == 1 and "b.png: sha256 differs" in refused.stderr
    assert sorted(p.name for p in (data / "Tiny").iterdir()) == ["a.png"]  # nothing under the final name
    mirrored = run("tiny", "--manifest", manifest, "--to", tmp_path / "m", "--mirror", "http://127.0.0.1:9/x")
    assert mirrored.returncode == 1 and "error:" in mirrored.stderr


def test_the_real_manifest_lists_the_standard_sets_with_their_licences() -> None:
    listing = run("--list")
    assert listing.returncode == 0
    for key, count in [("set5", 5), ("set14", 14), ("t91", 91), ("bsd200", 200)]:
        assert f"{key}: {count} images" in listing.stdout and "licence:" in listing.stdout
    assert run("nope").returncode == 2
