"""Exact output sizes: --width, --height, --fit and --long-side, per picture, through `upscale dir` and `image`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import picture as picture_module
from upscale.cli.app import app
from upscale.images import Picture
from upscale.picture import UpscaleOptions, upscale_picture
from upscale.sizing import Fit, SizeRequest, target_for

from .conftest import photo


@pytest.mark.parametrize(("w", "h"), [(64, 48), (48, 64), (33, 97), (500, 7)])
def test_each_mode_lands_on_its_size(w: int, h: int) -> None:
    assert target_for(w, h, 2.0, SizeRequest(width=300)).size[0] == 300
    assert target_for(w, h, 2.0, SizeRequest(height=300)).size[1] == 300
    assert max(target_for(w, h, 2.0, SizeRequest(long_side=256)).size) == 256
    contain = target_for(w, h, 2.0, SizeRequest(200, 150, fit=Fit.CONTAIN)).size
    assert contain[0] <= 200 and contain[1] <= 150 and (contain[0] == 200 or contain[1] == 150)
    cover = target_for(w, h, 2.0, SizeRequest(200, 150, fit=Fit.COVER))
    assert cover.size == (200, 150) and cover.resize[0] >= 200 and cover.resize[1] >= 150
    assert target_for(w, h, 2.0, SizeRequest(200, 150, fit=Fit.STRETCH)).size == (200, 150)
    for kept in (contain, cover.resize, target_for(w, h, 2.0, SizeRequest(width=300)).size):
        assert abs(kept[0] / kept[1] - w / h) <= (w / h) * (1 / min(kept) + 1 / min(w, h))  # aspect, to rounding


@pytest.mark.parametrize(("request_", "why"), [
    (dict(long_side=100, width=50), "--long-side sets the size alone"),
    (dict(width=50, fit=Fit.COVER), "--fit needs both --width and --height"),
    (dict(width=0), "--width must be at least 1"),
])
def test_impossible_requests_are_refused(request_: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        SizeRequest(**request_)


def test_through_the_engine_sizes_are_exact_and_cover_crops_the_centre(tiny_model_x2) -> None:
    pixels = photo(40, 60)
    for size, expected in [(SizeRequest(width=150), (150, 100)), (SizeRequest(long_side=90), (90, 60)),
                           (SizeRequest(100, 100, fit=Fit.CONTAIN), (100, 67)),
                           (SizeRequest(100, 100, fit=Fit.COVER), (100, 100)),
                           (SizeRequest(100, 50, fit=Fit.STRETCH), (100, 50))]:
        out = upscale_picture(tiny_model_x2, Picture(pixels), UpscaleOptions(size=size))
        assert out.size == expected, size
    # cover: the centre of the aspect-kept resize (150x100 for 100x100), not its corner
    wide = upscale_picture(tiny_model_x2, Picture(pixels), UpscaleOptions(size=SizeRequest(height=100)))
    cover = upscale_picture(tiny_model_x2, Picture(pixels), UpscaleOptions(size=SizeRequest(100, 100, fit=Fit.COVER)))
    assert (abs(cover.pixels.astype(int) - wide.pixels[:, 25:125].astype(int))).max() <= 1


def test_a_downscale_runs_no_model_and_says_so(tiny_model_x2, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the model ran for a downscale")

    monkeypatch.setattr(picture_module, "upscale_arrays", no_model)
    out = upscale_picture(tiny_model_x2, Picture(photo(40, 60)), UpscaleOptions(size=SizeRequest(width=30)))
    assert out.size == (30, 20) and "the model was not run" in out.warnings[-1]


@pytest.fixture
def tiny_model_x2(tiny_model):
    from upscale import load_model

    return load_model(tiny_model, "cpu")


def test_dir_with_width_reports_sizes_and_reruns_skip(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (h, w) in {"a.png": (40, 60), "b.png": (90, 30), "big.png": (100, 400)}.items():
        Image.fromarray(photo(h, w)).save(folder / name)
    report = tmp_path / "r.json"
    args = ["dir", str(folder), str(tmp_path / "out"), "-m", str(tiny_model), "--width", "240", "--report", str(report)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    sizes = {p.name: Image.open(p).size for p in (tmp_path / "out").iterdir()}
    assert sizes == {"a.png": (240, 160), "b.png": (240, 720), "big.png": (240, 60)}
    rows = {Path(r["input"]).name: r for r in json.loads(report.read_text())["files"]}
    assert any("the model was not run" in w for w in rows["big.png"]["warnings"])  # 400 -> 240: a downscale
    again = CliRunner().invoke(app, args)
    assert "3 skipped" in again.output and "redone" not in again.output  # the exact sizes count as finished


def test_memory_planning_follows_the_requested_size(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(20, 30)).save(folder / "small.png")
    common = ["dir", str(folder), str(tmp_path / "out"), "-m", str(tiny_model), "--max-memory", "3G"]
    result = CliRunner().invoke(app, [*common, "--long-side", "40000"])
    assert result.exit_code == 1 and "small.png" in result.output
    assert "available (--max-memory)" in result.output  # refused by the prediction, before decoding
    assert not (tmp_path / "out" / "small.png").exists()
    assert CliRunner().invoke(app, [*common, "--long-side", "120"]).exit_code == 0  # the same file at a small size


def test_the_cli_refuses_impossible_combinations_in_one_line(tmp_path: Path, tiny_model: Path) -> None:
    source = tmp_path / "a.png"
    Image.fromarray(photo(20, 30)).save(source)
    for extra, why in [(["--scale", "2", "--width", "40"], "--scale and an exact size"),
                       (["--fit", "cover", "--width", "40"], "--fit needs both"),
                       (["--long-side", "40", "--height", "40"], "--long-side sets the size alone")]:
        result = CliRunner().invoke(app, ["image", str(source), str(tmp_path / "o.png"), "-m", str(tiny_model),
                                          *extra])
        assert result.exit_code == 2 and why in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("size", "request_", "expected"), [
    ((33, 97), {"width": 300}, (300, 882)),  # 97 * 300 / 33 = 881.8: rounded, not cut
    ((97, 33), {"height": 300}, (882, 300)),
    ((33, 97), {"long_side": 882}, (300, 882)),  # 33 * 882 / 97 = 300.06
    ((38, 97), {"long_side": 300}, (118, 300)),  # 38 * 300 / 97 = 117.53
])
def test_the_other_side_is_rounded(size: tuple[int, int], request_: dict, expected: tuple[int, int]) -> None:
    assert target_for(*size, 2.0, SizeRequest(**request_)).size == expected


def test_the_pictures_own_size_runs_no_model_and_leaves_the_pixels(tiny_model_x2, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the model ran for a picture already at its size")

    monkeypatch.setattr(picture_module, "upscale_arrays", no_model)
    picture = Picture(photo(40, 60))
    out = upscale_picture(tiny_model_x2, picture, UpscaleOptions(size=SizeRequest(width=60, height=40)))
    assert np.array_equal(out.pixels, picture.pixels) and "the requested size is the picture's own" in out.warnings[-1]


def test_stretch_runs_the_model_to_the_larger_axis_factor(tiny_model_x2, monkeypatch) -> None:
    """120x20 from 40x40: x3 wide, half as tall. The model runs (x2 twice reaches 3) and the resize shrinks the
    height; the smaller factor would run no model and blur the width by a plain resize."""
    factors = []
    real = picture_module.upscale_arrays
    monkeypatch.setattr(picture_module, "upscale_arrays", lambda model, arrays, scale, *rest: factors.append(scale)
                        or real(model, arrays, scale, *rest))
    target = target_for(40, 40, 2.0, SizeRequest(120, 20, fit=Fit.STRETCH))
    assert target.factor == 3 and target.resize == (120, 20)
    options = UpscaleOptions(size=SizeRequest(120, 20, fit=Fit.STRETCH))
    out = upscale_picture(tiny_model_x2, Picture(photo(40, 40)), options)
    assert out.size == (120, 20) and factors == [2, 2]


def test_a_rerun_with_cover_skips_the_cropped_outputs(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(40, 60)).save(folder / "a.png")
    args = ["dir", str(folder), str(tmp_path / "out"), "-m", str(tiny_model), "--width", "100", "--height", "100",
            "--fit", "cover"]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert Image.open(tmp_path / "out" / "a.png").size == (100, 100)
    again = CliRunner().invoke(app, args)
    assert "1 skipped" in again.output and "redone" not in again.output
