"""The world's PyTorch upscalers (.pth, .safetensors, .ckpt) as `upscale` ONNX models, through spandrel.

spandrel (MIT) recognises ~40 architectures from a state dict alone (ESRGAN and Real-ESRGAN, Compact, SPAN,
SwinIR, OmniSR, PLKSR, ...) and says what a model is: scale, channels, size needs, half-precision support,
purpose. Nothing is ever downloaded. The file itself is read by `upscale.train.checkpoint.read_weights` (weights
only, never code), not by spandrel's loader, which would try ``.pt`` files as TorchScript programs first.

Here a file becomes a model of the contract: refused with a one-line reason unless it is an RGB-to-RGB
upscaler; exported with dynamic N/H/W (TorchScript exporter first, which handles these architectures' shape
arithmetic, then ``torch.export``), checked against the PyTorch module at two sizes; its tile overlap measured
by an impulse through the exported graph, and tiling checked against the whole image on a test picture
(`measure_tiling`), since attention over windows or the whole image makes tiles differ however they overlap.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import io
import logging
import math
import sys
import tempfile
import types
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from upscale.train.checkpoint import read_weights

from upscale.contract import ModelInfo
from upscale.engine import UpscaleOptions, upscale_picture
from upscale.errors import TrainingError
from upscale.files import sha256_of
from upscale.images import Picture
from upscale.model import load_model

from .metadata import attach_metadata

SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")
FP32_TOLERANCE = 1e-4
FP16_TOLERANCE = 2e-2
PROBE_SIZE = 96  # input pixels: an impulse's influence is measured within this square
MAX_OVERLAP = 48  # tile overlap used when the receptive field reaches past the probe


@contextlib.contextmanager
def _torchvision_stand_in():
    """spandrel imports torchvision at import time for two architectures we refuse anyway (LaMa inpainting and
    RestoreFormer faces). Where torchvision cannot be installed beside the pinned CPU torch, those two imports get
    a stand-in whose functions raise; it is removed again at once, so nothing else ever sees it."""
    try:
        import torchvision  # noqa: F401

        yield
        return
    except Exception:  # absent, or PyPI's build that does not match this torch
        pass
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]

    def unavailable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("this architecture needs torchvision, which is not installed")

    root, transforms, functional = (types.ModuleType(n) for n in
                                    ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"))
    functional.InterpolationMode = enum.Enum("InterpolationMode", "NEAREST BILINEAR BICUBIC")
    functional.rotate = functional.normalize = unavailable
    root.transforms, transforms.functional = transforms, functional
    names = {"torchvision": root, "torchvision.transforms": transforms, "torchvision.transforms.functional": functional}
    sys.modules.update(names)
    try:
        yield
    finally:
        for name in names:
            sys.modules.pop(name, None)


def import_spandrel():
    try:
        with _torchvision_stand_in():
            return importlib.import_module("spandrel")
    except ImportError:
        raise TrainingError("third-party weights need spandrel: pip install 'upscale[pth]' "
                            "(or pip install --no-deps spandrel einops safetensors beside a CPU torch)") from None


def is_upscale_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint of upscale-train, from the names in its pickle, without unpickling it."""
    import pickletools
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        pickle_name = next((n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pickle_name is None:
            return False
        data = archive.read(pickle_name)
    strings = set()
    with contextlib.suppress(Exception):
        for op, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and op.name.endswith("UNICODE"):
                strings.add(arg)
    return {"arch", "model", "optimizer", "best_psnr", "config"} <= strings


class _Forward(nn.Module):
    """The descriptor's network called with one image batch (some, like RealCUGAN, take optional extras)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@dataclass(frozen=True)
class ThirdParty:
    """A loaded third-party upscaler, accepted by the contract's rules."""

    module: nn.Module
    architecture: str
    scale: int
    multiple_of: int
    min_size: int
    supports_half: bool
    params: int
    source: str  # "NAME sha256:HEX"


def load_third_party(path: Path) -> ThirdParty:
    """Load with spandrel and refuse, in one line, what is not an RGB-to-RGB upscaler."""
    spandrel = import_spandrel()
    state_dict = read_weights(path)  # our loader, not spandrel's: weights only, and it tries no TorchScript
    if not isinstance(state_dict, dict):
        raise TrainingError(f"{path}: holds a {type(state_dict).__name__}, not a dictionary of weights")
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError:
        raise TrainingError(f"{path}: not a checkpoint of upscale-train, nor an architecture spandrel knows") from None
    except Exception as exc:  # unpickling, safetensors and state-dict errors come in many types
        raise TrainingError(f"{path}: cannot load ({str(exc).splitlines()[0][:200] if str(exc) else exc!r})") from None
    name = descriptor.architecture.name
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise TrainingError(f"{path}: {name} is an inpainting model, not an upscaler")
    if descriptor.purpose == "FaceSR":
        raise TrainingError(f"{path}: {name} is a face-restoration model (it needs aligned faces), not an upscaler")
    if descriptor.scale < 2 or descriptor.purpose in ("Restoration",):
        raise TrainingError(f"{path}: {name} is a restoration model (scale {descriptor.scale}), not an upscaler")
    if (descriptor.input_channels, descriptor.output_channels) != (3, 3):
        raise TrainingError(f"{path}: {name} maps {descriptor.input_channels} channels to "
                            f"{descriptor.output_channels}; only RGB-to-RGB upscalers are supported")
    needs = descriptor.size_requirements
    if needs.square:
        raise TrainingError(f"{path}: {name} needs square inputs, which tiling here does not make")
    module = _Forward(descriptor.model).eval().float()
    return ThirdParty(module, name, int(descriptor.scale), max(1, int(needs.multiple_of)), max(1, int(needs.minimum)),
                      bool(descriptor.supports_half), sum(p.numel() for p in module.parameters()),
                      f"{path.name} sha256:{sha256_of(path)}")


def _sizes(model: ThirdParty) -> list[tuple[int, int]]:
    """Two input sizes that meet the model's needs and differ in both sides (to catch baked-in shapes)."""
    m = model.multiple_of
    base = math.ceil(max(model.min_size, 24) / m) * m
    return [(base, base + 2 * m), (base + 3 * m, base + m)]


def _export(module: nn.Module, example: torch.Tensor, dynamo: bool) -> bytes:
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if not dynamo:
            buffer = io.BytesIO()
            torch.onnx.export(module, (example,), buffer, input_names=["input"], output_names=["output"],
                              opset_version=17, dynamo=False,
                              dynamic_axes={"input": {0: "N", 2: "H", 3: "W"}, "output": {0: "N", 2: "sH", 3: "sW"}})
            return buffer.getvalue()
        dims = {0: torch.export.Dim("N"), 2: torch.export.Dim("H", min=1), 3: torch.export.Dim("W", min=1)}
        program = torch.onnx.export(module, (example,), input_names=["input"], output_names=["output"],
                                    opset_version=18, dynamic_shapes={"x": dims}, dynamo=True, verbose=False)
        program.optimize()
        buffer = io.BytesIO()
        program.save(buffer)
        return buffer.getvalue()


def _parity(data: bytes, reference: nn.Module, sizes: list[tuple[int, int]], fp16: bool) -> float:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    worst = 0.0
    rng = np.random.default_rng(0)
    for h, w in sizes:
        x = rng.random((1, 3, h, w), dtype=np.float32)
        got = session.run(None, {session.get_inputs()[0].name: x.astype(np.float16 if fp16 else np.float32)})[0]
        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ValueError(f"onnxruntime gave {got.shape}, PyTorch {want.shape} at {h}x{w}")
        worst = max(worst, float(np.abs(got.astype(np.float32) - want).max()))
    return worst


def to_onnx_checked(model: ThirdParty, fp16: bool) -> tuple[onnx.ModelProto, float, str]:
    """Export with dynamic N/H/W and check it: (model, largest difference to PyTorch, exporter used).

    PReLU is rewritten in the form onnxruntime runs fast (as for our own models)."""
    import copy

    from .onnx_export import lower_for_onnxruntime

    lowered = lower_for_onnxruntime(copy.deepcopy(model.module)).eval()
    if fp16:
        lowered = lowered.half()
    sizes = _sizes(model)
    example = torch.rand(1, 3, *sizes[0])
    tolerance = FP16_TOLERANCE if fp16 else FP32_TOLERANCE
    reasons = []
    for dynamo in (False, True):
        name = "torch.export" if dynamo else "TorchScript"
        try:
            data = _export(lowered, example.half() if fp16 else example, dynamo)
            error = _parity(data, model.module, sizes, fp16)
        except Exception as exc:  # exporters fail in many ways; the next one may not
            reasons.append(f"{name}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}")
            continue
        if error <= tolerance:
            proto = onnx.load_from_string(data)
            for node in proto.graph.node:
                del node.metadata_props[:]
            return proto, error, name
        reasons.append(f"{name}: differs from PyTorch by {error:.2e} (> {tolerance:.0e})")
    raise TrainingError(f"{model.architecture} does not export to ONNX with dynamic sizes: {'; '.join(reasons)}")


@dataclass(frozen=True)
class Tiling:
    overlap: int
    exact: bool
    text: str


def measure_tiling(proto: onnx.ModelProto, model: ThirdParty) -> Tiling:
    """The receptive field, by an impulse through the exported graph, and what tiling changes on a test image."""
    import onnxruntime as ort

    from .onnx_export import photo_like

    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    size = math.ceil(max(PROBE_SIZE, model.min_size) / model.multiple_of) * model.multiple_of
    x = photo_like(size, size).astype(proto_dtype(proto))
    c = size // 2
    poked = x.copy()
    poked[0, :, c, c] = 1 - poked[0, :, c, c]
    name = session.get_inputs()[0].name
    diff = np.abs(session.run(None, {name: poked})[0].astype(np.float32) - session.run(None, {name: x})[0])
    changed = diff[0].max(axis=0)
    s = model.scale
    centre = c * s + s // 2

    def radius(threshold: float) -> tuple[int, bool]:
        rows, cols = np.nonzero(changed > threshold)
        if rows.size == 0:
            return 0, False
        extent = max(abs(rows - centre).max(), abs(cols - centre).max())
        edge = rows.min() == 0 or cols.min() == 0 or rows.max() == changed.shape[0] - 1 or \
            cols.max() == changed.shape[1] - 1
        return math.ceil(extent / s), bool(edge)

    exact_radius, unbounded = radius(1e-6)
    if unbounded:  # global operations or a field past the probe: size the overlap on what moves a level
        overlap = min(radius(1e-4)[0], MAX_OVERLAP)  # where an impulse still moves the output by 1/40 level
        why = f"the receptive field reaches past {size // 2} input pixels"
    else:
        overlap, why = exact_radius, ""
    overlap = math.ceil(max(overlap, 1) / model.multiple_of) * model.multiple_of
    tile = math.ceil(max(48, 2 * overlap) / model.multiple_of) * model.multiple_of
    difference = _tiling_difference(proto, model, overlap, tile)
    if not unbounded and difference <= 1:
        return Tiling(overlap, True, f"exact (receptive field {exact_radius} input pixels)")
    if difference <= 1:  # the contract's promise for tiles: the whole-image result within one 8-bit level
        return Tiling(overlap, True, f"exact to one level: {why}, yet tiles of {tile} overlapping by {overlap} "
                                     "matched the whole image within 1 level of 255 on a test image")
    if not why:
        why = "windowed attention or position-dependent operations"
    return Tiling(overlap, False, f"approximate: {why}; tiles of {tile} overlapping by {overlap} differed from the "
                                  f"whole image by up to {difference} levels of 255 on a test image")


def proto_dtype(proto: onnx.ModelProto) -> type:
    elem = proto.graph.input[0].type.tensor_type.elem_type
    return np.float16 if elem == onnx.TensorProto.FLOAT16 else np.float32


def _tiling_difference(proto: onnx.ModelProto, model: ThirdParty, overlap: int, tile: int) -> int:
    """Largest 8-bit difference between tiled and whole-image output of a 2.5-tile test picture."""
    from .onnx_export import photo_like

    with tempfile.TemporaryDirectory() as tmp:
        probe = onnx.ModelProto()
        probe.CopyFrom(proto)
        attach_metadata(probe, ModelInfo(scale=model.scale, tile_overlap=overlap, multiple_of=model.multiple_of,
                                         min_size=model.min_size))
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, path)
        runner = load_model(path, "cpu")
        side = tile * 5 // 2
        image = (photo_like(side, side + tile // 2)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        whole = upscale_picture(runner, Picture(image), UpscaleOptions(tile=0)).pixels.astype(int)
        tiled = upscale_picture(runner, Picture(image), UpscaleOptions(tile=tile)).pixels.astype(int)
    return int(np.abs(whole - tiled).max())


def export_third_party(path: Path, output: Path, fp16: bool = False):
    """Write ``output`` from a third-party weight file; TrainingError (nothing written) when it cannot."""
    from upscale.files import write_atomic

    from .onnx_export import ExportSummary

    model = load_third_party(path)
    if fp16 and not model.supports_half:
        raise TrainingError(f"{path}: {model.architecture} does not support float16 (spandrel says so); "
                            "export it without --fp16")
    proto, error, exporter = to_onnx_checked(model, fp16)
    tiling = measure_tiling(proto, model)
    info = ModelInfo(
        scale=model.scale, architecture=model.architecture, tile_overlap=tiling.overlap,
        multiple_of=model.multiple_of, min_size=model.min_size, tiling=tiling.text, source=model.source,
        description=f"{model.architecture} x{model.scale}, {model.params:,} parameters, converted from {path.name} "
                    f"by upscale-export ({exporter} exporter)" + (", float16" if fp16 else ""),
    )
    attach_metadata(proto, info)
    onnx.checker.check_model(proto)
    write_atomic(output, proto.SerializeToString())
    return ExportSummary(output, model.architecture, model.scale, model.params, None, tiling.overlap,
                         output.stat().st_size, error, FP16_TOLERANCE if fp16 else FP32_TOLERANCE, fp16, tiling.text)
