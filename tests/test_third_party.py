"""Bring your own model: released-layout PyTorch weights (.pth, .safetensors) through upscale-export and
`upscale dir --model FILE`, compared with the PyTorch module; refusals; the conversion cache."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
if importlib.util.find_spec("spandrel") is None:
    pytest.skip("spandrel is not installed", allow_module_level=True)

from upscale.export.cli import app as export_app  # noqa: E402
from upscale.export.third_party import import_spandrel, is_upscale_checkpoint  # noqa: E402

from upscale import load_model  # noqa: E402
from upscale.cli.app import app  # noqa: E402
from upscale.errors import UsageError  # noqa: E402

from .conftest import photo  # noqa: E402
from .third_party_weights import compact_general_x4v3, esrgan_x4plus, vendored  # noqa: E402

spandrel = import_spandrel()
runner = CliRunner()


def pytorch_upscale(weights: Path, image: np.ndarray) -> np.ndarray:
    """The reference: the PyTorch module spandrel builds from the file, on the whole image, rounded to 8 bits."""
    module = spandrel.ModelLoader().load_from_file(str(weights)).model.eval()
    x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255)
    with torch.no_grad():
        y = module(x)[0].clamp(0, 1).numpy().transpose(1, 2, 0)
    return np.rint(y * 255).astype(np.uint8)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(folder))
    return folder


def save(tmp_path: Path, name: str, state: dict) -> Path:
    path = tmp_path / name
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, path)
    else:
        torch.save(state, path)
    return path


def test_real_esrgan_layout_through_dir_and_export(tmp_path: Path, cache: Path) -> None:
    """The issue's bar: RealESRGAN_x4plus's layout, saved as released, through `upscale dir --model FILE.pth` and
    `upscale-export`, within 2/255 of PyTorch."""
    weights = save(tmp_path, "RealESRGAN_x4plus.pth", esrgan_x4plus())
    assert not is_upscale_checkpoint(weights)
    folder = tmp_path / "in"
    folder.mkdir()
    image = photo(30, 36, seed=2)
    Image.fromarray(image).save(folder / "a.png")
    want = pytorch_upscale(weights, image).astype(int)

    result = runner.invoke(app, ["dir", str(folder), str(tmp_path / "out"), "--model", str(weights), "--tile", "16"])
    assert result.exit_code == 0, result.output
    got = np.asarray(Image.open(tmp_path / "out" / "a.png")).astype(int)
    assert got.shape == (120, 144, 3) and np.abs(got - want).max() <= 2
    cached = list((cache / "models").glob("RealESRGAN_x4plus-*.onnx"))
    assert len(cached) == 1

    out = tmp_path / "esrgan.onnx"
    exported = runner.invoke(export_app, [str(out), "--checkpoint", str(weights)])
    assert exported.exit_code == 0, exported.output
    model = load_model(out, "cpu")
    info = model.info
    assert info.scale == 4 and info.architecture == "ESRGAN" and info.tiling_kind == "exact"
    assert info.source.startswith("RealESRGAN_x4plus.pth sha256:")
    x = image.astype(np.float32).transpose(2, 0, 1)[None] / 255
    assert np.abs(np.rint(np.clip(model(x)[0], 0, 1).transpose(1, 2, 0) * 255) - want).max() <= 2


@pytest.mark.parametrize(("name", "make", "scale", "exact"), [
    ("realesr-general-x4v3.pth", compact_general_x4v3, 4, True),
    ("span-x2.safetensors", lambda: vendored("SPAN"), 2, True),
    ("plksr-x2.safetensors", lambda: vendored("PLKSR"), 2, True),
    ("omnisr-x2.pth", lambda: vendored("OmniSR"), 2, False),  # global pooling and windowed attention
])
def test_architectures_export_run_and_tile_as_measured(tmp_path: Path, name: str, make, scale: int,
                                                       exact: bool) -> None:
    weights = save(tmp_path, name, make())
    out = tmp_path / "m.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights)])
    assert result.exit_code == 0, result.output
    model = load_model(out, "cpu")
    assert model.info.scale == scale and (model.info.tiling_kind == "exact") == exact, model.info.tiling
    image = photo(40, 44, seed=1)
    want = pytorch_upscale(weights, image).astype(int)
    from upscale.images import Picture
    from upscale.picture import UpscaleOptions, upscale_picture

    for tile in (None, 0, 16) if exact else (None, 0):  # approximate models: automatic tiling is the whole image
        got = upscale_picture(model, Picture(image), UpscaleOptions(tile=tile)).pixels.astype(int)
        assert np.abs(got - want).max() <= 2, (name, tile)


def test_windowed_attention_is_marked_approximate_and_runs_whole(tmp_path: Path) -> None:
    weights = save(tmp_path, "swinir-x2.pth", vendored("SwinIR"))
    out = tmp_path / "s.onnx"
    assert runner.invoke(export_app, [str(out), "-c", str(weights)]).exit_code == 0
    model = load_model(out, "cpu")
    assert model.info.tiling_kind == "approximate" and "levels of 255" in model.info.tiling
    info = runner.invoke(app, ["info", str(out)])
    assert "approximate" in info.output and "swinir-x2.pth" in info.output
    image = photo(24, 28)
    from upscale.images import Picture
    from upscale.picture import UpscaleOptions, upscale_picture

    automatic = upscale_picture(model, Picture(image), UpscaleOptions()).pixels.astype(int)
    assert np.abs(automatic - pytorch_upscale(weights, image).astype(int)).max() <= 2  # whole image by default


def test_what_is_not_an_rgb_upscaler_is_refused_in_one_line(tmp_path: Path) -> None:
    for name, state, why in [
        ("dncnn.pth", vendored("DnCNN"), "restoration model"),
        ("grey.pth", compact_general_x4v3(in_ch=1), "only RGB-to-RGB"),
        ("random.pth", {"weight": torch.zeros(3)}, "nor an architecture spandrel knows"),
    ]:
        weights = save(tmp_path, name, state)
        result = runner.invoke(export_app, [str(tmp_path / "x.onnx"), "-c", str(weights)])
        assert result.exit_code == 1 and why in result.output and "Traceback" not in result.output, result.output
        assert not (tmp_path / "x.onnx").exists()


def test_fp16_export_where_the_architecture_supports_half(tmp_path: Path) -> None:
    weights = save(tmp_path, "compact.pth", compact_general_x4v3())
    out = tmp_path / "h.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights), "--fp16"])
    assert result.exit_code == 0, result.output
    assert load_model(out, "cpu").input_dtype == np.float16


def test_cache_is_keyed_by_content_and_dir_report_names_the_model(tmp_path: Path, cache: Path, monkeypatch) -> None:
    from upscale import convert

    weights = save(tmp_path, "compact.pth", compact_general_x4v3())
    first = convert.converted(weights)
    calls = []
    monkeypatch.setattr(convert.subprocess, "run", lambda *a, **k: calls.append(a))
    assert convert.converted(weights) == first and calls == []  # cached: no second conversion
    monkeypatch.undo()
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(cache))
    save(tmp_path, "compact.pth", compact_general_x4v3(seed=1))  # same name, new content
    assert convert.converted(weights) != first
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(16, 16)).save(folder / "a.png")
    report = tmp_path / "r.json"
    result = runner.invoke(app, ["dir", str(folder), str(tmp_path / "o"), "-m", str(weights), "--report", str(report)])
    assert result.exit_code == 0 and "RealESRGAN Compact" in result.output
    assert "compact-" in json.loads(report.read_text())["context"]["model"]


def test_without_torch_the_error_names_the_extra(tmp_path: Path, cache: Path, monkeypatch) -> None:
    from upscale import convert

    weights = save(tmp_path, "model.pth", compact_general_x4v3())
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'upscale\[pth\]'.*upscale-export"):
        convert.converted(weights)
    result = runner.invoke(app, ["dir", str(tmp_path), str(tmp_path / "o"), "-m", str(weights)])
    assert result.exit_code == 2 and "upscale[pth]" in result.output and "Traceback" not in result.output


def test_an_export_that_disagrees_with_pytorch_writes_nothing(tmp_path: Path, cache: Path, monkeypatch) -> None:
    """Every attempt 'succeeds' with a graph 10 levels off PyTorch: nothing is written, nothing cached, one line."""
    from upscale.export import conversion, parity

    monkeypatch.setattr(conversion, "measure_parity", lambda *args, **kwargs: parity.Parity(10, 3.0, 0.04, 8))
    weights = save(tmp_path, "compact.pth", compact_general_x4v3())
    out = tmp_path / "m.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights)])
    said = result.output.replace("\n", "")
    assert result.exit_code == 1 and "differs from PyTorch by up to 10 levels" in said, result.output
    assert not out.exists() and not list(tmp_path.glob("*.onnx"))


def test_fp16_is_refused_where_spandrel_says_half_does_not_work(tmp_path: Path) -> None:
    from spandrel.architectures.DCTLSA import DCTLSA

    torch.manual_seed(0)
    weights = save(tmp_path, "dctlsa.pth", DCTLSA(nf=10, num_modules=1, num_head=2, upscale=2).state_dict())
    assert spandrel.ModelLoader().load_from_state_dict(torch.load(weights)).supports_half is False
    out = tmp_path / "h.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights), "--fp16"])
    assert result.exit_code == 1 and "does not support float16" in result.output and not out.exists(), result.output


def test_face_models_are_refused(tmp_path: Path, monkeypatch) -> None:
    """A descriptor spandrel marks FaceSR (GFPGAN, CodeFormer, RestoreFormer: aligned faces in, faces out)."""
    weights = save(tmp_path, "face.pth", compact_general_x4v3())
    real = spandrel.ModelLoader().load_from_state_dict(torch.load(weights))
    face = spandrel.ImageModelDescriptor(real.model, real.model.state_dict(), real.architecture, "FaceSR", [],
                                         True, True, real.scale, 3, 3)
    monkeypatch.setattr(spandrel.ModelLoader, "load_from_state_dict", lambda self, state: face)
    out = tmp_path / "f.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights)])
    assert result.exit_code == 1 and "face-restoration model" in result.output and not out.exists(), result.output


def test_a_failed_conversion_leaves_nothing_in_the_cache(tmp_path: Path, cache: Path) -> None:
    weights = save(tmp_path, "grey.pth", compact_general_x4v3(in_ch=1))
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(16, 16)).save(tmp_path / "in" / "a.png")
    result = runner.invoke(app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(weights)])
    assert result.exit_code == 1 and "only RGB-to-RGB" in result.output
    assert not [p for p in cache.rglob("*") if p.is_file()], "a failed conversion left a file in the cache"


def test_a_model_too_large_for_one_onnx_file_is_refused_before_any_tracing(tmp_path: Path, monkeypatch) -> None:
    """AuraSR's 617M parameters are 2.3 GiB in float32: over protobuf's 2 GiB (here the limit is lowered to the
    size of a small model's weights, which the check must find without building a graph)."""
    from upscale.export import third_party

    weights = save(tmp_path, "compact.pth", compact_general_x4v3())
    params = third_party.load_third_party(weights).params
    monkeypatch.setattr(third_party, "ONNX_FILE_LIMIT", params * 4 - 1)
    monkeypatch.setattr(third_party, "convert", lambda *a: pytest.fail("traced a model that cannot fit"))
    out = tmp_path / "c.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(weights)])
    said = result.output.replace("\n", "")
    assert result.exit_code == 1 and "more than one ONNX file holds (2 GiB)" in said and not out.exists(), said
    monkeypatch.setattr(third_party, "ONNX_FILE_LIMIT", params * 4)  # exactly at the limit: it fits
    third_party._check_fits_one_file(third_party.load_third_party(weights), False, weights)
