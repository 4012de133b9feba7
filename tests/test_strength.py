"""--strength: the clean and photo models of one scale blended; checked against the onnx package's reading of the
two shipped files (not the runtime's own protobuf walk) and against the endpoints' own outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.errors import ModelError
from upscale.registry import resolve_model_path
from upscale.strength import blend, pair_for

from .conftest import photo


def _weights(data: bytes) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in onnx.load_from_string(data).graph.initializer}


@pytest.mark.parametrize("scale", [2, 4])
def test_the_blend_is_the_weighted_mean_of_the_two_files(scale: int) -> None:
    clean, photo_name = f"repsr-x{scale}", f"photo-x{scale}"
    a, b = resolve_model_path(clean).read_bytes(), resolve_model_path(photo_name).read_bytes()
    mixed = _weights(blend(a, b, 0.25))
    wa, wb = _weights(a), _weights(b)
    floats = [n for n, w in wa.items() if w.dtype == np.float32]
    assert len(floats) > 10
    for name in floats:
        np.testing.assert_allclose(mixed[name], 0.75 * wa[name] + 0.25 * wb[name], rtol=1e-6, atol=1e-7)
    onnx.checker.check_model(onnx.load_from_string(blend(a, b, 0.25)))  # still a valid model


def test_other_graphs_are_not_blended() -> None:
    a, other = resolve_model_path("repsr-x2").read_bytes(), resolve_model_path("fast-x2").read_bytes()
    with pytest.raises(ModelError, match="not one graph"):
        blend(a, other, 0.5)


def test_pairs_follow_the_catalogue() -> None:
    assert pair_for(None, None) == pair_for("auto", 2) == pair_for("photo-x2", None) == ("repsr-x2", "photo-x2")
    assert pair_for("repsr-x4", None) == pair_for(None, 3) == ("repsr-x4", "photo-x4")


def _upscaled(tmp_path: Path, *args: str) -> np.ndarray:
    source, target = tmp_path / "in.png", tmp_path / f"out{len(list(tmp_path.iterdir()))}.png"
    if not source.exists():
        Image.fromarray(photo(30, 40)).save(source)
    result = CliRunner().invoke(app, ["image", str(source), str(target), *args])
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(target)).astype(int)


def test_the_endpoints_are_the_two_models_and_the_middle_is_neither(tmp_path: Path) -> None:
    clean, photo_out = _upscaled(tmp_path, "-m", "repsr-x2"), _upscaled(tmp_path, "-m", "photo-x2")
    assert np.array_equal(_upscaled(tmp_path, "--strength", "0"), clean)
    assert np.array_equal(_upscaled(tmp_path, "--strength", "1"), photo_out)
    middle = _upscaled(tmp_path, "--strength", "0.5")
    assert 0 < np.abs(middle - clean).mean() < np.abs(photo_out - clean).mean()
    assert 0 < np.abs(middle - photo_out).mean() < np.abs(photo_out - clean).mean()


def test_refusals_are_one_line(tmp_path: Path) -> None:
    Image.fromarray(photo(10, 10)).save(tmp_path / "a.png")
    no_partner = CliRunner().invoke(app, ["image", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                          "-m", "fast-x2", "--strength", "0.5"])
    assert no_partner.exit_code == 2 and "fast-x2 has no partner" in no_partner.output
    out_of_range = CliRunner().invoke(app, ["image", str(tmp_path / "a.png"), str(tmp_path / "b.png"),
                                            "--strength", "1.5"])
    assert out_of_range.exit_code == 2 and "Traceback" not in out_of_range.output


def test_a_folder_run_names_the_blend_in_its_report(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(20, 20)).save(folder / "a.png")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "--strength", "0.3",
                                      "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "repsr-x2 + photo-x2 at strength 0.3" in result.output
    assert json.loads(report.read_text())["context"]["model"] == "repsr-x2 + photo-x2 at strength 0.3"


def test_graphs_that_differ_in_structure_are_refused_even_with_the_same_weights() -> None:
    """The photo model with one activation changed: every initialiser name, shape and type still agrees."""
    clean = resolve_model_path("repsr-x2").read_bytes()
    changed = onnx.load_from_string(resolve_model_path("photo-x2").read_bytes())
    relu = next(n for n in changed.graph.node if n.op_type == "Relu")
    relu.op_type = "Sigmoid"
    with pytest.raises(ModelError, match="not one graph"):
        blend(clean, changed.SerializeToString(), 0.5)


def test_strength_zero_is_a_blend_named_as_such_and_the_clean_model_exactly(tmp_path: Path) -> None:
    """A JPEG that auto would send to the photo model: --strength 0 must still run the blend (the clean model's
    weights exactly), and the report must name it."""
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(32, 40)).save(folder / "a.jpg", quality=30)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "blend"), "--strength", "0", "--report",
                                      str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["context"]["model"] == "repsr-x2 + photo-x2 at strength 0"
    clean = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "clean"), "-m", "repsr-x2"])
    assert clean.exit_code == 0
    assert (tmp_path / "blend" / "a.jpg").read_bytes() == (tmp_path / "clean" / "a.jpg").read_bytes()
    assert blend(resolve_model_path("repsr-x2").read_bytes(), resolve_model_path("photo-x2").read_bytes(), 0) == \
        resolve_model_path("repsr-x2").read_bytes()


@pytest.mark.parametrize("scale", ["3", "4"])
def test_strength_at_3x_or_4x_blends_the_x4_pair(tmp_path: Path, scale: str) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(12, 16)).save(folder / "a.png")
    report = tmp_path / "r.json"
    result = CliRunner().invoke(app, ["dir", str(folder), str(tmp_path / "out"), "--strength", "0.5", "--scale",
                                      scale, "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())["context"]["model"] == "repsr-x4 + photo-x4 at strength 0.5"
