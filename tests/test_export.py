"""upscale-export: checkpoint -> ONNX with metadata, parity with PyTorch, fp16, and use by `upscale dir`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from upscale.export.cli import app as export_app  # noqa: E402
from upscale.train.arch import create_model  # noqa: E402
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from upscale.train.trainer import train  # noqa: E402

from upscale import load_model  # noqa: E402
from upscale.cli.app import app as upscale_app  # noqa: E402
from upscale.tiling import upscale_array  # noqa: E402

from .conftest import photo  # noqa: E402
from .test_train import TINY, tiny_config  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exp")
    cfg = tiny_config(root, steps=4, val_every=2)
    train(cfg)
    return Path(cfg.out) / "best.pt"


def test_export_writes_a_self_describing_model(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = runner.invoke(export_app, [str(out), "--checkpoint", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert "parity" in result.output and "MACs" in result.output
    model = load_model(out, "cpu")
    info = model.info
    assert info.has_metadata and info.scale == 2 and info.architecture == "repsr" and info.tile_overlap == 4
    assert info.training_data == "data" and "dB" in info.validation

    noted = tmp_path / "noted.onnx"
    result = runner.invoke(export_app, [str(noted), "-c", str(checkpoint), "--validation", "Set5 x2 40.00 dB",
                                        "--training-data", "T91, BSD200"])
    assert result.exit_code == 0, result.output
    noted_info = load_model(noted, "cpu").info
    assert noted_info.validation == "Set5 x2 40.00 dB" and noted_info.training_data == "T91, BSD200"

    # The ONNX model run by the engine, tiled, equals the network the checkpoint's EMA weights make, built here
    # from the registry (not by the exporter's own loader), and not the raw weights the EMA averages.
    state = load_checkpoint(checkpoint)
    ema_net, raw_net = create_model("repsr", 2, **TINY).eval(), create_model("repsr", 2, **TINY).eval()
    ema_net.load_state_dict(state["ema"])
    raw_net.load_state_dict(state["model"])
    for h, w in [(19, 23), (40, 33)]:
        image = photo(h, w, seed=h)
        x = torch.from_numpy(image.astype(np.float32).transpose(2, 0, 1)[None] / 255)
        with torch.no_grad():
            want, raw = (np.clip(net(x)[0].numpy().transpose(1, 2, 0), 0, 1) for net in (ema_net, raw_net))
        tiled = upscale_array(model, image.astype(np.float32) / 255, 2, info.tile_overlap, tile=8, batch_size=3)
        assert np.abs(tiled - want).max() < 1e-4
        assert np.abs(raw - want).max() > 1e-3  # the EMA weights differ, so the check above tells them apart


def test_exported_model_runs_in_upscale_dir(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    assert runner.invoke(export_app, [str(out), "-c", str(checkpoint)]).exit_code == 0
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(30, 41)).save(tmp_path / "in" / "a.png")
    Image.fromarray(photo(70, 52)).save(tmp_path / "in" / "b.png")
    result = runner.invoke(upscale_app, ["dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", str(out),
                                         "--tile", "16"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "a.png").size == (82, 60)
    assert Image.open(tmp_path / "out" / "b.png").size == (104, 140)


def test_fp16_export_runs(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(checkpoint), "--fp16"])
    assert result.exit_code == 0, result.output
    model = load_model(out, "cpu")
    assert model.input_dtype == np.float16
    full = tmp_path / "f.onnx"
    assert runner.invoke(export_app, [str(full), "-c", str(checkpoint)]).exit_code == 0
    x = photo(12, 14).astype(np.float32).transpose(2, 0, 1)[None] / 255
    y = model(x)
    assert y.shape == (1, 3, 24, 28) and y.dtype == np.float32
    difference = np.abs(y - load_model(full, "cpu")(x))
    assert difference.max() < 2e-2 and difference.max() > 0  # the float32 picture, in half precision


def test_parity_failure_writes_nothing(checkpoint: Path, tmp_path: Path, monkeypatch) -> None:
    """An export whose ONNX graph computes something else than PyTorch is refused: exit 1, no file."""
    from onnx import numpy_helper
    from upscale.export import onnx_export

    real = onnx_export.to_onnx

    def corrupted(model, fp16=False):
        proto = real(model, fp16)
        first = proto.graph.initializer[0]
        first.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(first) + 0.05, first.name))
        return proto

    monkeypatch.setattr(onnx_export, "to_onnx", corrupted)
    out = tmp_path / "bad.onnx"
    result = runner.invoke(export_app, [str(out), "-c", str(checkpoint)])
    assert result.exit_code == 1 and "differs from PyTorch" in result.output and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_export_refuses_to_overwrite(checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    out.write_bytes(b"precious")
    result = runner.invoke(export_app, [str(out), "-c", str(checkpoint)])
    assert result.exit_code == 2 and "--force" in result.output and out.read_bytes() == b"precious"
    assert runner.invoke(export_app, [str(out), "-c", str(checkpoint), "--force"]).exit_code == 0


def test_bicubic_export_and_bad_arguments(tmp_path: Path) -> None:
    out = tmp_path / "b.onnx"
    assert runner.invoke(export_app, [str(out), "--bicubic", "3"]).exit_code == 0
    assert load_model(out, "cpu").scale == 3
    assert runner.invoke(export_app, [str(tmp_path / "x.onnx")]).exit_code == 2
    missing = runner.invoke(export_app, [str(tmp_path / "y.onnx"), "-c", str(tmp_path / "none.pt")])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_benchmark_counts_the_same_macs_as_the_registry(checkpoint: Path, tmp_path: Path) -> None:
    """benchmarks/throughput.py derives FLOP/s from the ONNX graph; it must agree with the registry."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("throughput", Path(__file__).parents[1] / "benchmarks/throughput.py")
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    out = tmp_path / "m.onnx"
    assert runner.invoke(export_app, [str(out), "-c", str(checkpoint)]).exit_code == 0
    expected = model_from_checkpoint(load_checkpoint(checkpoint)).describe().macs_per_output_pixel
    assert throughput.conv_macs_per_output_pixel(out) == pytest.approx(expected)


def test_prelu_is_exported_in_the_form_onnxruntime_runs_fast(checkpoint: Path, tmp_path: Path) -> None:
    from upscale.export.graph import lower_for_onnxruntime

    prelu = torch.nn.PReLU(5)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([-0.5, 0.0, 0.25, 1.0, 1.2]))  # learned slopes leave [0, 1]
    x = torch.randn(2, 5, 7, 6)
    holder = torch.nn.Sequential(prelu)
    want = holder(x)
    lowered = lower_for_onnxruntime(holder)
    assert not any(isinstance(m, torch.nn.PReLU) for m in lowered.modules())
    assert torch.allclose(lowered(x), want, atol=1e-6)

    out = tmp_path / "m.onnx"
    assert runner.invoke(export_app, [str(out), "-c", str(checkpoint)]).exit_code == 0
    graph = onnx.load(out).graph
    ops = {node.op_type for node in graph.node}
    assert "PRelu" not in ops and "Relu" in ops
    assert not any(node.metadata_props for node in graph.node)  # no stack traces with local paths shipped


def test_the_detail_joins_the_bicubic_phases_before_one_shuffle(checkpoint: Path, tmp_path: Path) -> None:
    """One DepthToSpace, not one for the detail and one for the bicubic branch: the same numbers to the bit (a
    shuffle is a permutation) for half the data moved; onnxruntime's CPU DepthToSpace is slow."""
    out = tmp_path / "m.onnx"
    assert runner.invoke(export_app, [str(out), "-c", str(checkpoint)]).exit_code == 0
    ops = [node.op_type for node in onnx.load(out).graph.node]
    assert ops.count("DepthToSpace") == 1 and ops[-1] == "DepthToSpace", ops[-4:]
    model = model_from_checkpoint(load_checkpoint(checkpoint)).eval()
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        twice = torch.nn.functional.pixel_shuffle(model.body(x), model.scale) + model.upsample(x)
        assert torch.equal(model(x), twice)


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pt"
    bad.write_text("not a checkpoint")
    result = runner.invoke(export_app, [str(tmp_path / "m.onnx"), "-c", str(bad)])
    assert result.exit_code == 1 and "notes.pt" in result.output and "cannot load" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "m.onnx").exists()
    torch.save({"weights": {}}, tmp_path / "other.pt")
    other = runner.invoke(export_app, [str(tmp_path / "m.onnx"), "-c", str(tmp_path / "other.pt")])
    assert other.exit_code == 1 and "not a checkpoint of upscale-train, nor an architecture spandrel knows" in \
        other.output
