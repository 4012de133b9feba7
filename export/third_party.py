"""The world's PyTorch upscalers (.pth, .safetensors, .ckpt) as `upscale` ONNX models, through spandrel.

spandrel (MIT) recognises ~40 architectures from a state dict alone (ESRGAN and Real-ESRGAN, Compact, SPAN,
SwinIR, OmniSR, PLKSR, ...) and says what a model is: scale, channels, size needs, half-precision support,
purpose. Nothing is ever downloaded. The file itself is read by `upscale.train.checkpoint.read_weights` (weights
only, never code), not by spandrel's loader, which would try ``.pt`` files as TorchScript programs first.

Here a file becomes a model of the contract: refused with a one-line reason unless it is an RGB-to-RGB
upscaler; exported with dynamic N/H/W (TorchScript exporter first, which handles these architectures' shape
arithmetic, then ``torch.export``), or where neither gives a graph that runs everywhere, at one fixed window that
the engine pads every tile to (`convert`). Each graph is checked against the PyTorch module in 8-bit output levels
at every input shape the engine will give it (`engine_shapes`): a graph that fails at one of them is a failed
conversion, never an error per image later. Its tile overlap is measured by an impulse through the graph
(`receptive_field`), and tiling checked against the whole image on a test picture (`tiling_verdict`), since
attention over windows or the whole image makes tiles differ however they overlap.
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
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn
from upscale.train.checkpoint import read_weights

from upscale.contract import ModelInfo
from upscale.errors import TrainingError
from upscale.files import sha256_of
from upscale.images import Picture
from upscale.model import load_model
from upscale.picture import UpscaleOptions, upscale_picture

from .graph import FP16_TOLERANCE, FP32_TOLERANCE, ExportSummary, levels, lower_for_onnxruntime, photo_like
from .graph import strip_node_metadata as _strip
from .metadata import attach_metadata
from .patches import export_friendly

SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")
PROBE_SIZE = 96  # input pixels: an impulse's influence is measured within this square (dynamic graphs)
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


LEVELS_MAX = {False: 1, True: 2}
"""Largest difference to PyTorch anywhere, in 8-bit levels, that a float32 (float16) conversion may show."""
LEVELS_MEAN = {False: 0.05, True: 0.25}
"""Largest mean difference in 8-bit levels: a conversion that moves many pixels by a level is not the model."""
FIXED_WINDOW = 256
"""Input side of the fallback graph for models no exporter makes dynamic (rounded up to their size needs); its
batch is one image (the runner feeds a batch's images one by one)."""


BATCH_NOISE = 2e-5
"""Largest difference (0-1 units, 1/200 of a level) between an image run in a batch and run alone: batched
arithmetic moves outputs by about 1e-6; a graph that traced a batch size in reshapes the images into each other,
which on random weights can stay under the level bounds while real weights make it visible."""


def engine_shapes(model: ThirdParty, overlap: int) -> list[tuple[int, int]]:
    """Every input shape the engine gives the model on the test images below, after padding to its size needs:
    the automatic tile's window, the tiles of a small odd image and a large odd one, whole 16/32/64-pixel
    images, a tall and a wide one."""
    from upscale.model import _padded
    from upscale.tiling import auto_tile, plan_tiles

    big = 2 * auto_tile(model.scale)
    shapes = set()
    for h, w in [(16, 16), (32, 32), (64, 64), (37, 53), (501, 397), (big, big), (200, 24), (24, 200)]:
        # dynamic graphs only: fixed ones take one shape
        for tile in plan_tiles(h, w, None, overlap, model.scale, grid=model.multiple_of):
            wh, ww = tile.window_shape
            shapes.add((_padded(wh, model.multiple_of, model.min_size), _padded(ww, model.multiple_of,
                                                                              model.min_size)))
    return sorted(shapes)


@dataclass(frozen=True)
class Parity:
    """onnxruntime against PyTorch, in 8-bit levels of the clipped output, over the shapes checked."""

    max_levels: int
    mean_levels: float
    max_abs: float  # in [0, 1] units, for the export summary
    shapes: int

    def within(self, fp16: bool) -> bool:
        return self.max_levels <= LEVELS_MAX[fp16] and self.mean_levels <= LEVELS_MEAN[fp16]

    def __str__(self) -> str:
        return f"up to {self.max_levels} levels, mean {self.mean_levels:.3f}, over {self.shapes} input shapes"


def _parity(data: bytes, reference: nn.Module, shapes: list[tuple[int, int]], fp16: bool,
            batch_of_two: bool = True) -> Parity:
    """Run both on a photo-like image of every shape (two images at the smallest, as one batch); a shape the
    graph cannot run raises (a conversion failure)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4  # a failing shape is reported by us, in one line
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {session.get_inputs()[0].name: x.astype(np.float16 if fp16 else np.float32)})[0]

    worst, total, count, worst_abs = 0, 0.0, 0, 0.0
    batched = min(shapes, key=lambda hw: hw[0] * hw[1]) if batch_of_two else None
    for h, w in shapes:
        x = photo_like(h, w, seed=h * 7919 + w)
        if (h, w) == batched:  # the engine batches equal windows: a traced batch size must not be baked in
            x = np.concatenate([x, photo_like(h, w, seed=h + w)[:, :, ::-1].copy()])
        try:
            got = run(x)
            alone = [run(x[i:i + 1]) for i in range(len(x))] if len(x) > 1 else [got]
        except Exception as exc:  # onnxruntime's Fail/RuntimeException: the graph cannot run at this shape
            raise ValueError(f"fails at {h}x{w} inputs ({_first_line(exc)})") from None
        mixed = float(np.abs(got - np.concatenate(alone)).max())
        if mixed > BATCH_NOISE:
            raise ValueError(f"mixes the images of a batch ({mixed:.1e} from each run alone, at {h}x{w})")
        with torch.no_grad():
            want = reference(torch.from_numpy(x)).numpy()
        if got.shape != want.shape:
            raise ValueError(f"onnxruntime gave {got.shape}, PyTorch {want.shape} at {h}x{w}")
        got = got.astype(np.float32)
        apart = np.abs(levels(got) - levels(want))
        worst, total, count = max(worst, int(apart.max())), total + float(apart.sum()), count + apart.size
        worst_abs = max(worst_abs, float(np.abs(got - want).max()))
    return Parity(worst, total / max(count, 1), worst_abs, len(shapes))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if "Status Message:" not in text else text.split("Status Message:")[-1].strip().splitlines()[0]


@dataclass(frozen=True)
class Conversion:
    proto: onnx.ModelProto
    exporter: str
    parity: Parity
    tiling: Tiling
    fixed_window: int = 0
    shapes: str = "any size"
    multiple_of: int = 0  # the input multiple the graph needs (0: the model's own)
    batch_one: bool = False  # the graph takes one image a run (its batch size was traced in)


MULTIPLES = (8, 16, 32, 64)
"""Input multiples tried when a dynamic graph fails at some sizes: traced padding arithmetic (to a window or a
stride) is often right whenever no padding is needed, so the engine pads to the multiple instead."""


def _multiples_to_try(own: int) -> list[int]:
    return [own, *(m for m in MULTIPLES if m > own and m % own == 0)]


def convert(model: ThirdParty, fp16: bool) -> Conversion:
    """The model as an ONNX graph that runs at every shape the engine gives it and matches PyTorch there.

    Dynamic N/H/W first (TorchScript exporter, then ``torch.export``), each checked in 8-bit levels at
    `engine_shapes` with the overlap measured on it, at the model's own size multiple and then at larger ones
    (`MULTIPLES`); where none works (traced shape arithmetic, windowed attention), one fixed square window that
    the engine pads every tile to. TrainingError naming each attempt's
    reason when nothing works. PReLU is rewritten in the form onnxruntime runs fast (as for our own models), and
    layers whose shape arithmetic does not trace get their export-friendly form (`patches`); the parity checks
    compare with the untouched module."""
    import copy

    lowered = lower_for_onnxruntime(copy.deepcopy(model.module)).eval()
    if fp16:
        lowered = lowered.half()
    return _convert(model, export_friendly(lowered, model.architecture), fp16)


def _convert(model: ThirdParty, lowered: nn.Module, fp16: bool) -> Conversion:
    reasons: list[str] = []
    for multiple in _multiples_to_try(model.multiple_of):
        candidate = replace(model, multiple_of=multiple)
        for dynamo, batch_one in ((False, False), (False, True), (True, False), (True, True)):
            name = ("torch.export" if dynamo else "TorchScript") + (", one image a run" if batch_one else "")
            label = name if multiple == model.multiple_of else f"{name}, sizes padded to multiples of {multiple}"
            try:
                side = _multiple(max(PROBE_SIZE, model.min_size), multiple)
                example = torch.rand(1, 3, side, side + 2 * multiple)
                proto = _strip(_export(lowered, example.half() if fp16 else example, dynamo,
                                                     multiple=multiple, batch_one=batch_one))
                field = receptive_field(proto, candidate, side)
                shapes = engine_shapes(candidate, field.overlap)
                parity = _parity(proto.SerializeToString(), model.module, shapes, fp16, batch_of_two=not batch_one)
                if not parity.within(fp16):
                    reasons.append(f"{label}: differs from PyTorch by {parity}")
                    continue
                # more shapes: tiles of 48 and up, a whole picture
                tiling = tiling_verdict(proto, candidate, field, batch_one=batch_one)
            except Exception as exc:  # exporters and graphs fail in many ways; the next attempt may not
                reasons.append(f"{label}: {_first_line(exc)[:160]}")
                continue
            padded = "" if multiple == model.multiple_of else \
                f", padded to multiples of {multiple} (the graph's shape arithmetic needs it)"
            return Conversion(proto, name, parity, tiling, multiple_of=multiple, batch_one=batch_one,
                              shapes=f"any size{padded}" + ("; one image a run" if batch_one else ""))
    window = _multiple(max(FIXED_WINDOW, model.min_size), model.multiple_of)
    why = "; ".join(reasons)
    try:
        example = torch.rand(1, 3, window, window)
        proto = _strip(_export(lowered, example.half() if fp16 else example, False, fixed=True))
        field = receptive_field(proto, model, window)
        if field.overlap * 4 > window:
            raise ValueError(f"its receptive field ({field.overlap} pixels) leaves too little of a {window} window")
        parity = _parity(proto.SerializeToString(), model.module, [(window, window)], fp16, batch_of_two=False)
        if not parity.within(fp16):
            raise ValueError(f"differs from PyTorch by {parity}")
        tiling = tiling_verdict(proto, model, field, window)
    except Exception as exc:  # the fallback fails for its own reasons
        raise TrainingError(f"{model.architecture} does not convert: {why}; fixed {window}x{window}: "
                            f"{_first_line(exc)[:160]}") from None
    shapes = f"fixed {window}x{window} windows, each tile padded to it (no dynamic graph: {why[:300]})"
    return Conversion(proto, "TorchScript, fixed window", parity, tiling, window, shapes, model.multiple_of)


def _multiple(size: int, multiple_of: int) -> int:
    return math.ceil(size / multiple_of) * multiple_of


def _export(module: nn.Module, example: torch.Tensor, dynamo: bool, fixed: bool = False, multiple: int = 1,
            batch_one: bool = False) -> bytes:
    """One exporter's graph (bytes); its failures are exceptions, summarised by `convert` in one line, so torch's
    own logging of them (pages of tracebacks from torch.export's guards) stays quiet."""
    logging.disable(logging.ERROR)  # torch's loggers have handlers of their own: a logger level would not do
    try:
        return _export_quietly(module, example, dynamo, fixed, multiple, batch_one)
    finally:
        logging.disable(logging.NOTSET)


def _export_quietly(module: nn.Module, example: torch.Tensor, dynamo: bool, fixed: bool, multiple: int,
                    batch_one: bool) -> bytes:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if not dynamo:
            buffer = io.BytesIO()
            # a fixed graph is fixed in all four dimensions: traced shape arithmetic may bake the batch in too
            axes = {} if fixed else {"input": {2: "H", 3: "W"}, "output": {2: "sH", 3: "sW"}}
            if not fixed and not batch_one:
                axes["input"][0] = axes["output"][0] = "N"
            torch.onnx.export(module, (example,), buffer, input_names=["input"], output_names=["output"],
                              opset_version=17, dynamo=False, dynamic_axes=axes)
            return buffer.getvalue()
        Dim = torch.export.Dim
        # sides as multiples (H = m * _H): what torch.export asks for where the model pads to a window or stride
        dims = {2: Dim("H", min=1), 3: Dim("W", min=1)} if multiple == 1 else \
            {2: multiple * Dim("_H", min=1), 3: multiple * Dim("_W", min=1)}
        if not batch_one:
            dims[0] = Dim("N")
        program = torch.onnx.export(module, (example,), input_names=["input"], output_names=["output"],
                                    opset_version=18, dynamic_shapes={"x": dims}, dynamo=True, verbose=False)
        program.optimize()
        buffer = io.BytesIO()
        program.save(buffer)
        return buffer.getvalue()


@dataclass(frozen=True)
class Tiling:
    overlap: int
    exact: bool
    text: str


@dataclass(frozen=True)
class Field:
    """How far an input pixel reaches, measured by an impulse through the graph."""

    overlap: int  # the tile overlap to use, in input pixels (a multiple of the model's multiple_of)
    radius: int  # where any change reaches
    unbounded: bool  # the change reached the probe's edge (global operations or a large field)
    probe: int  # the probe's side

    @property
    def why(self) -> str:
        return f"the receptive field reaches past {self.probe // 2} input pixels" if self.unbounded else ""


def receptive_field(proto: onnx.ModelProto, model: ThirdParty, size: int) -> Field:
    """Poke the centre of a ``size``-square photo-like image and see how far the output moves."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
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
    # global operations or a field past the probe: size the overlap on what moves the output by 1/40 level
    overlap = min(radius(1e-4)[0], MAX_OVERLAP) if unbounded else exact_radius
    return Field(_multiple(max(overlap, 1), model.multiple_of), exact_radius, unbounded, size)


def tiling_verdict(proto: onnx.ModelProto, model: ThirdParty, field: Field, fixed_window: int = 0,
                   batch_one: bool = False) -> Tiling:
    """What tiling changes on a test image: tiles of at least 48 pixels (twice the overlap) against the whole
    image, or for a fixed-window graph, the engine's tiles against PyTorch's whole-image output."""
    overlap = field.overlap
    tile = _multiple(max(48, 2 * overlap), model.multiple_of)
    difference = _tiling_difference(proto, model, overlap, tile, fixed_window, batch_one)
    if not field.unbounded and difference <= 1:
        return Tiling(overlap, True, f"exact (receptive field {field.radius} input pixels)")
    if difference <= 1:  # the contract's promise for tiles: the whole-image result within one 8-bit level
        return Tiling(overlap, True, f"exact to one level: {field.why}, yet tiles overlapping by {overlap} "
                                     "matched the whole image within 1 level of 255 on a test image")
    why = field.why or "windowed attention or position-dependent operations"
    return Tiling(overlap, False, f"approximate: {why}; tiles overlapping by {overlap} differed from the "
                                  f"whole image by up to {difference} levels of 255 on a test image")


def proto_dtype(proto: onnx.ModelProto) -> type:
    elem = proto.graph.input[0].type.tensor_type.elem_type
    return np.float16 if elem == onnx.TensorProto.FLOAT16 else np.float32


def _tiling_difference(proto: onnx.ModelProto, model: ThirdParty, overlap: int, tile: int,
                       fixed_window: int = 0, batch_one: bool = False) -> int:
    """Largest 8-bit difference between the tiled output and the whole-image output of a test picture: 2.5 tiles
    of ``tile``, or for a fixed window, 1.5 windows through the engine's tiles against PyTorch on the whole."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = onnx.ModelProto()
        probe.CopyFrom(proto)
        attach_metadata(probe, ModelInfo(scale=model.scale, tile_overlap=overlap, multiple_of=model.multiple_of,
                                         min_size=model.min_size, fixed_window=fixed_window,
                                         max_batch=1 if batch_one else 0))
        path = Path(tmp) / "probe.onnx"
        onnx.save(probe, path)
        runner = load_model(path, "cpu")
        if fixed_window:  # no whole image through a fixed graph: PyTorch's whole-image output is the reference
            side = _multiple(fixed_window * 3 // 2, model.multiple_of)
            image = (photo_like(side, side)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
            with torch.no_grad():
                reference = model.module(torch.from_numpy(image.transpose(2, 0, 1)[None].astype(np.float32) / 255))
            whole = levels(reference[0].numpy().transpose(1, 2, 0))
            tiled = upscale_picture(runner, Picture(image), UpscaleOptions()).pixels.astype(int)
            return int(np.abs(whole - tiled).max())
        side = tile * 5 // 2
        image = (photo_like(side, side + tile // 2)[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
        whole = upscale_picture(runner, Picture(image), UpscaleOptions(tile=0)).pixels.astype(int)
        tiled = upscale_picture(runner, Picture(image), UpscaleOptions(tile=tile)).pixels.astype(int)
    return int(np.abs(whole - tiled).max())


ONNX_FILE_LIMIT = 2**31 - 64 * 2**20
"""The weights one ONNX file can hold (protobuf's 2 GiB, less room for the graph): larger models need ONNX's
external-data files, which this export does not write (the cache and the engine take one file a model)."""


def _check_fits_one_file(model: ThirdParty, fp16: bool, path: Path) -> None:
    """Refuse at once, before minutes of tracing, what no single ONNX file can hold."""
    size = model.params * (2 if fp16 else 4)
    if size > ONNX_FILE_LIMIT:
        raise TrainingError(f"{path}: {model.architecture} has {model.params:,} parameters ({size / 2**30:.1f} GiB "
                            f"in float{16 if fp16 else 32}), more than one ONNX file holds (2 GiB); "
                            "external-data ONNX files are not written")


def export_third_party(path: Path, output: Path, fp16: bool = False):
    """Write ``output`` from a third-party weight file; TrainingError (nothing written) when it cannot."""
    from upscale.files import write_atomic

    model = load_third_party(path)
    if fp16 and not model.supports_half:
        raise TrainingError(f"{path}: {model.architecture} does not support float16 (spandrel says so); "
                            "export it without --fp16")
    _check_fits_one_file(model, fp16, path)
    done = convert(model, fp16)
    info = ModelInfo(
        scale=model.scale, architecture=model.architecture, tile_overlap=done.tiling.overlap,
        multiple_of=done.multiple_of or model.multiple_of, min_size=model.min_size, tiling=done.tiling.text,
        source=model.source,
        fixed_window=done.fixed_window, shapes=done.shapes, max_batch=1 if done.batch_one else 0,
        description=f"{model.architecture} x{model.scale}, {model.params:,} parameters, converted from {path.name} "
                    f"by upscale-export ({done.exporter} exporter; {done.parity} from PyTorch)"
                    + (", float16" if fp16 else ""),
    )
    attach_metadata(done.proto, info)
    onnx.checker.check_model(done.proto)
    write_atomic(output, done.proto.SerializeToString())
    return ExportSummary(output, model.architecture, model.scale, model.params, None, done.tiling.overlap,
                         output.stat().st_size, done.parity.max_abs, FP16_TOLERANCE if fp16 else FP32_TOLERANCE,
                         fp16, done.tiling.text, str(done.parity), done.shapes)
