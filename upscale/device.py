"""Which device runs the model, and the trial that earns a GPU its place: never a silent CPU fallback.

``--device`` is ``auto``, ``cpu``, or a GPU provider (`providers`): ``cuda[:N]``, ``webgpu[:N]``,
``directml[:N]``, ``coreml``. ``auto`` tries the GPU kinds this machine can have, in `providers.auto_order`,
and takes the first whose trial passes, else the CPU. A trial: the session is built with the device, the share
of the model's nodes the device took is counted (a model that runs partly on the CPU is named as such), a
probe picture is run on it and on the CPU, and the two must agree within 1/255. A float16 model on a device
without float16 runs as its float32 file, with a note.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from . import providers
from .errors import DeviceError

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|webgpu|directml|coreml)(?::(\d+))?$")
AGREEMENT = 1 / 255
"""How far a device's probe output may be from the CPU's: one step of an 8-bit output."""


@dataclass(frozen=True)
class Device:
    """A resolved execution device: its provider kind and index."""

    kind: str  # "cpu" or one of `providers.GPU_KINDS`
    index: int = 0

    @property
    def is_gpu(self) -> bool:
        return self.kind != "cpu"

    def __str__(self) -> str:
        return self.kind if self.kind in ("cpu", "coreml") else f"{self.kind}:{self.index}"


def parse_device(spec: str) -> tuple[str, int | None]:
    """Split a --device value into (kind, index)."""
    match = _DEVICE_RE.match(spec.strip().lower())
    if not match:
        raise DeviceError(f"unknown device {spec!r}: use auto, cpu, cuda[:N], webgpu[:N], directml[:N] or coreml")
    kind, index = match.group(1), match.group(2)
    if index is not None and kind in ("auto", "cpu", "coreml"):
        raise DeviceError(f"unknown device {spec!r}: {kind} takes no index")
    return kind, int(index) if index is not None else None


def candidates(spec: str) -> tuple[list[Device], bool]:
    """The devices to try for a --device value, in order, and whether the last resort is the CPU (``auto``).
    An explicit GPU that cannot run here is a DeviceError naming why and what installs it."""
    kind, index = parse_device(spec)
    if kind == "cpu":
        return [Device("cpu")], False
    if kind != "auto":
        reason = providers.unusable_reason(kind)
        if reason is not None:
            raise DeviceError(f"{providers.NAME[kind]} was requested but is not usable: {reason}; "
                              f"{providers.INSTALL[kind]}")
        return [Device(kind, index or 0)], False
    usable = [Device(k) for k in providers.auto_order() if providers.unusable_reason(k) is None]
    return [*usable, Device("cpu")], True


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


def open_session(source: bytes | str, device: Device, options: ort.SessionOptions) -> ort.InferenceSession:
    """A session on ``device``; on a GPU, a DeviceError (one line) where the provider cannot take the model,
    never onnxruntime's own retry on the CPU."""
    if not device.is_gpu:
        return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    if device.kind == "cuda":
        preload_cuda_libraries()
    chosen = providers.point_session(options, device.kind, device.index)
    previous = 2
    ort.set_default_logger_severity(4)  # loader errors are reported by us, in one line
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            session = ort.InferenceSession(source, options, providers=chosen, enable_fallback=0)
    except Exception as exc:  # onnxruntime raises its own Fail/RuntimeException types
        raise DeviceError(f"{device} cannot run this model: {_first_line(exc)}") from None
    finally:
        ort.set_default_logger_severity(previous)
    if providers.PROVIDER[device.kind] not in session.get_providers():
        raise DeviceError(f"{device} is not usable: onnxruntime could not load its libraries")
    return session


def device_share(session: ort.InferenceSession, device: Device) -> float:
    """The share of the model's nodes that run on ``device`` (1.0 where onnxruntime cannot say)."""
    try:
        assigned = session.get_provider_graph_assignment_info()
    except Exception:
        return 1.0
    counts: dict[str, int] = {}
    for subgraph in assigned:
        counts[subgraph.ep_name] = counts.get(subgraph.ep_name, 0) + len(subgraph.get_nodes())
    total = sum(counts.values())
    return counts.get(providers.PROVIDER[device.kind], 0) / total if total else 1.0


def check_agreement(run_on_device: Callable[[np.ndarray], np.ndarray],
                    run_on_cpu: Callable[[np.ndarray], np.ndarray], size: int, device: Device) -> None:
    """Run one probe picture both ways; a DeviceError where the outputs differ by more than `AGREEMENT`."""
    probe = np.random.default_rng(0).random((1, 3, size, size), dtype=np.float32)
    try:
        on_device = run_on_device(probe)
    except Exception as exc:
        raise DeviceError(f"{device} failed the trial run: {_first_line(exc)}") from None
    difference = float(np.max(np.abs(on_device - run_on_cpu(probe))))
    if not difference <= AGREEMENT:
        raise DeviceError(f"{device} disagrees with the CPU by {difference:.4f} (more than 1/255) on a trial "
                          "picture: its results would be wrong")


def float32_sibling(path: Path) -> Path | None:
    """The float32 file of a float16 model (``repsr-x2-fp16.onnx`` -> ``repsr-x2.onnx``), if there is one."""
    if not path.stem.endswith("-fp16"):
        return None
    sibling = path.with_name(path.stem.removesuffix("-fp16") + path.suffix)
    return sibling if sibling.is_file() else None


def lacks_float16(error: DeviceError) -> bool:
    """Whether a device refused a model for its float16 arithmetic (WebGPU without shader-f16, older GPUs)."""
    text = str(error).lower()
    return "f16" in text or "float16" in text or "fp16" in text


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
