"""The GPUs onnxruntime reaches, one provider each: CUDA (NVIDIA), WebGPU (Vulkan on Linux and Windows, Metal on
macOS, Direct3D 12 on Windows: AMD, Intel, Apple and NVIDIA alike), DirectML (Windows) and Core ML (macOS).

For each: why it cannot run here, found by cheap checks before any session (an absent provider otherwise logs a
screen of loader errors and silently runs on the CPU); the command that installs it; the names of its adapters;
and how a session is pointed at it. WebGPU is a plugin (``onnxruntime-ep-webgpu``): its library is registered
once per process, and its devices come from ``onnxruntime.get_ep_devices()``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import sys

import onnxruntime as ort

GPU_KINDS = ("cuda", "webgpu", "directml", "coreml")
PROVIDER = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "webgpu": "WebGpuExecutionProvider",
            "directml": "DmlExecutionProvider", "coreml": "CoreMLExecutionProvider"}
NAME = {"cpu": "CPU", "cuda": "CUDA", "webgpu": "WebGPU", "directml": "DirectML", "coreml": "Core ML"}
INSTALL = {
    "cuda": "pip install 'upscale[cuda12]' (or cuda13), with an NVIDIA driver",
    "webgpu": "pip install 'upscale[webgpu]', with a Vulkan (Linux, Windows), Metal (macOS) or D3D12 driver",
    "directml": "pip install 'upscale[directml]' (Windows 10 or later)",
    "coreml": "the standard onnxruntime wheel on macOS (pip install upscale on a Mac)",
}
BACKEND = {"linux": "Vulkan", "darwin": "Metal", "win32": "Direct3D 12 or Vulkan"}


def auto_order() -> list[str]:
    """The GPU kinds ``--device auto`` tries, in order: CUDA, then the platform's own (DirectML on Windows,
    Core ML on macOS), then WebGPU."""
    own = {"win32": ["directml"], "darwin": ["coreml"]}.get(sys.platform, [])
    return ["cuda", *own, "webgpu"]


def unusable_reason(kind: str) -> str | None:
    """Why ``kind`` cannot run on this machine, or None when the cheap checks pass (a trial still decides)."""
    if kind == "cpu":
        return None
    if kind == "webgpu":
        return _webgpu_reason()
    if PROVIDER[kind] not in ort.get_available_providers():
        return {"cuda": "this onnxruntime build has no CUDA support",
                "directml": "this onnxruntime build has no DirectML (onnxruntime-directml, Windows only)",
                "coreml": "this onnxruntime build has no Core ML (the macOS wheel has it)"}[kind]
    if kind == "cuda" and not _nvidia_driver_present():
        return "no NVIDIA driver found (libcuda is not loadable)"
    return None


def adapters(kind: str) -> list[str]:
    """Human names of the devices a provider would use (empty where it lists none)."""
    if kind == "webgpu":
        backend = BACKEND.get(sys.platform, "native")
        return [f"{d.device.vendor} {d.device.type.name.lower()} via {backend}"
                + (" (software adapter)" if d.device.type.name == "CPU" else "") for d in webgpu_devices()]
    if kind == "cuda":
        return [f"CUDA device {i}" for i in range(_cuda_device_count())]
    return ["default adapter"] if unusable_reason(kind) is None else []


def _webgpu_reason() -> str | None:
    try:
        import onnxruntime_ep_webgpu  # noqa: F401
    except ImportError:
        return "the WebGPU plugin is not installed"
    if not hasattr(ort, "register_execution_provider_library"):
        return f"onnxruntime {ort.__version__} cannot load plugin providers (1.24.4 or later can)"
    if not webgpu_devices():
        return "the WebGPU plugin found no adapter (no Vulkan, Metal or D3D12 driver)"
    return None


@functools.cache
def webgpu_devices() -> tuple:
    """The WebGPU provider's devices, its plugin registered first (once per process); empty where it cannot be."""
    try:
        import onnxruntime_ep_webgpu

        ort.set_default_logger_severity(3)  # its notice about software adapters is not the user's business
        with contextlib.redirect_stdout(io.StringIO()):
            ort.register_execution_provider_library("webgpu", onnxruntime_ep_webgpu.get_library_path())
        return tuple(d for d in ort.get_ep_devices() if d.ep_name == PROVIDER["webgpu"])
    except Exception:  # an absent or broken plugin: no device, said by `unusable_reason`
        return ()
    finally:
        ort.set_default_logger_severity(2)


def point_session(options: ort.SessionOptions, kind: str, index: int) -> list | None:
    """Point a session's options at device ``index`` of ``kind``: the providers list to pass, or None where the
    options themselves name the device (plugin providers). Nodes the device cannot run may fall back to the CPU;
    `device.open_session` counts them."""
    options.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    if kind == "webgpu":
        devices = webgpu_devices()
        options.add_provider_for_devices([devices[min(index, len(devices) - 1)]], {})
        return None
    if kind == "cuda":
        return [(PROVIDER["cuda"], {"device_id": index}), PROVIDER["cpu"]]
    if kind == "directml":
        return [(PROVIDER["directml"], {"device_id": index}), PROVIDER["cpu"]]
    if kind == "coreml":
        return [PROVIDER["coreml"], PROVIDER["cpu"]]
    return [PROVIDER["cpu"]]


def _nvidia_driver_present() -> bool:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def _cuda_device_count() -> int:
    """CUDA devices, from the driver itself (no CUDA runtime needed); 0 where none answers."""
    try:
        cuda = ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
        count = ctypes.c_int(0)
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except (OSError, AttributeError):
        return 0
