"""What a new user meets first: the terminal's bar and lines (under a pseudo-terminal, its screen rendered by a
terminal emulator), format aliases, a folder as OUT, a file given to ``upscale dir``."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app

from .conftest import photo

pyte = pytest.importorskip("pyte")


def on_a_terminal(args: list[str], columns: int = 100, rows: int = 30) -> tuple[int, list[str]]:
    """Run ``upscale ARGS`` on a pseudo-terminal; (exit code, every line the screen showed, scrollback first)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns), "LINES": str(rows), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "upscale", *args], stdin=follower, stdout=follower,
                            stderr=follower, env=env, close_fds=True)
    os.close(follower)
    screen = pyte.HistoryScreen(columns, rows, history=2000)
    stream = pyte.ByteStream(screen)
    deadline = time.time() + 300
    while time.time() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the follower side closed: the process is done
                break
            if not data:
                break
            stream.feed(data)
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=60)
    os.close(leader)
    history = ["".join(char.data for char in line.values()).rstrip() for line in screen.history.top]
    return code, [*history, *(line.rstrip() for line in screen.display)]


def folder_with_trouble(root: Path) -> Path:
    folder = root / "in"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(photo(60 + i, 80, seed=i)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    for name in ("notes.txt", "list.csv"):
        (folder / name).write_text("not a picture")
    return folder


def test_the_bar_leaves_no_stale_copies_ends_full_and_says_eta(tmp_path: Path) -> None:
    code, lines = on_a_terminal(["dir", str(folder_with_trouble(tmp_path)), str(tmp_path / "out"), "-m",
                                 "bicubic-x2"])
    assert code == 1  # one file failed; the rest were done
    bars = [line for line in lines if "files" in line and "%" in line]
    assert len(bars) == 1, "\n".join(lines)  # one bar on the screen, no copies left above the error line
    assert "7/7 files" in bars[0] and "100%" in bars[0] and "ETA" in bars[0]
    assert any("broken.png" in line and "error" in line for line in lines)
    assert any(line.startswith("ignored, not pictures:") and "notes.txt" in line and "list.csv" in line
               for line in lines)


def test_verbose_keeps_a_line_per_file_beside_the_bar(tmp_path: Path) -> None:
    code, lines = on_a_terminal(["dir", str(folder_with_trouble(tmp_path)), str(tmp_path / "out"), "-v"], 250)
    assert code == 1  # the broken file
    per_file = [line for line in lines if line.startswith("[") and "->" in line]
    assert len(per_file) == 6 and all("repsr-x2" in line or "photo-x2" in line for line in per_file), lines


@pytest.mark.parametrize(("given", "suffix"), [("jpeg", ".jpg"), ("JPG", ".jpg"), ("tif", ".tif"), (".png", ".png")])
def test_format_takes_the_usual_aliases(tmp_path: Path, given: str, suffix: str) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(20, 30)).save(tmp_path / "in" / "a.png")
    result = CliRunner().invoke(app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", "bicubic-x2",
                                      "-f", given])
    assert result.exit_code == 0, result.output
    assert [p.suffix for p in (tmp_path / "out").iterdir()] == [suffix]


def test_an_unknown_format_names_the_choices(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    result = CliRunner().invoke(app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-f", "bmpx"])
    assert result.exit_code == 2 and "jpg (jpeg)" in result.output


def test_a_folder_as_out_means_the_inputs_name_inside_it(tmp_path: Path) -> None:
    Image.fromarray(photo(20, 30)).save(tmp_path / "in.png")
    Image.fromarray(photo(20, 30)).save(tmp_path / "anim.gif")
    (tmp_path / "out").mkdir()
    for source in ("in.png", "anim.gif"):
        result = CliRunner().invoke(app, ["image", str(tmp_path / source), str(tmp_path / "out"), "-m",
                                          "bicubic-x2"])
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["anim.png", "in.png"]


def test_a_file_given_to_dir_points_to_upscale_image(tmp_path: Path) -> None:
    Image.fromarray(photo(20, 30)).save(tmp_path / "in.png")
    result = CliRunner().invoke(app, ["dir", str(tmp_path / "in.png"), str(tmp_path / "out")])
    assert result.exit_code == 2 and "upscale image" in result.output


def test_dry_run_says_what_each_file_would_become_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(40, 60)).save(folder / "a.png")
    Image.new("RGB", (4000, 3000)).save(folder / "big.png", compress_level=1)
    (folder / "notes.txt").write_text("x")
    (tmp_path / "out").mkdir()
    Image.fromarray(photo(160, 240)).save(tmp_path / "out" / "done.png")
    Image.fromarray(photo(40, 60)).save(folder / "done.png")
    result = subprocess.run([sys.executable, "-m", "upscale", "dir", str(folder), str(tmp_path / "out"), "-m",
                             "repsr-x4", "--dry-run", "--max-memory", "700M"], capture_output=True, text=True)
    output = result.stdout + result.stderr  # a process of its own: --max-memory counts its memory, not pytest's
    assert result.returncode == 0, output
    lines = {line.split()[1].rsplit("/", 1)[-1]: line for line in output.splitlines()
             if line.split() and line.split()[0] in ("upscale", "skip", "ignore", "refuse")}
    assert lines["a.png"].startswith("upscale") and "60x40 -> 240x160" in lines["a.png"]
    assert lines["done.png"].startswith("skip") and lines["notes.txt"].startswith("ignore")
    assert lines["big.png"].startswith("refuse") and "--max-memory" in lines["big.png"]
    assert "dry run: 1 to upscale, 1 skipped, 1 ignored, 1 refused; nothing written" in output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["done.png"]


def test_dir_help_fits_a_screen_at_80_columns_with_examples() -> None:
    result = CliRunner().invoke(app, ["dir", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    lines = result.output.rstrip().splitlines()
    assert result.exit_code == 0 and len(lines) <= 66, len(lines)
    for panel in ("Model", "Size", "Output", "Run", "Clusters and object stores"):
        assert f"─ {panel} ─" in result.output
    assert "Examples: upscale dir photos/ out/" in result.output
