"""`upscale try`: the grid's geometry and labels, and each cell exactly what `upscale image` writes there."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from upscale import precision
from upscale.cli.app import app
from upscale.try_grid import GAP, LABEL_HEIGHT, detailed_box

from .conftest import photo


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_each_cell_is_what_upscale_image_writes_there(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.fromarray(photo(60, 84)).save(source)
    said = run("try", str(source), "-m", "repsr-x2", "-m", "fast-x2", "--strength", "0.5", "--crop", "24",
               "-o", str(tmp_path / "grid.png"))
    left, top, w, h = map(int, re.search(r"crop (\d+),(\d+) (\d+)x(\d+)", said).groups())
    fast = precision.choose("fast-x2", "auto", "auto")  # fast-x2-int8 on CPUs with int8 dot products, as image runs
    assert f"4 cells (bicubic, repsr-x2, {fast}, strength 0.5)" in said
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    cw, ch = 2 * w, 2 * h
    assert grid.shape == (2 * (ch + LABEL_HEIGHT + GAP) - GAP, 3 * (cw + GAP) - GAP, 3)  # 3 columns, 2 rows
    for index, args in ((1, ["-m", "repsr-x2"]), (2, ["-m", "fast-x2"]), (3, ["--strength", "0.5"])):
        target = tmp_path / f"out{index}.png"
        run("image", str(source), str(target), *args)
        written = np.asarray(Image.open(target))[2 * top:2 * top + ch, 2 * left:2 * left + cw]
        x, y = (index % 3) * (cw + GAP), (index // 3) * (ch + LABEL_HEIGHT + GAP)
        assert np.array_equal(grid[y:y + ch, x:x + cw], written), args


def test_the_region_is_the_most_detailed_one() -> None:
    flat = np.full((64, 96, 3), 128, np.uint8)
    flat[40:56, 70:86] = photo(16, 16)  # the only texture
    left, top, w, h = detailed_box(flat, 16)
    assert (w, h) == (16, 16) and abs(left - 70) <= 4 and abs(top - 40) <= 4


def test_a_reference_gives_a_score_per_cell_and_defaults_show_six(tmp_path: Path) -> None:
    hr = photo(80, 96)
    Image.fromarray(hr).save(tmp_path / "hr.png")
    Image.fromarray(hr).resize((48, 40), Image.Resampling.BICUBIC).save(tmp_path / "lr.png")
    said = run("try", str(tmp_path / "lr.png"), "--reference", str(tmp_path / "hr.png"), "--crop", "16", "-o",
               str(tmp_path / "g.png"))
    scores = re.findall(r"^(.+): ([\d.]+) dB \(Y-PSNR\)$", said, re.M)
    assert [label for label, _ in scores] == ["bicubic", "repsr-x2", "photo-x2", "strength 0.25", "strength 0.5",
                                              "strength 0.75"]
    assert all(10 < float(db) < 60 for _, db in scores)


def test_shrink_tries_an_original_reduced_and_shows_it_beside(tmp_path: Path) -> None:
    """--shrink: IMAGE is the original; the cells upscale its bicubic reduction, and the last cell is the
    original's matching region (at --zoom 2, every pixel twice), each model cell labelled with its Y-PSNR."""
    hr = photo(80, 96)
    Image.fromarray(hr).save(tmp_path / "hr.png")
    said = run("try", str(tmp_path / "hr.png"), "--shrink", "-m", "repsr-x2", "--crop", "16", "--zoom", "2",
               "-o", str(tmp_path / "g.png"))
    left, top, w, h = map(int, re.search(r"crop (\d+),(\d+) (\d+)x(\d+)", said).groups())
    assert [label for label, _ in re.findall(r"^(.+): ([\d.]+) dB \(Y-PSNR\)$", said, re.M)] == ["bicubic",
                                                                                                 "repsr-x2"]
    grid = np.asarray(Image.open(tmp_path / "g.png").convert("RGB"))
    cw, ch = 2 * 2 * w, 2 * 2 * h  # x2 output, shown at zoom 2
    assert grid.shape == (ch + LABEL_HEIGHT, 3 * (cw + GAP) - GAP, 3)  # bicubic, repsr-x2, original
    original_cell = grid[:ch, 2 * (cw + GAP):2 * (cw + GAP) + cw]
    want = np.repeat(np.repeat(hr[2 * top:2 * top + 2 * h, 2 * left:2 * left + 2 * w], 2, axis=0), 2, axis=1)
    assert np.array_equal(original_cell, want)
    bad = CliRunner().invoke(app, ["try", str(tmp_path / "hr.png"), "--degrade", "jpeg:50"])
    assert bad.exit_code == 2 and "--shrink" in bad.output
    odd = CliRunner().invoke(app, ["try", str(tmp_path / "hr.png"), "--shrink", "--scale", "2.5"])
    assert odd.exit_code == 2 and "whole number" in odd.output
