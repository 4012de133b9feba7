"""int8: quantisation-aware training, the QDQ export onnxruntime folds into integer kernels, and --precision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from upscale.export.cli import app as export_app  # noqa: E402
from upscale.export.int8_export import integer_convolutions, optimised_op_types, to_qdq_onnx  # noqa: E402
from upscale.export.onnx_export import to_onnx  # noqa: E402
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from upscale.train.quantised import FREEZE_AT, RepSRInt8  # noqa: E402
from upscale.train.trainer import train  # noqa: E402

from upscale import load_model, precision  # noqa: E402
from upscale.cli.app import app as upscale_app  # noqa: E402
from upscale.errors import TrainingError, UsageError  # noqa: E402
from upscale.tiling import upscale_array  # noqa: E402

from .conftest import photo  # noqa: E402
from .test_train import tiny_config  # noqa: E402

runner = CliRunner()
SHAPE = {"channels": 8, "depth": 2}


@pytest.fixture(scope="module")
def int8_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(float checkpoint, int8 checkpoint fine-tuned from it): a tiny repsr-relu, then its int8 form."""
    root = tmp_path_factory.mktemp("int8")
    float_cfg = tiny_config(root / "f", arch="repsr-relu", arch_options=dict(SHAPE), steps=30, val_every=30)
    train(float_cfg)
    float_best = Path(float_cfg.out) / "best.pt"
    cfg = tiny_config(root / "q", arch="repsr-relu-int8", arch_options=dict(SHAPE), steps=8, val_every=2,
                      init_from=str(float_best), lr=1e-3)
    train(cfg)
    return float_best, Path(cfg.out) / "last.pt"


def test_fine_tuning_starts_from_the_float_twin_and_freezes_its_ranges(int8_run, tmp_path: Path) -> None:
    float_best, int8_last = int8_run
    state = load_checkpoint(int8_last)
    assert state["arch"]["name"] == "repsr-relu-int8"
    model = model_from_checkpoint(state)
    assert all(bool(r.frozen) and float(r.range) > 0 for r in model.ranges)
    best = load_checkpoint(int8_last.with_name("best.pt"))
    assert best["step"] >= FREEZE_AT * 8  # a best checkpoint is one with frozen ranges: the form that ships
    twin = model_from_checkpoint(load_checkpoint(float_best)).eval()
    x = torch.from_numpy(photo(24, 20).astype(np.float32).transpose(2, 0, 1)[None] / 255)
    with torch.no_grad():
        assert float((model.eval()(x) - twin(x)).abs().max()) * 255 < 12  # close to the float twin it started as
    # a range is the largest value seen until FREEZE_AT of the run (nothing seen is clipped), then it stays,
    # with the headroom asked for (percent)
    fresh = RepSRInt8(2, **SHAPE, headroom=25).train()
    fresh(x * 0.5)
    first = float(fresh.ranges[0].range)
    fresh.training_progress(FREEZE_AT - 0.01)
    fresh(x)
    grown = float(fresh.ranges[0].range)
    assert grown > first
    fresh(x * 0.5)
    assert float(fresh.ranges[0].range) == grown  # a smaller batch does not shrink it
    fresh.training_progress(FREEZE_AT)
    frozen = float(fresh.ranges[0].range)
    assert frozen == pytest.approx(grown * 1.25)
    fresh(x * 2)
    fresh.training_progress(1.0)
    assert float(fresh.ranges[0].range) == frozen


def test_a_range_may_leave_the_rarest_activations_above_it() -> None:
    """clip_ppm: the range is the value that all but that many activations per million stay below (finer steps
    for the rest); without it, the largest value."""
    values = torch.arange(1, 200_001, dtype=torch.float32).reshape(2, 1, 400, 250)
    for clip_ppm, expected in ((0, 200_000), (100, 200_000 - 19), (1000, 200_000 - 199)):
        model = RepSRInt8(2, **SHAPE, clip_ppm=clip_ppm).train()
        model.ranges[0](values)
        assert float(model.ranges[0].range) == expected
    assert RepSRInt8(2, **SHAPE).config() == {**SHAPE, "headroom": 0}  # old checkpoints' options stay as they were
    assert RepSRInt8(2, **SHAPE, clip_ppm=30).config()["clip_ppm"] == 30


def test_export_folds_every_convolution_into_an_integer_kernel(int8_run, tmp_path: Path) -> None:
    _, int8_last = int8_run
    out = tmp_path / "q.onnx"
    result = runner.invoke(export_app, [str(out), "--checkpoint", str(int8_last)])
    assert result.exit_code == 0, result.output
    assert "integer" in result.output and "int8" in result.output
    import onnx

    types = optimised_op_types(onnx.load(str(out)))
    assert types.count("QLinearConv") + types.count("NhwcQLinearConv") == SHAPE["depth"]
    assert types.count("Conv") == 3  # the first (3 channels in), the last (float32 out) and the bicubic branch
    weights = {t.name: t for t in onnx.load(str(out)).graph.initializer if t.name.endswith(".weight")}
    assert all(weights[f"conv{i}.weight"].data_type == onnx.TensorProto.INT8 for i in range(1, SHAPE["depth"] + 1))
    # the first and last, float32 in the file (onnxruntime's blocked float kernel), hold int8 levels times steps
    for name in ("conv0.weight", f"conv{SHAPE['depth'] + 1}.weight"):
        values = onnx.numpy_helper.to_array(weights[name])
        steps = np.abs(values).max(axis=(1, 2, 3), keepdims=True) / 127
        assert values.dtype == np.float32 and np.abs(values / steps - np.round(values / steps)).max() < 1e-3

    # the engine runs it like any model: tiled equals whole (the 0/255 seam guarantee), close to PyTorch
    model = load_model(out, "cpu")
    assert model.info.architecture == "repsr-relu-int8" and model.info.tile_overlap == SHAPE["depth"] + 2
    image = photo(41, 37, seed=3).astype(np.float32) / 255
    whole = upscale_array(model, image, 2, model.info.tile_overlap, tile=0)
    tiled = upscale_array(model, image, 2, model.info.tile_overlap, tile=12, batch_size=3)
    assert np.array_equal(np.round(whole * 255), np.round(tiled * 255))
    reference = model_from_checkpoint(load_checkpoint(int8_last)).eval()
    with torch.no_grad():
        want = reference(torch.from_numpy(image.transpose(2, 0, 1)[None]))[0].numpy().transpose(1, 2, 0)
    assert np.abs(np.round(np.clip(want, 0, 1) * 255) - np.round(whole * 255)).max() <= 8


def test_float_ends_keep_the_first_and_last_weights_unrounded(int8_run) -> None:
    """float_ends=1: the first and last convolutions (float kernels either way) hold their weights as trained, in
    PyTorch and in the file; the body stays int8 and integer, and the engine gives PyTorch's numbers."""
    import onnx
    import onnxruntime as ort

    int8_model = model_from_checkpoint(load_checkpoint(int8_run[1])).eval()
    ends = RepSRInt8(2, **SHAPE, float_ends=1).eval()
    ends.load_state_dict(int8_model.state_dict())
    assert ends.config()["float_ends"] == 1 and "float_ends" not in int8_model.config()
    last = len(ends.convs) - 1
    proto = to_qdq_onnx(ends)
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for i in (0, last):
        trained = ends.convs[i].weight.detach().numpy()
        assert np.array_equal(weights[f"conv{i}.weight"], trained)
        assert not np.array_equal(int8_model.weight(i).detach().numpy(), trained)  # rounding would move them
    assert all(weights[f"conv{i}.weight"].dtype == np.int8 for i in range(1, last))
    assert integer_convolutions(proto, last - 1) == last - 1
    x = np.round(np.random.default_rng(7).random((1, 3, 17, 21), dtype=np.float32) * 255) / 255
    got = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    with torch.no_grad():
        want, rounded = (m(torch.from_numpy(x)).numpy() for m in (ends, int8_model))
    assert np.abs(got[0] - want).max() * 255 < 0.5  # the engine runs the unrounded ends PyTorch trained
    assert np.abs(rounded - want).max() * 255 > 0.01  # and they are not the rounded ones


def test_the_shuffle_is_exactly_depth_to_space(int8_run) -> None:
    """The int8 graph's pixel shuffle (a one-hot ConvTranspose, faster on the CPU) gives DepthToSpace's numbers,
    bit for bit."""
    import onnx
    import onnxruntime as ort

    proto = to_qdq_onnx(model_from_checkpoint(load_checkpoint(int8_run[1])).fold())
    plain = onnx.ModelProto()
    plain.CopyFrom(proto)
    shuffle = next(n for n in plain.graph.node if n.op_type == "ConvTranspose")
    shuffle.op_type, shuffle.input[:] = "DepthToSpace", shuffle.input[:1]
    del shuffle.attribute[:]
    shuffle.attribute.extend([onnx.helper.make_attribute("blocksize", 2), onnx.helper.make_attribute("mode", "CRD")])
    x = np.round(np.random.default_rng(5).random((2, 3, 19, 23), dtype=np.float32) * 255) / 255
    got, want = (ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
                 .run(None, {"input": x})[0] for p in (proto, plain))
    assert got.shape == (2, 3, 38, 46) and np.array_equal(got, want)


def test_a_graph_left_in_float_is_refused(int8_run) -> None:
    """Convolutions between Q/DQ pairs that onnxruntime does not fuse run in float32, slower than plain float:
    the check counts integer kernels after optimisation, so a float graph fails it."""
    float_best, _ = int8_run
    float_graph = to_onnx(model_from_checkpoint(load_checkpoint(float_best)).fold())
    with pytest.raises(TrainingError, match="integer kernels"):
        integer_convolutions(float_graph, SHAPE["depth"])


@pytest.mark.parametrize(("cpuinfo", "found"), [
    ("flags\t\t: fpu sse avx2 avx512f avx512_vnni\n", "AVX-512 VNNI"),
    ("flags\t\t: fpu sse avx2 avx_vnni\n", "AVX-VNNI"),
    ("flags\t\t: fpu avx512_vnni amx_int8 amx_tile\n", "AMX"),
    ("Features\t: fp asimd asimddp\n", "Arm dot product"),
    ("flags\t\t: fpu sse sse2 avx avx2 fma\n", None),
    ("", None),
])
def test_int8_dot_product_detection(cpuinfo: str, found: str | None) -> None:
    assert precision.int8_dot_product(cpuinfo) == found


@pytest.fixture
def twin_shipped(monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    """A bundled pair: ``tiny`` and ``tiny-int8`` (any two files; the choice is by name)."""
    import upscale.registry

    real = upscale.registry.bundled_models
    monkeypatch.setattr(upscale.registry, "bundled_models",
                        lambda: {**real(), "tiny": tiny_model, "tiny-int8": tiny_model})


@pytest.mark.parametrize(("has_dot", "device", "wanted", "chosen"), [
    ("AVX-512 VNNI", "cpu", "auto", "tiny-int8"),
    (None, "cpu", "auto", "tiny"),  # a CPU without int8 dot products runs float32
    ("AVX-512 VNNI", "cuda", "auto", "tiny"),  # GPUs run float
    ("AVX-512 VNNI", "cpu", "fp32", "tiny"),
    (None, "cpu", "int8", "tiny-int8"),  # asked for: run, slow or not
])
def test_precision_choice(twin_shipped, monkeypatch: pytest.MonkeyPatch, has_dot, device, wanted, chosen) -> None:
    monkeypatch.setattr(precision, "int8_dot_product", lambda cpuinfo=None: has_dot)
    assert precision.choose("tiny", wanted, device) == chosen
    assert precision.choose("repsr-x2", wanted if wanted != "int8" else "auto", device) == "repsr-x2"
    with pytest.raises(UsageError, match="no int8 twin"):
        precision.choose("repsr-x2", "int8", device)
    assert precision.choose("tiny", wanted if wanted != "int8" else "auto", device, blend=True) == "tiny"
    with pytest.raises(UsageError, match="--strength"):
        precision.choose("tiny", "int8", device, blend=True)


@pytest.mark.parametrize(("has_dot", "model", "line"), [
    ("AVX-512 VNNI", "tiny-int8.onnx", "int8 on AVX-512 VNNI"),
    (None, "tiny.onnx", "model tiny.onnx"),
])
def test_the_model_line_says_which_precision_runs(twin_shipped, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  tiny_model: Path, has_dot, model: str, line: str) -> None:
    monkeypatch.setattr(precision, "int8_dot_product", lambda cpuinfo=None: has_dot)
    import upscale.registry

    names = {"tiny": tmp_path / "tiny.onnx", "tiny-int8": tmp_path / "tiny-int8.onnx"}
    for path in names.values():
        path.write_bytes(tiny_model.read_bytes())
    monkeypatch.setattr(upscale.registry, "bundled_models", lambda: names)
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(20, 24)).save(tmp_path / "in" / "a.png")
    result = runner.invoke(upscale_app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", "tiny",
                                         "--device", "cpu", "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert line in first and model in first
    assert json.loads((tmp_path / "r.json").read_text())["files"][0]["status"] == "ok"
    asked = runner.invoke(upscale_app, ["dir", str(tmp_path / "in"), str(tmp_path / "o2"), "-m", "repsr-x2",
                                        "--precision", "int8"])
    assert asked.exit_code == 2 and "no int8 twin" in asked.output
