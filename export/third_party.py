"""The world's PyTorch upscalers (.pth, .safetensors, .ckpt) as `upscale` ONNX models, through spandrel.

spandrel (MIT) recognises ~40 architectures from a state dict alone (ESRGAN and Real-ESRGAN, Compact, SPAN,
SwinIR, OmniSR, PLKSR, ...) and says what a model is: scale, channels, size needs, half-precision support,
purpose. Nothing is ever downloaded. The file itself is read by `upscale.train.checkpoint.read_weights` (weights
only, never code), not by spandrel's loader, which would try ``.pt`` files as TorchScript programs first.

Here a file becomes a model of the contract: refused with a one-line reason unless it is an RGB-to-RGB
upscaler; exported with dynamic N/H/W (TorchScript exporter first, which handles these architectures' shape
arithmetic, then ``torch.export``), or where neither gives a graph that runs everywhere, at one fixed window that
the engine pads every tile to (`conversion`). Each graph is checked against the PyTorch module in 8-bit output
levels at every input shape the engine will give it (`parity`): a graph that fails at one of them is a failed
conversion, never an error per image later. Its tile overlap is measured by an impulse through the graph, and
tiling checked against the whole image on a test picture (`receptive_field`), since attention over windows or the
whole image makes tiles differ however they overlap.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn
from upscale.train.checkpoint import read_weights

from upscale.contract import ModelInfo
from upscale.errors import TrainingError
from upscale.files import sha256_of

from .conversion import convert
from .graph import FP16_TOLERANCE, FP32_TOLERANCE, ExportSummary
from .metadata import attach_metadata

SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


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
