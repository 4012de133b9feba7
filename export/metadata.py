"""Write the model contract into an ONNX model (the reading side is `upscale.contract`)."""

from __future__ import annotations

import onnx

from upscale.contract import METADATA_PREFIX, ModelInfo


def attach_metadata(model: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    """Replace any earlier `upscale.*` metadata of ``model`` with ``info``'s, in place; returns it."""
    keep = {p.key: p.value for p in model.metadata_props if not p.key.startswith(METADATA_PREFIX)}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {**keep, **info.to_metadata()})
    return model
