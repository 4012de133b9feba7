"""The bundled models as data: each one's scale, purpose and role, in one table that `upscale models`, `upscale
info`, ``--model auto`` and the registry all read (a new model is one row here and its file in models/)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str  # the file models/NAME.onnx, and the --model name
    scale: int
    purpose: str  # what it is for, in a few words
    kind: str = ""  # "clean" or "photo": the two halves of auto's pair at this scale ("" for the others)
    default: bool = False  # the model `--model default` names


CATALOGUE: tuple[Entry, ...] = (
    Entry("repsr-x2", 2, "clean pictures, the best x2", kind="clean", default=True),
    Entry("photo-x2", 2, "photos with JPEG artefacts, noise or blur", kind="photo"),
    Entry("repsr-x4", 4, "clean pictures, the best x4", kind="clean"),
    Entry("photo-x4", 4, "photos with JPEG artefacts, noise or blur", kind="photo"),
    Entry("fast-x2", 2, "speed: a third of repsr-x2's work"),
    Entry("fast-x4", 4, "speed: a quarter of repsr-x4's work"),
    Entry("fast-x2-int8", 2, "fast-x2 in int8, for CPUs (--precision)"),
    Entry("fast-x4-int8", 4, "fast-x4 in int8, for CPUs (--precision)"),
    Entry("repsr-x2-fast", 2, "an earlier, smaller repsr-x2"),
    Entry("repsr-x2-fp16", 2, "repsr-x2 in float16 (GPUs)"),
    Entry("repsr-x4-fp16", 4, "repsr-x4 in float16 (GPUs)"),
    Entry("bicubic-x2", 2, "bicubic interpolation: a baseline"),
)

DEFAULT_MODEL = next(e.name for e in CATALOGUE if e.default)


def entry(name: str) -> Entry | None:
    return next((e for e in CATALOGUE if e.name == name), None)


def auto_pair(scale: int) -> tuple[str, str | None]:
    """``--model auto``'s (clean, photo) model names at ``scale``; photo None where none ships."""
    clean = next(e.name for e in CATALOGUE if e.scale == scale and e.kind == "clean")
    photo = next((e.name for e in CATALOGUE if e.scale == scale and e.kind == "photo"), None)
    return clean, photo


def auto_scales() -> list[int]:
    """The scales auto has a pair for (it runs the nearest one at or above the factor, else the largest)."""
    return sorted({e.scale for e in CATALOGUE if e.kind == "clean"})


def auto_scale(factor: float | None) -> int:
    """The pair's scale for an overall ``factor``: the smallest at or above it, else the largest (None: x2's)."""
    scales = auto_scales()
    return next((s for s in scales if factor is None or factor <= s), scales[-1])


def roles(name: str) -> list[str]:
    """What the model does for the commands: default, and auto's clean or degraded half."""
    found = entry(name)
    if found is None:
        return []
    return (["default"] if found.default else []) + (
        [f"auto: {'clean' if found.kind == 'clean' else 'degraded'} x{found.scale}"] if found.kind else [])
