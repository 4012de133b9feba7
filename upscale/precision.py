"""``--precision auto|fp32|int8``: a bundled model's int8 twin, where the CPU has int8 dot products.

int8 kernels pay only on CPUs with an int8 dot-product instruction (x86: AVX-512 VNNI, AVX-VNNI, AMX; ARM: the dot
product and i8mm extensions): four 8-bit products summed in one step, where float32 does one. Without one,
onnxruntime's int8 convolutions are no faster than float32, so ``auto`` runs int8 only where the CPU has one,
only on the CPU (a GPU runs float), and only for a model that ships an int8 twin (``fast-x2`` ->
``fast-x2-int8``). The choice is made once, by the command (on a cluster: by the driver), so every file of a run
goes through the same model.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from .errors import UsageError

PRECISIONS = ("auto", "fp32", "int8")
INT8_SUFFIX = "-int8"

# /proc/cpuinfo flag -> the instruction set's usual name, best first
_X86_FLAGS = {"amx_int8": "AMX", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI"}
_ARM_FLAGS = {"i8mm": "Arm i8mm", "asimddp": "Arm dot product"}


def int8_dot_product(cpuinfo: str | None = None) -> str | None:
    """The CPU's int8 dot-product instructions by name, or None where it has none or they cannot be told.

    Linux: the flags of /proc/cpuinfo (``cpuinfo`` replaces it in tests). Apple silicon always has them; other
    systems are not inspected (None: float32, the safe side)."""
    if cpuinfo is None:
        if sys.platform == "darwin" and platform.machine() == "arm64":
            return _ARM_FLAGS["asimddp"]
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return next((name for flag, name in {**_X86_FLAGS, **_ARM_FLAGS}.items() if flag in flags), None)


def int8_twin(model: str) -> str | None:
    """The bundled int8 twin's name of a bundled model (``fast-x2`` -> ``fast-x2-int8``), if one ships."""
    from .registry import bundled_models

    twin = f"{model}{INT8_SUFFIX}"
    return twin if twin in bundled_models() else None


def with_twins() -> list[str]:
    """The bundled models that ship an int8 twin."""
    from .registry import bundled_models

    return sorted(name for name in bundled_models() if int8_twin(name))


def _gpu_may_run(device: str) -> bool:
    """Whether ``--device`` may put the model on a GPU: named, or ``auto`` with a GPU that passes the cheap
    checks (provider installed, adapter found)."""
    if device != "auto":
        return device != "cpu"
    from .providers import auto_order, unusable_reason

    return any(unusable_reason(kind) is None for kind in auto_order())


def choose(model: str | None, precision: str, device: str, blend: bool = False) -> str | None:
    """The model the run loads: ``model`` itself, or its int8 twin where ``precision`` asks or ``auto`` finds
    int8 worth it. ``--precision int8`` for a model without a twin is a UsageError naming those with one. A
    ``blend`` (``--strength``) mixes float weights: ``model`` stays as named."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if blend:
        if precision == "int8":
            raise UsageError("--precision int8 and --strength: a blend mixes float32 weights (no int8 form)")
        return model
    if precision == "fp32":
        return model
    twin = int8_twin(model) if model is not None else None
    if precision == "int8":
        if twin is None:
            raise UsageError(f"--precision int8: {model or 'auto'} has no int8 twin (models with one: "
                             f"{', '.join(with_twins()) or 'none'})")
        return twin
    worth_it = twin is not None and not _gpu_may_run(device) and int8_dot_product() is not None
    return twin if worth_it else model


def describe(model_name: str) -> str:
    """What the model line adds for an int8 model: the instructions it runs on, or a warning that it is slow."""
    if not Path(model_name).stem.endswith(INT8_SUFFIX):
        return ""
    found = int8_dot_product()
    return f", int8 on {found}" if found else ", int8 (this CPU has no int8 dot product: float32 may be faster)"
