"""`upscale models get`: community models fetched by name into the cache, checked by sha256, against a local HTTP
server (never the internet): fetched, a cache hit, a mismatch refused with nothing kept, no network in one line."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from upscale import community
from upscale.catalogue import CATALOGUE
from upscale.cli.app import app

WEIGHTS = b"pretend these are weights" * 100


@pytest.fixture
def served(tmp_path: Path, monkeypatch):
    """A local server holding one model file, a catalogue entry for it, and a cache of the test's own."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "Fake_x4.pth").write_bytes(WEIGHTS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    model = community.CommunityModel("fake-x4", "Fake_x4.pth", "https://example.invalid/Fake_x4.pth",
                                     hashlib.sha256(WEIGHTS).hexdigest(), 4, "MIT", "tests")
    monkeypatch.setitem(community.BY_NAME, model.name, model)
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(tmp_path / "cache"))
    yield f"http://127.0.0.1:{httpd.server_address[1]}", site, model
    httpd.shutdown()


def get(*args: str):
    return CliRunner().invoke(app, ["models", "get", *args], env={"COLUMNS": "200"})


def test_a_model_is_fetched_checked_and_then_a_cache_hit(served) -> None:
    base, _, model = served
    done = get("fake-x4", "--mirror", base)
    assert done.exit_code == 0, done.output
    assert community.cached(model).read_bytes() == WEIGHTS and "use it with --model fake-x4" in done.output
    again = get("fake-x4", "--mirror", "http://127.0.0.1:9")  # nothing to fetch: no server needed
    assert again.exit_code == 0 and "already fetched" in again.output


def test_a_file_that_differs_is_refused_and_nothing_kept(served) -> None:
    base, site, model = served
    (site / "Fake_x4.pth").write_bytes(b"tampered")
    done = get("fake-x4", "--mirror", base)
    assert done.exit_code == 1 and "sha256" in done.output and "not kept" in done.output
    assert not community.cached(model).exists() and not list(community.cached(model).parent.iterdir())


def test_without_a_network_one_line(served) -> None:
    done = get("fake-x4", "--mirror", "http://127.0.0.1:9")
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert done.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: fake-x4: not fetched")


def test_a_model_not_fetched_yet_says_how_to_get_it(served, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    done = CliRunner().invoke(app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", "fake-x4"])
    assert done.exit_code == 2 and "upscale models get fake-x4" in done.output


def test_the_catalogue_names_official_releases_with_their_hashes_and_licences() -> None:
    for model in community.COMMUNITY:
        assert model.url.startswith("https://github.com/xinntao/Real-ESRGAN/releases/download/v")
        assert model.url.endswith("/" + model.file) and re.fullmatch(r"[0-9a-f]{64}", model.sha256)
        assert model.licence == "BSD-3-Clause" and model.scale in (2, 4) and model.use_for
    listing = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "realesrgan-x4plus" in listing.output and "upscale models get" in listing.output


def test_upscale_models_fits_80_columns_a_line_or_two_per_model() -> None:
    listing = subprocess.run([sys.executable, "-m", "upscale", "models"], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "80"})  # its own process: the console's width is 80
    lines = listing.stdout.splitlines()
    assert listing.returncode == 0 and all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if line.startswith("│ ") and not line.startswith("│  ")]
    assert len(rows) == len(CATALOGUE) + len(community.COMMUNITY) and len(lines) <= 42, listing.stdout
