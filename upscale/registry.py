"""The models that ship inside the package, and how a --model value becomes a file path."""

from __future__ import annotations

import os
import re
from pathlib import Path

from .catalogue import DEFAULT_MODEL
from .community import BY_NAME, CommunityModel, cached, is_fetched
from .convert import PYTORCH_SUFFIXES, converted
from .errors import UsageError

__all__ = ["DEFAULT_MODEL", "MODELS_DIR", "bundled_models", "resolve_model_path", "siblings"]

MODELS_DIR = Path(__file__).with_name("models")


def bundled_models() -> dict[str, Path]:
    """Name -> path of every ONNX model inside the package."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.onnx"))}


def resolve_model_path(model: str | os.PathLike[str]) -> Path:
    """``default``, a bundled model's name, a path to an .onnx file, or a PyTorch weight file (converted once
    and cached, `upscale.convert`)."""
    name = str(model)
    bundled = bundled_models()
    if name == "default":
        name = DEFAULT_MODEL
    if name in bundled:
        return bundled[name]
    if name in BY_NAME:
        return _community_model(BY_NAME[name])
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() in PYTORCH_SUFFIXES:
        return converted(path)
    if path.is_file():
        return path
    known = ", ".join(bundled) or "none"
    raise UsageError(f"{name}: no such model file, and not a bundled model (bundled: {known})")


def _community_model(model: CommunityModel) -> Path:
    """A community model by name: its converted ONNX file, once fetched (`community`)."""
    if not is_fetched(model):
        raise UsageError(f"{model.name} is a community model not fetched yet: upscale models get {model.name}")
    return converted(cached(model))


def siblings(path: Path) -> dict[int, Path]:
    """The bundled models of ``path``'s family at other scales (``repsr-x2`` -> {4: repsr-x4}): a chain of
    passes may use them (`picture.chain_for`). Empty for files of one's own."""
    found = re.fullmatch(r"(.*)-x(\d+)(.*)", path.stem)
    bundled = bundled_models()
    if found is None or bundled.get(path.stem) != path:
        return {}
    head, own, tail = found.group(1), int(found.group(2)), found.group(3)
    return {scale: bundled[f"{head}-x{scale}{tail}"] for scale in (2, 3, 4, 8)
            if scale != own and f"{head}-x{scale}{tail}" in bundled}
