"""The model contract: metadata round trip, and what counts as having none."""

from __future__ import annotations

import onnx
import pytest

from upscale import load_model
from upscale.contract import ModelInfo

from .conftest import build_conv_model


def test_metadata_round_trip() -> None:
    info = ModelInfo(scale=4, architecture="x", tile_overlap=7, multiple_of=2, min_size=3,
                     training_data="T91", validation="Set5 x4 Y-PSNR 30.1 dB", description="d")
    props = info.to_metadata()
    assert all(k.startswith("upscale.") and isinstance(v, str) for k, v in props.items())
    assert props["upscale.contract_version"] == "1"
    assert ModelInfo.from_metadata({**props, "other": "x"}) == info
    assert info.has_metadata is True


def test_no_metadata_means_none() -> None:
    assert ModelInfo.from_metadata({"producer": "someone"}) is None


def test_invalid_values_rejected() -> None:
    with pytest.raises(ValueError):
        ModelInfo(scale=0)


def test_exported_metadata_is_read_back(tmp_path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(build_conv_model(2), path)
    model = load_model(path, "cpu")
    assert model.info.architecture == "tiny-test" and model.info.tile_overlap == 2 and model.info.has_metadata


def test_size_requirements_are_met_by_padding(tmp_path) -> None:
    """A model that needs multiples of 4 still gets any input size, and the output is cropped back."""
    import numpy as np
    from upscale.export.metadata import attach_metadata

    model = build_conv_model(2)
    attach_metadata(model, ModelInfo(scale=2, tile_overlap=2, multiple_of=4, min_size=8))
    path = tmp_path / "m4.onnx"
    onnx.save(model, path)
    loaded = load_model(path, "cpu")
    seen = []

    def spying(session):
        real_run = session.run

        def spy(outputs, feed):
            seen.append(next(iter(feed.values())).shape)
            return real_run(outputs, feed)

        session.run = spy

    for session in [loaded.session, *loaded.lanes]:  # small batches run on a lane
        spying(session)
    out = loaded(np.zeros((1, 3, 5, 9), np.float32))
    assert seen == [(1, 3, 8, 12)] and out.shape == (1, 3, 10, 18)
