"""Layers whose padding is Python shape arithmetic (DCTLSA pads each transformer layer's features to its window)
export through their export-friendly forms: one dynamic graph, equal to spandrel's module at every size."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("spandrel") is None:
    pytest.skip("spandrel not installed", allow_module_level=True)

from upscale.export import conversion, patches  # noqa: E402
from upscale.export.parity import measure_parity  # noqa: E402
from upscale.export.third_party import import_spandrel, load_third_party  # noqa: E402

from upscale import load_model  # noqa: E402
from upscale.images import Picture  # noqa: E402
from upscale.picture import UpscaleOptions, upscale_picture  # noqa: E402

from .conftest import photo  # noqa: E402

import_spandrel()


@pytest.fixture(scope="module")
def dctlsa(tmp_path_factory) -> Path:
    from spandrel.architectures.DCTLSA import DCTLSA

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("dctlsa") / "dctlsa.pth"
    torch.save(DCTLSA(nf=10, num_head=2, upscale=2).state_dict(), path)  # six modules: its forward uses six
    return path


def test_the_friendly_layer_computes_what_the_original_does(dctlsa: Path) -> None:
    module = load_third_party(dctlsa).module
    x = torch.rand(2, 3, 23, 37)
    friendly = patches.export_friendly(module, "DCTLSA")
    with torch.no_grad():
        assert friendly is not module
        assert torch.allclose(friendly(x), module(x), atol=1e-5)  # reflect padding to the window, then cropped
    namespace = patches._namespace(module.model)
    assert namespace.window_reverse is not patches._window_reverse  # swapped only while the copy runs


def test_dctlsa_converts_to_one_dynamic_graph_that_matches_pytorch_at_odd_sizes(dctlsa: Path,
                                                                                tmp_path: Path) -> None:
    from upscale.export.onnx_export import export_checkpoint

    out = tmp_path / "dctlsa.onnx"
    summary = export_checkpoint(dctlsa, out)
    assert summary.shapes == "any size", summary.shapes  # not padded to a larger multiple, not a fixed window
    reference = load_third_party(dctlsa).module
    runner = load_model(out, "cpu")
    for h, w in [(16, 16), (23, 37), (40, 24), (17, 130)]:  # sides that are not multiples of its 16-pixel window
        image = photo(h, w, seed=h)
        got = upscale_picture(runner, Picture(image), UpscaleOptions()).pixels.astype(int)
        with torch.no_grad():
            want = reference(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255))[0]
        want = np.rint(want.clamp(0, 1).numpy().transpose(1, 2, 0) * 255).astype(int)
        assert np.abs(got - want).max() <= 1, (h, w)


def test_without_its_patch_the_traced_dctlsa_graph_is_wrong_at_other_sizes(dctlsa: Path) -> None:
    """What the patch is for: traced, the original bakes in the padding of the example's size (none at 96x112)."""
    module = load_third_party(dctlsa).module
    example = torch.rand(1, 3, 96, 112)
    shapes = [(23, 37), (40, 24)]
    with pytest.raises(ValueError, match="fails at"):
        measure_parity(conversion.trace(module, example, dynamo=False), module, shapes, fp16=False)
    graph = conversion.trace(patches.export_friendly(module, "DCTLSA"), example, dynamo=False)
    assert measure_parity(graph, module, shapes, fp16=False).within(fp16=False)


def test_swin_window_attention_traces_with_any_batch(tmp_path: Path) -> None:
    """SwinIR's `window_reverse` computes the batch in Python: traced, a graph for one image; its batch-free form
    gives one graph for the engine's batches of equal tiles."""
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    network = SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2], mlp_ratio=2,
                     upsampler="pixelshuffle", resi_connection="1conv")
    path = tmp_path / "swinir.pth"
    torch.save(network.state_dict(), path)
    module = load_third_party(path).module
    example = torch.rand(1, 3, 24, 32)
    graph = conversion.trace(patches.export_friendly(module, "SwinIR"), example, dynamo=False)
    assert batch_mixing(graph) < 1e-5  # each image of a batch comes out as it does alone
    assert measure_parity(graph, module, [(16, 16), (20, 28)], fp16=False).within(fp16=False)
    traced = conversion.trace(module, example, dynamo=False)
    assert batch_mixing(traced) > 1e-4  # what the patch is for: the images mixed (float noise: 1e-7)
    with pytest.raises(ValueError, match="mixes the images of a batch"):  # within the level bounds, yet refused
        measure_parity(traced, module, [(16, 16), (20, 28)], fp16=False)


def test_without_a_patch_a_traced_batch_gives_a_one_image_graph(tmp_path: Path, monkeypatch) -> None:
    from spandrel.architectures.SwinIR import SwinIR

    torch.manual_seed(0)
    path = tmp_path / "swinir.pth"
    torch.save(SwinIR(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[2], num_heads=[2],
                      upsampler="pixelshuffle").state_dict(), path)
    monkeypatch.setattr(patches, "PATCHES", {})
    real = conversion.trace
    monkeypatch.setattr(conversion, "trace", lambda module, example, dynamo, *a, **k: real(
        module, example, dynamo, *a, **k) if not dynamo else pytest.fail("torch.export reached"))
    done = conversion.convert(load_third_party(path), fp16=False)
    assert (done.exporter, done.shapes, done.batch_one) == ("TorchScript, one image a run",
                                                            "any size; one image a run", True)


def batch_mixing(graph: bytes) -> float:
    """How far two images run as one batch come out from each run alone (largest difference, 0-1 units)."""
    import onnxruntime as ort

    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    pair = np.stack([photo(20, 28, seed=1), photo(20, 28, seed=2)]).transpose(0, 3, 1, 2).astype(np.float32) / 255
    together = session.run(None, {"input": pair})[0]
    alone = np.concatenate([session.run(None, {"input": pair[i:i + 1]})[0] for i in range(2)])
    return float(np.abs(together - alone).max())


@pytest.mark.parametrize("architecture", ["SwinIR", "Swin2SR", "HAT", "DRCT", "ATD", "DCTLSA", "RGT", "CRAFT"])
def test_batch_free_window_merging_equals_each_architectures_own(architecture: str) -> None:
    """The swapped-in helper against the architecture's original, on two images' windows (eager)."""
    import importlib
    import sys

    package = importlib.import_module(f"spandrel.architectures.{architecture}")
    network = next(v for v in vars(package).values() if isinstance(v, type) and issubclass(v, torch.nn.Module))
    namespace = sys.modules[network.__module__]
    windows = torch.rand(2 * 3 * 2, 4, 4, 5)  # two images of 12x8 in 4x4 windows, 5 channels
    if hasattr(namespace, "window_reverse"):
        assert torch.equal(patches._window_reverse(windows, 4, 12, 8), namespace.window_reverse(windows, 4, 12, 8))
        helper = "window_reverse"
    else:
        flat = windows.view(12, 16, 5)
        assert torch.equal(patches._windows2img(flat, 4, 4, 12, 8), namespace.windows2img(flat, 4, 4, 12, 8))
        helper = "windows2img"
    swapped = {p.args[0] for p in patches.PATCHES[architecture] if isinstance(p, functools.partial)}
    assert helper in swapped  # the architecture's own helper is the one its patch swaps
