"""Choose the onnxruntime execution provider, and never let a missing CUDA spray library errors.

onnxruntime-gpu lists ``CUDAExecutionProvider`` as available even on machines without a GPU or CUDA
libraries; asking for it there logs many lines of loader errors and silently falls back to the CPU.
So we check what we can cheaply (driver library present) before ever creating a CUDA session, and
create the trial session with onnxruntime's logging turned down.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import re
import sys
from dataclasses import dataclass

import onnxruntime as ort

from .errors import DeviceError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class Device:
    """A resolved execution device: the providers to pass to onnxruntime and a human-readable name."""

    kind: str  # "cpu" or "cuda"
    index: int = 0

    @property
    def providers(self) -> list[str | tuple[str, dict[str, object]]]:
        if self.kind == "cuda":
            return [("CUDAExecutionProvider", {"device_id": self.index}), "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else "cpu"


def _driver_library_present() -> bool:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def cuda_unusable_reason() -> str | None:
    """Why CUDA cannot run here, or None when the cheap checks pass (a trial session still decides)."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "this onnxruntime build has no CUDA support (install onnxruntime-gpu)"
    if not _driver_library_present():
        return "no NVIDIA driver found (libcuda is not loadable)"
    return None


def parse_device(spec: str) -> tuple[str, int | None]:
    """Split ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into (kind, index)."""
    match = _DEVICE_RE.match(spec.strip().lower())
    if not match:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    kind, index = match.group(1), match.group(2)
    if index is not None and kind != "cuda":
        raise DeviceError(f"unknown device {spec!r}: only cuda takes an index")
    return kind, int(index) if index is not None else None


@functools.cache
def preload_cuda_libraries() -> str | None:
    """Load CUDA and cuDNN from the ``nvidia-*`` pip packages (or torch's copies) before the first CUDA session,
    with onnxruntime's own ``preload_dlls`` (onnxruntime-gpu >= 1.21): without it, onnxruntime-gpu finds them
    only on the system library path, and a pip-installed CUDA would look absent. Once per process; returns why it
    could not, or None."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return "this onnxruntime has no preload_dlls (older than 1.21)"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            preload()
    except Exception as exc:  # a missing library is the trial session's to report, in one line
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def quiet_session(model_bytes_or_path: bytes | str, device: Device, options: ort.SessionOptions):
    """Create a session for `device`; for CUDA, fail with a DeviceError instead of a silent CPU fallback."""
    if device.kind != "cuda":
        return ort.InferenceSession(model_bytes_or_path, options, providers=device.providers)
    preload_cuda_libraries()
    previous = 2
    ort.set_default_logger_severity(4)  # loader errors are reported by us, in one line
    try:
        session = ort.InferenceSession(model_bytes_or_path, options, providers=device.providers)
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
        raise DeviceError(f"CUDA device {device} is not usable: {str(exc).splitlines()[0]}") from None
    finally:
        ort.set_default_logger_severity(previous)
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise DeviceError(
            f"CUDA device {device} is not usable: onnxruntime could not load the CUDA/cuDNN libraries"
        )
    return session


def resolve_device(spec: str) -> tuple[Device, bool]:
    """Turn a --device value into a Device; the bool says whether a CUDA trial is still needed.

    ``auto`` picks CUDA only when the cheap checks pass; the caller then tries it and falls back to
    the CPU if the trial fails. An explicit ``cuda`` that cannot work raises DeviceError.
    """
    kind, index = parse_device(spec)
    if kind == "cpu":
        return Device("cpu"), False
    reason = cuda_unusable_reason()
    if kind == "cuda" and reason is not None:
        raise DeviceError(f"CUDA was requested but is not usable: {reason}")
    if reason is not None:
        return Device("cpu"), False
    return Device("cuda", index or 0), kind == "auto"
