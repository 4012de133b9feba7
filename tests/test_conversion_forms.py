"""Third-party conversion: checked in 8-bit levels at every input shape the engine gives a model; a graph that
fails at one of them falls back to a fixed window the engine pads every tile to; nothing converts -> one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
if importlib.util.find_spec("spandrel") is None:
    pytest.skip("spandrel not installed", allow_module_level=True)

from torch import nn  # noqa: E402
from upscale.export import conversion  # noqa: E402
from upscale.export.conversion import FIXED_WINDOW, convert  # noqa: E402
from upscale.export.metadata import attach_metadata  # noqa: E402
from upscale.export.parity import Parity, engine_shapes  # noqa: E402
from upscale.export.third_party import ThirdParty  # noqa: E402

from upscale import load_model  # noqa: E402
from upscale.cli.app import app  # noqa: E402
from upscale.contract import ModelInfo  # noqa: E402
from upscale.errors import TrainingError  # noqa: E402
from upscale.images import Picture  # noqa: E402
from upscale.picture import UpscaleOptions, upscale_picture  # noqa: E402
from upscale.tiling import auto_tile  # noqa: E402

from .conftest import photo  # noqa: E402


class Baked(nn.Module):
    """Pads to a multiple of 8 and crops back with Python integers: traced, those sizes become constants (the
    RealCUGAN pattern), so the TorchScript graph is right at the traced size only. Local 3x3 convolutions."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[2]), int(x.shape[3])
        x = nn.functional.pad(x, (0, (8 - w % 8) % 8, 0, (8 - h % 8) % 8), mode="replicate")
        out = nn.functional.pixel_shuffle(self.body(x) * 0.1, 2) + nn.functional.interpolate(x, scale_factor=2)
        return out[:, :, : 2 * h, : 2 * w]


def third(module: nn.Module, multiple_of: int = 1) -> ThirdParty:
    return ThirdParty(module.eval(), "Baked", 2, multiple_of, 1, True, 1, "baked.pth sha256:0")


@pytest.fixture
def no_torch_export(monkeypatch) -> None:
    """Only the TorchScript exporter (torch.export would trace these sizes symbolically and succeed)."""
    real = conversion.trace

    def export(module, example, dynamo, fixed=False, **options):
        if dynamo:
            raise RuntimeError("torch.export unavailable in this test")
        return real(module, example, dynamo, fixed, **options)

    monkeypatch.setattr(conversion, "trace", export)


def test_engine_shapes_cover_what_the_engine_runs() -> None:
    model = third(Baked(), multiple_of=8)
    shapes = engine_shapes(model, overlap=8)
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in shapes)
    window = auto_tile(2) + 16
    assert (window, window) in shapes  # the automatic tile's window
    assert {(16, 16), (32, 32), (64, 64)} <= set(shapes)  # whole small images
    assert any(h > 4 * w for h, w in shapes) and any(w > 4 * h for h, w in shapes)  # tall and wide


def test_a_graph_that_fails_at_an_engine_shape_falls_back_to_a_fixed_window(tmp_path: Path, no_torch_export) -> None:
    module = Baked()
    done = convert(third(module), fp16=False)
    assert done.fixed_window == FIXED_WINDOW and "fixed 256x256" in done.shapes and "TorchScript" in done.shapes
    assert done.tiling.exact, done.tiling.text
    info = ModelInfo(scale=2, architecture="Baked", tile_overlap=done.tiling.overlap, tiling=done.tiling.text,
                     fixed_window=done.fixed_window, shapes=done.shapes)
    path = tmp_path / "baked.onnx"
    onnx.save(attach_metadata(done.proto, info), path)
    runner = load_model(path, "cpu")
    # Several full windows (sides that are multiples of 8, where the module's own padding, which makes its border
    # depend on the image's size, is none): tiles reproduce the whole image. Smaller than a window (a side under
    # 256): the model pads it to the window by reflection, so only its far border may differ from the module's
    # own border (zero padding), by up to the receptive field.
    margin = 2 * done.tiling.overlap
    for h, w in [(304, 264), (520, 512), (24, 32), (600, 88)]:
        image = photo(h, w, seed=h)
        got = upscale_picture(runner, Picture(image), UpscaleOptions(batch_size=4)).pixels.astype(int)
        with torch.no_grad():
            want = module(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255))[0]
        want = np.round(want.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(int)
        assert got.shape == want.shape, (h, w)
        rows = slice(None) if h >= FIXED_WINDOW else slice(None, 2 * h - margin)
        cols = slice(None) if w >= FIXED_WINDOW else slice(None, 2 * w - margin)
        assert np.abs(got - want)[rows, cols].max() <= 1, (h, w)
    shown = CliRunner().invoke(app, ["info", str(path)])
    assert shown.exit_code == 0 and "fixed 256x256" in shown.output


def test_parity_is_in_levels_with_a_bound_on_the_mean() -> None:
    assert Parity(1, 0.01, 4e-3, 8).within(fp16=False)  # a 1e-4 difference is 0.03 of a level: accepted
    assert not Parity(2, 0.01, 8e-3, 8).within(fp16=False)
    assert not Parity(1, 0.2, 4e-3, 8).within(fp16=False)  # many pixels a level off: not the model
    assert Parity(2, 0.2, 8e-3, 8).within(fp16=True)


def test_a_dynamic_graph_is_kept_when_it_runs_everywhere() -> None:
    class Local(Baked):
        def forward(self, x):
            return nn.functional.pixel_shuffle(self.body(x) * 0.1, 2) + nn.functional.interpolate(x, scale_factor=2)

    done = convert(third(Local()), fp16=False)
    assert done.fixed_window == 0 and done.shapes == "any size" and done.parity.max_levels <= 1
    assert done.parity.shapes == len(engine_shapes(third(Local()), done.tiling.overlap))


def test_when_nothing_converts_the_reason_names_every_attempt(monkeypatch) -> None:
    def broken(module, example, dynamo, fixed=False, multiple=1, batch_one=False):
        raise RuntimeError(f"exporter {'dynamo' if dynamo else 'script'}{' fixed' if fixed else ''} says no")

    monkeypatch.setattr(conversion, "trace", broken)
    with pytest.raises(TrainingError) as caught:
        convert(third(Baked()), fp16=False)
    text = str(caught.value)
    assert "\n" not in text and "TorchScript: exporter script says no" in text
    assert "torch.export: exporter dynamo says no" in text and "fixed 256x256: exporter script fixed says no" in text
