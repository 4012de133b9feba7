"""Model files from strangers are data, never code: every entry point refuses what would need trust to read.

The attack of the report: a `torch.save` file with our checkpoints' key names plus an object whose ``__reduce__``
runs a shell command. Through every command that reads a model or checkpoint it must be refused in one line
(exit 2) with the marker file never created; legitimate files of each kind still load.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.model import load_model
from upscale.untrusted import UnsafeFileError, check_safetensors, check_weight_archive, onnx_external_locations

from .conftest import build_conv_model, photo

torch = pytest.importorskip("torch")

from upscale.export.cli import app as export_app  # noqa: E402
from upscale.train.arch import create_model  # noqa: E402
from upscale.train.checkpoint import checkpoint_state, load_checkpoint, read_weights, save_checkpoint  # noqa: E402
from upscale.train.cli import app as train_app  # noqa: E402
from upscale.train.config import TrainConfig  # noqa: E402


class RunsCode:
    """What an attacker pickles: unpickling it calls os.system."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def invoke(cli, *args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args])


def ours(tmp_path: Path, name: str = "ours.pt") -> Path:
    """A real checkpoint of upscale-train (tiny network, two-layer srcnn-like repsr)."""
    model = create_model("repsr", 2, channels=4, depth=1)
    opt = torch.optim.Adam(model.parameters())
    cfg = TrainConfig(arch="repsr", arch_options={"channels": 4, "depth": 1}, out=str(tmp_path / "run"))
    path = tmp_path / name
    save_checkpoint(path, checkpoint_state(model, None, opt, 3, 20.0, cfg))
    return path


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    """(the crafted file, the marker its code would create)."""
    marker = tmp_path / "pwned"
    state = torch.load(ours(tmp_path), weights_only=True)
    state["payload"] = RunsCode(f"touch {marker}")
    path = tmp_path / "evil.pth"
    torch.save(state, path)
    return path, marker


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(photo(24, 32)).save(folder / "a.png")
    return folder


def assert_refused(result, path: Path, marker: Path) -> None:
    assert result.exit_code == 2, result.output
    assert not marker.exists(), "the pickle's code ran"
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and path.name in lines[0] and "never run as code" in lines[0], result.output
    assert "posix.system" in lines[0] or "os.system" in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_the_crafted_pickle_runs_code_when_fully_unpickled(evil) -> None:
    """The fixture is a real attack: full unpickling creates the marker (so its absence below means something)."""
    path, marker = evil
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_upscale_dir_refuses_it_before_any_image(evil, images: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(tmp_path / "cache"))
    path, marker = evil
    result = invoke(app, "dir", images, tmp_path / "out", "--model", path, "--device", "cpu")
    assert_refused(result, path, marker)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not list((tmp_path / "cache").rglob("*.onnx")), "a refused file left a converted model in the cache"


def test_upscale_image_and_eval_refuse_it(evil, images: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("UPSCALE_CACHE_DIR", str(tmp_path / "cache"))
    path, marker = evil
    assert_refused(invoke(app, "image", images / "a.png", tmp_path / "a.png", "--model", path), path, marker)
    assert not (tmp_path / "a.png").exists()
    assert_refused(invoke(app, "eval", images, "--scale", "2", "--model", path), path, marker)


def test_upscale_export_refuses_it(evil, tmp_path: Path) -> None:
    path, marker = evil
    assert_refused(invoke(export_app, tmp_path / "m.onnx", "--checkpoint", path), path, marker)
    assert not (tmp_path / "m.onnx").exists()


def test_a_file_without_our_key_names_is_refused_too(tmp_path: Path) -> None:
    """The third-party route (spandrel) reads through the same weights-only loader."""
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pth"
    torch.save({"params": {"conv.weight": torch.zeros(3)}, "x": RunsCode(f"touch {marker}")}, path)
    assert_refused(invoke(export_app, tmp_path / "m.onnx", "--checkpoint", path), path, marker)


@pytest.mark.parametrize("option", ["--resume", "--init-from", "--teacher"])
def test_upscale_train_refuses_it(evil, option: str, tmp_path: Path) -> None:
    path, marker = evil
    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        Image.fromarray(photo(40, 48, seed=i)).save(data / f"{i}.png")
    run = tmp_path / "run"
    args = ["--data", data, "--out", run, "--steps", "2", "--patch", "16", "--batch-size", "2", "--device", "cpu",
            "--arch-option", "channels=4", "--arch-option", "depth=1"]
    if option == "--resume":
        run.mkdir()
        (run / "last.pt").write_bytes(path.read_bytes())
        args.append("--resume")
        path = run / "last.pt"
    elif option == "--teacher":
        args += ["--teacher", path, "--distill-weight", "0.5"]
    else:
        args += ["--init-from", path]
    assert_refused(invoke(train_app, *args), path, marker)


def test_our_checkpoints_load_as_weights_only(tmp_path: Path) -> None:
    """Ours, freshly written, and every committed one (their RNG state is plain tensors and numbers)."""
    state = load_checkpoint(ours(tmp_path))
    assert state["step"] == 3 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    committed = sorted(Path(__file__).parents[1].glob("checkpoints/*/*.pt"))
    assert committed
    for path in committed:
        assert load_checkpoint(path)["arch"]["scale"] in (2, 3, 4), path


def test_torchscript_archives_are_programs_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Conv2d(3, 3, 3)), str(path))
    with pytest.raises(UnsafeFileError, match="TorchScript"):
        read_weights(path)


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("bomb/data.pkl", "w",
                                                                                   force_zip64=True) as f:
        zeros = bytes(1 << 20)
        for _ in range(160):
            f.write(zeros)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(UnsafeFileError, match="zip bomb"):
        check_weight_archive(path)
    result = invoke(export_app, tmp_path / "m.onnx", "--checkpoint", path)
    assert result.exit_code == 2 and "zip bomb" in result.output, result.output
    check_weight_archive(ours(tmp_path))  # a real archive passes


def safetensors_file(path: Path, header: dict | bytes, data: bytes = b"", length: int | None = None) -> Path:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def test_safetensors_headers_that_claim_too_much_are_refused(tmp_path: Path) -> None:
    good = {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}
    check_safetensors(safetensors_file(tmp_path / "good.safetensors", good, bytes(16)))
    from safetensors.torch import save_file

    save_file({"a": torch.ones(3, 4), "b": torch.zeros(2, dtype=torch.float16)}, str(tmp_path / "real.safetensors"))
    check_safetensors(tmp_path / "real.safetensors")
    cases = {
        "huge header": safetensors_file(tmp_path / "a.safetensors", good, bytes(16), length=1 << 40),
        "past the data": safetensors_file(tmp_path / "b.safetensors",
                                          {"w": {"dtype": "F32", "shape": [1 << 28], "data_offsets": [0, 1 << 30]}}),
        "size mismatch": safetensors_file(tmp_path / "c.safetensors",
                                          {"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 16]}}, bytes(16)),
        "not json": safetensors_file(tmp_path / "d.safetensors", b"\xff\xfe{", bytes(4)),
    }
    for what, path in cases.items():
        with pytest.raises(UnsafeFileError, match="refused"):
            check_safetensors(path)
        result = invoke(export_app, tmp_path / "m.onnx", "--checkpoint", path)
        assert result.exit_code == 2 and path.name in result.output, (what, result.output)


def external_model(folder: Path, location: str | None = None) -> Path:
    """The tiny test model with its weights in a file beside it, then (optionally) pointed at ``location``."""
    folder.mkdir(parents=True, exist_ok=True)
    model = build_conv_model(2)
    path = folder / "model.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin",
              size_threshold=64)  # the Resize scales stay inline: shape inference must read them
    if location is not None:
        proto = onnx.load(path, load_external_data=False)
        for tensor in proto.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save(proto, path)
    return path


def test_onnx_external_data_beside_the_model_loads(tmp_path: Path) -> None:
    path = external_model(tmp_path / "m")
    assert set(onnx_external_locations(path.read_bytes())) == {"weights.bin"}
    loaded = load_model(path, "cpu")
    x = np.random.default_rng(0).random((1, 3, 8, 8), dtype=np.float32)
    inline = load_model(_inline_copy(tmp_path), "cpu")
    np.testing.assert_allclose(loaded(x), inline(x), atol=1e-6)


def _inline_copy(tmp_path: Path) -> Path:
    path = tmp_path / "inline.onnx"
    onnx.save(build_conv_model(2), path)
    return path


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "sub/../../secret.bin"])
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path: Path, location: str) -> None:
    path = external_model(tmp_path / "m", location)
    (tmp_path / "secret.bin").write_bytes((tmp_path / "m" / "weights.bin").read_bytes())
    result = invoke(app, "info", path)
    assert result.exit_code == 2, result.output
    assert "outside the model's folder" in result.output and "Traceback" not in result.output


def test_external_locations_are_found_in_constants_and_subgraphs() -> None:
    """The walk reaches tensors outside the graph's initialisers (a Constant node's value attribute)."""
    tensor = numpy_helper.from_array(np.ones(2, np.float32), "c")
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "../far.bin"
    node = onnx.helper.make_node("Constant", [], ["c"], value=tensor)
    graph = onnx.helper.make_graph([node], "g", [], [onnx.helper.make_tensor_value_info("c", 1, [2])])
    assert onnx_external_locations(onnx.helper.make_model(graph).SerializeToString()) == ["../far.bin"]


def test_metadata_cannot_drive_the_terminal(tmp_path: Path) -> None:
    model = build_conv_model(2)
    for prop in model.metadata_props:
        if prop.key == "upscale.description":
            prop.value = "\x1b]0;owned\x07\x1b[2Jclear [red]markup[/red] \r" + "x" * 5000
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    result = invoke(app, "info", path)
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output and "\r" not in result.output
    assert "[red]markup[/red]" in result.output.replace("\n", "").replace(" ", "")[:100000] or \
        "[red]markup" in result.output
    assert "x" * 2001 not in result.output.replace("\n", "").replace(" ", "")


@pytest.mark.parametrize(("key", "value"), [("scale", "1000000"), ("tile_overlap", "99999999"), ("scale", "two")])
def test_metadata_numbers_out_of_bounds_are_one_line(tmp_path: Path, key: str, value: str) -> None:
    model = build_conv_model(2)
    for prop in model.metadata_props:
        if prop.key == f"upscale.{key}":
            prop.value = value
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    result = invoke(app, "info", path)
    assert result.exit_code == 1 and "bad upscale metadata" in result.output and "Traceback" not in result.output


def test_a_tensor_one_byte_past_the_data_is_refused_by_us_not_the_library(tmp_path: Path) -> None:
    path = safetensors_file(tmp_path / "edge.safetensors",
                            {"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [1, 17]}}, bytes(16))
    with pytest.raises(UnsafeFileError, match="refused"):
        check_safetensors(path)
    result = invoke(export_app, tmp_path / "m.onnx", "--checkpoint", path)
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0 and path.name in result.output


def test_missing_external_weights_are_refused_naming_them(tmp_path: Path) -> None:
    path = external_model(tmp_path / "m")
    (tmp_path / "m" / "weights.bin").unlink()
    result = invoke(app, "info", path)
    assert result.exit_code == 2 and "weights.bin" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("sneaky", ["\u202e", "\u200b", "\u2028", "\u2029", "\u2066"])
def test_metadata_text_loses_bidi_overrides_zero_widths_and_separators(tmp_path: Path, sneaky: str) -> None:
    model = build_conv_model(2)
    for prop in model.metadata_props:
        if prop.key == "upscale.description":
            prop.value = f"safe{sneaky}txt.exe"
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    result = invoke(app, "info", path)
    assert result.exit_code == 0 and sneaky not in result.output and "safe txt.exe" in result.output
