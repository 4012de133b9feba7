"""``--strength S``: between the clean model (S = 0) and the photo model (S = 1) of one scale, as Real-ESRGAN's
``-dn`` does: the two networks' weights blended, ``(1 - S) * clean + S * photo``, built once per run in memory.

The pairs share one graph (the photo model was trained from the clean one's architecture), so a blend is a
network of the same shape; what is blended are the re-parameterised (folded) weights, and folding is linear in
the weights, so this is the blend of the trained networks too. S between 0 and 1 trades the clean model's
sharpness for the photo model's removal of JPEG blocks, noise and blur (README: Denoise strength).

The weights are read from the ONNX files with the runtime's own protobuf walk (`untrusted.protobuf_fields`: no
onnx package at run time) and the blend written over the clean file's bytes in place (same sizes), so the
session is made from an ordinary model. (onnxruntime's own initialiser overrides are not used: with all graph
optimisations on, its layout transforms kept some of the file's weights.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .catalogue import CATALOGUE, auto_pair, auto_scale, auto_scales, entry
from .errors import ModelError, UsageError
from .untrusted import packed_varints, protobuf_fields

FLOAT = 1  # TensorProto.FLOAT
_DTYPES = {1: np.float32, 6: np.int32, 7: np.int64, 10: np.float16, 11: np.float64}


def pair_for(model: str | None, factor: float | None) -> tuple[str, str]:
    """The (clean, photo) pair that ``--strength`` blends: the named model's, or for ``auto`` (or no model) the
    pair of the scale the factor needs. UsageError for a model with no partner."""
    if model in (None, "auto"):
        clean, photo = auto_pair(auto_scale(factor))
        if photo is None:
            raise UsageError("--strength: no photo model ships at this scale")
        return clean, photo
    found = entry(Path(model).stem if model != "default" else next(e.name for e in CATALOGUE if e.default))
    if found is None or not found.kind:
        pairs = ", ".join(f"{c}/{p}" for c, p in (auto_pair(s) for s in auto_scales()) if p)
        raise UsageError(f"--strength blends a clean model with the photo model of its scale; {model} has no "
                         f"partner (pairs: {pairs})")
    clean, photo = auto_pair(found.scale)
    if photo is None:
        raise UsageError(f"--strength: no photo model ships at x{found.scale}")
    return clean, photo


def initializers(data: bytes) -> tuple[list[bytes], dict[str, np.ndarray]]:
    """A model's graph nodes (as bytes, to compare graphs) and its initialisers by name: arrays viewing ``data``
    itself, whose place in it `_offset` finds."""
    graph = next((v for n, w, v in protobuf_fields(memoryview(data)) if n == 7 and w == 2), None)
    if graph is None:
        raise ModelError("no graph in the model")
    nodes, weights = [], {}
    for number, wire, value in protobuf_fields(graph):
        if number == 1 and wire == 2:
            nodes.append(bytes(value))
        elif number == 5 and wire == 2:
            name, array = _tensor(value)
            weights[name] = array
    return nodes, weights


def _offset(view: np.ndarray, data: bytes) -> int:
    """Where an array made by `_tensor` lies in ``data``."""
    return view.__array_interface__["data"][0] - np.frombuffer(data, np.uint8).__array_interface__["data"][0]


def _tensor(message: memoryview) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    dtype, name, raw = 0, "", None
    for number, wire, value in protobuf_fields(message):
        if number == 1:
            dims += [value] if wire == 0 else packed_varints(value)
        elif number == 2:
            dtype = value
        elif number == 8:
            name = bytes(value).decode()
        elif number == 9 or (number == 4 and wire == 2):  # raw_data, or packed float_data: little-endian both
            raw = value
    if dtype not in _DTYPES or raw is None:
        raise ModelError(f"initialiser {name!r}: stored in a form --strength does not read")
    return name, np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<")).reshape(dims)


def blend(clean: bytes, photo: bytes, strength: float) -> bytes:
    """The clean model's bytes with every float initialiser ``(1 - strength) * clean + strength * photo``;
    ModelError where the two are not one graph (other nodes, names, shapes, or differing non-float constants)."""
    if not 0 <= strength <= 1:
        raise UsageError(f"--strength must be between 0 and 1, got {strength:g}")
    clean_nodes, a = initializers(clean)
    photo_nodes, b = initializers(photo)
    if clean_nodes != photo_nodes or a.keys() != b.keys():
        raise ModelError("the clean and the photo model are not one graph: their weights cannot be blended")
    out = bytearray(clean)
    for name, x in a.items():
        y = b[name]
        if x.shape != y.shape or x.dtype != y.dtype:
            raise ModelError(f"initialiser {name}: {x.shape} {x.dtype} against {y.shape} {y.dtype}")
        if x.dtype == np.float32:
            mixed = ((1 - strength) * x.astype(np.float64) + strength * y.astype(np.float64)).astype("<f4")
            at = _offset(x, clean)
            out[at:at + mixed.nbytes] = mixed.tobytes()
        elif not np.array_equal(x, y):
            raise ModelError(f"initialiser {name}: the two models' constants differ")
    return bytes(out)


def describe(clean: str, photo: str, strength: float) -> str:
    return f"{clean} + {photo} at strength {strength:g}"



def blended(model: str | None, strength: float, factor: float | None) -> tuple[str, bytes, str]:
    """(the clean model's name, the blend's ONNX bytes, its description) for ``model``'s pair at ``strength``."""
    from .registry import resolve_model_path

    clean, photo = pair_for(model, factor)
    data = blend(resolve_model_path(clean).read_bytes(), resolve_model_path(photo).read_bytes(), strength)
    return clean, data, describe(clean, photo, strength)


def load_blended(model: str | None, strength: float, factor: float | None, device: str = "auto",
                 threads: int | None = None):
    """The pair of ``model`` (`pair_for`) blended at ``strength``, loaded as one model."""
    from .model import load_model

    clean, data, label = blended(model, strength, factor)
    return load_model(clean, device, threads, data, label)
