"""Every GPU provider: WebGPU for real through SwiftShader (Debian's chromium ships it: a complete software Vulkan),
DirectML and Core ML with onnxruntime's provider lists faked, and the choices, trials and messages around them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale import device, providers
from upscale.cli.app import app
from upscale.errors import DeviceError
from upscale.pipeline import IOWorkers

from .conftest import photo

SWIFTSHADER = Path("/usr/lib/chromium/vk_swiftshader_icd.json")
CHILD = Path(__file__).with_name("webgpu_child.py")
FP32_MODELS = ["repsr-x2", "photo-x2", "repsr-x4", "photo-x4", "fast-x2", "fast-x4", "repsr-x2-fast", "bicubic-x2"]


def _webgpu_missing() -> str | None:
    try:
        import onnxruntime_ep_webgpu  # noqa: F401
    except ImportError:
        return "the webgpu extra is not installed"
    return None if SWIFTSHADER.is_file() else "Debian's chromium (SwiftShader) is not installed"


@pytest.fixture(scope="module")
def webgpu_env() -> dict[str, str]:
    """The environment that makes SwiftShader the WebGPU adapter; in CI a missing piece is a failure."""
    missing = _webgpu_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the WebGPU tests: {missing} (.ci/run installs both)")
        pytest.skip(missing)
    return {**os.environ, "VK_ICD_FILENAMES": str(SWIFTSHADER), "ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER": "1",
            "XDG_RUNTIME_DIR": os.environ.get("XDG_RUNTIME_DIR", "/tmp")}


def child(env: dict[str, str], *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHILD), *args], env={**env, **extra}, capture_output=True, text=True,
                          timeout=600)


# --- WebGPU, for real --------------------------------------------------------------------------------------------

def test_every_fp32_model_on_webgpu_agrees_with_the_cpu_whole_and_tiled(webgpu_env: dict[str, str]) -> None:
    done = child(webgpu_env, "agreement", *FP32_MODELS)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    for name in FP32_MODELS:
        assert found[name]["device"] == "webgpu:0", name
        assert found[name]["whole"] <= 1 and found[name]["tiled"] <= 1, (name, found[name])


def test_upscale_dir_on_webgpu_writes_what_the_cpu_writes(webgpu_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (h, w) in enumerate([(24, 32), (17, 29)]):
        Image.fromarray(photo(h, w)).save(folder / f"{i}.png")
    outputs = {}
    for where in ("webgpu", "cpu"):
        done = child(webgpu_env, "cli", "dir", str(folder), str(tmp_path / where), "-m", "repsr-x2", "--device",
                     where, "--tile", "16")
        assert done.returncode == 0, done.stderr[-2000:]
        assert f"on {where}" in done.stderr.splitlines()[0] or f"on {where}" in done.stdout
        outputs[where] = [np.asarray(Image.open(tmp_path / where / f"{i}.png")).astype(int) for i in range(2)]
    for gpu, cpu in zip(outputs["webgpu"], outputs["cpu"], strict=True):
        assert np.abs(gpu - cpu).max() <= 1


def test_auto_takes_webgpu_when_it_is_the_only_gpu(webgpu_env: dict[str, str]) -> None:
    done = child(webgpu_env, "load", "repsr-x2", "auto")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"device": "webgpu:0", "note": "",
                                                               "file": "repsr-x2.onnx"}


def test_auto_takes_the_cpu_when_the_trial_fails_and_says_why(webgpu_env: dict[str, str]) -> None:
    done = child(webgpu_env, "load", "repsr-x2", "auto", UPSCALE_TEST_BREAK_TRIAL="1")
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["device"] == "cpu" and "webgpu:0 disagrees with the CPU" in found["note"]


def test_an_explicit_webgpu_whose_trial_fails_is_one_line_and_exit_2(webgpu_env: dict[str, str],
                                                                    tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(16, 16)).save(tmp_path / "in" / "a.png")
    done = child(webgpu_env, "cli", "dir", str(tmp_path / "in"), str(tmp_path / "out"), "-m", "repsr-x2",
                 "--device", "webgpu", UPSCALE_TEST_BREAK_TRIAL="1")
    lines = [line for line in done.stderr.splitlines() if "XDG_RUNTIME_DIR" not in line]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "webgpu:0 disagrees with the CPU" in lines[0] and not (tmp_path / "out").exists()


def test_a_float16_model_on_a_device_without_float16_runs_its_float32_file(webgpu_env: dict[str, str]) -> None:
    """SwiftShader has no shader-f16, as many real GPUs lack it."""
    done = child(webgpu_env, "load", "repsr-x2-fp16", "webgpu")
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["file"] == "repsr-x2.onnx" and found["device"] == "webgpu:0"
    assert "repsr-x2-fp16 needs float16 arithmetic, which webgpu:0 lacks" in found["note"]


# --- DirectML, Core ML and CUDA with onnxruntime's lists faked ----------------------------------------------------

def fake_machine(monkeypatch, platform: str, available: list[str], webgpu: bool = False, driver: bool = False):
    monkeypatch.setattr(providers.sys, "platform", platform)
    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: [*available, "CPUExecutionProvider"])
    monkeypatch.setattr(providers, "_webgpu_reason", lambda: None if webgpu else "the WebGPU plugin is not installed")
    monkeypatch.setattr(providers, "_nvidia_driver_present", lambda: driver)


def test_auto_tries_cuda_then_the_platforms_own_then_webgpu(monkeypatch) -> None:
    fake_machine(monkeypatch, "win32", ["CUDAExecutionProvider", "DmlExecutionProvider"], webgpu=True, driver=True)
    assert [str(d) for d in device.candidates("auto")[0]] == ["cuda:0", "directml:0", "webgpu:0", "cpu"]
    fake_machine(monkeypatch, "darwin", ["CoreMLExecutionProvider"], webgpu=True)
    assert [str(d) for d in device.candidates("auto")[0]] == ["coreml", "webgpu:0", "cpu"]
    fake_machine(monkeypatch, "linux", ["CUDAExecutionProvider"])  # onnxruntime-gpu without a driver
    assert [str(d) for d in device.candidates("auto")[0]] == ["cpu"]


def test_each_provider_gets_its_own_session_options(monkeypatch) -> None:
    for kind, expected in (("directml", [("DmlExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"]),
                           ("coreml", ["CoreMLExecutionProvider", "CPUExecutionProvider"]),
                           ("cuda", [("CUDAExecutionProvider", {"device_id": 1}), "CPUExecutionProvider"])):
        options = ort.SessionOptions()
        assert providers.point_session(options, kind, 1) == expected
        assert options.get_session_config_entry("session.record_ep_graph_assignment_info") == "1"


@pytest.mark.parametrize("kind", ["directml", "coreml", "cuda", "webgpu"])
def test_an_explicit_provider_that_cannot_run_names_the_fix(monkeypatch, kind: str) -> None:
    fake_machine(monkeypatch, "linux", [])
    with pytest.raises(DeviceError) as raised:
        device.candidates(kind)
    assert str(raised.value).startswith(f"{providers.NAME[kind]} was requested but is not usable")
    assert providers.INSTALL[kind] in str(raised.value)


def test_the_devices_command_says_what_runs_and_how_to_get_the_rest(monkeypatch) -> None:
    fake_machine(monkeypatch, "win32", ["DmlExecutionProvider"])
    result = CliRunner().invoke(app, ["devices"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 3}
    assert "usable" in rows["directml"] and "default adapter" in rows["directml"]
    assert "not usable" in rows["webgpu"] and "pip install 'upscale[webgpu]'" in rows["webgpu"]
    assert "not usable" in rows["cuda"] and "pip install 'upscale[cuda12]'" in rows["cuda"]
    assert "--device auto tries: directml:0, cpu" in result.output


def test_a_model_partly_on_the_device_is_named_with_its_share() -> None:
    class Subgraph:
        def __init__(self, ep_name: str, nodes: int) -> None:
            self.ep_name, self._nodes = ep_name, nodes

        def get_nodes(self) -> list[int]:
            return list(range(self._nodes))

    class Session:
        def get_provider_graph_assignment_info(self):
            return [Subgraph("DmlExecutionProvider", 30), Subgraph("CPUExecutionProvider", 10)]

    assert device.device_share(Session(), device.Device("directml")) == 0.75


def test_every_gpu_kind_gets_the_gpu_io_pools() -> None:
    for kind in providers.GPU_KINDS:
        assert IOWorkers.for_device(kind, cores=16) == IOWorkers.for_device("cuda", cores=16) != IOWorkers(1, 2)
    assert IOWorkers.for_device("cpu", cores=16) == IOWorkers(1, 2)


def test_the_share_on_the_device_reaches_the_models_note(monkeypatch, tiny_model: Path) -> None:
    from upscale import model as model_module

    monkeypatch.setattr(model_module, "device_share", lambda session, on: 0.75)
    monkeypatch.setattr(model_module, "check_agreement", lambda *args: None)
    loaded = model_module.load_model(tiny_model, "cpu")
    note = model_module._trial(loaded.session, str(tiny_model), device.Device("directml"), loaded.info, 1)
    assert note == "75% of the model's nodes on directml:0, the rest on the CPU"
