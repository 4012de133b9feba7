"""What every `upscale` subcommand shares: option types and model loading (the error boundary and consoles are
`upscale.terminal`, shared with upscale-train and upscale-export)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from ..auto import AutoModel
from ..engines import ModelSpec
from ..errors import UsageError
from ..memory import parse_size
from ..model import UpscaleModel
from ..picture import UpscaleOptions
from ..sizing import Fit, SizeRequest
from ..terminal import note

ModelOption = Annotated[
    str | None, typer.Option(
        "--model", "-m", show_default="auto",
        help="'auto' (per file, the clean or the photo model, from its JPEG quality, blockiness and noise), a bundled "
             "model's name, 'default' (repsr-x2), an .onnx file, or a PyTorch weight file (.pth, .safetensors).")
]
DeviceOption = Annotated[
    str, typer.Option("--device", "-d", help="auto, cpu, cuda[:N], webgpu[:N], directml[:N] or coreml (see upscale "
                                             "devices). auto takes the first GPU whose trial passes, else the CPU.")
]
TileOption = Annotated[
    int | None,
    typer.Option("--tile", min=0, help="Largest tile side in input pixels (equal tiles along each axis); "
                                       "0 = whole image; default: automatic (384 at 2x, 272 at 4x)."),
]
ScaleOption = Annotated[
    float | None,
    typer.Option("--scale", "-s", min=0.01, help="Overall factor (any value); default: the model's own scale."),
]
WidthOption = Annotated[int | None, typer.Option(
    "--width", min=1, show_default=False, help="Exact output width; alone, the height follows the aspect.")]
HeightOption = Annotated[int | None, typer.Option(
    "--height", min=1, show_default=False, help="Exact output height; alone, the width follows the aspect.")]
LongSideOption = Annotated[int | None, typer.Option(
    "--long-side", min=1, show_default=False, help="Exact length of the longer side; the other follows the aspect.")]
FitOption = Annotated[Fit | None, typer.Option(
    "--fit", show_default="contain", help="With --width and --height: contain (inside, aspect kept), cover "
                                          "(fill, aspect kept, centre cropped) or stretch (exactly, aspect not kept).")]
StrengthOption = Annotated[float | None, typer.Option(
    "--strength", min=0.0, max=1.0, show_default=False,
    help="Denoise strength 0..1: the clean model (0) and the photo model (1) of the scale, blended (with -m, "
         "that model's pair).")]
BatchOption = Annotated[int | None, typer.Option(
    "--batch-size", min=1, show_default="automatic",
    help="Most equal-shaped tiles (or small images) per model call; default: as many as the memory bound allows, "
         "at most 64.")]
QualityOption = Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WebP quality.")]


class MetadataChoice(StrEnum):
    """What outputs carry from their sources (`upscale.encoding`)."""

    all = "all"
    no_location = "no-location"
    minimal = "minimal"


MetadataOption = Annotated[MetadataChoice, typer.Option(
    "--metadata", help="What outputs carry: all (EXIF, XMP, IPTC, ICC, sidecars), no-location (all but GPS "
                       "positions) or minimal (the colour profile only), e.g. for pictures going to the web.")]
PngCompressionOption = Annotated[
    int, typer.Option("--png-compression", min=0, max=9, help="PNG zlib level: 0 fastest, 9 smallest.")
]
def _memory_size(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


MaxMemoryOption = Annotated[
    int | None, typer.Option("--max-memory", parser=_memory_size, metavar="SIZE",
                             help="Plan each image to fit this much memory (e.g. 4G); default: what the machine, "
                                  "cgroup and address-space limits leave. Larger images are refused, not killed.")
]
ThreadsOption = Annotated[
    int | None, typer.Option("--threads", min=1, help="onnxruntime intra-op threads (default: all cores).")
]


def upscale_options(scale: float | None, tile: int | None, batch_size: int | None, width: int | None = None,
                    height: int | None = None, long_side: int | None = None, fit: Fit | None = None) -> UpscaleOptions:
    """The options of a run; a size request that cannot be met (or one given with --scale) is a usage error."""
    try:
        size = SizeRequest(width, height, long_side, fit) if (width or height or long_side or fit) else None
        return UpscaleOptions(scale, tile, batch_size, size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def describe_model(loaded: UpscaleModel | AutoModel) -> str:
    """The one line that says which model runs where (on stderr before a run)."""
    if isinstance(loaded, AutoModel):
        clean = loaded.clean.path.stem
        choice = (f"{clean} for clean pictures, {loaded.photo.path.stem} for degraded ones" if loaded.photo
                  else f"{clean} for every picture (no photo model at x{loaded.scale})")
        return f"model auto: {choice}, on {loaded.clean.device}"
    info = loaded.info
    note = f" ({loaded.note})" if getattr(loaded, "note", "") else ""
    if getattr(loaded, "blend", ""):
        return f"model {loaded.blend} x{info.scale} ({info.architecture}) on {loaded.device}{note}"
    guessed = "" if info.has_metadata else " (no metadata: scale probed, default tile overlap)"
    return f"model {loaded.path.name} x{info.scale} ({info.architecture}) on {loaded.device}{guessed}{note}"


def model_label(loaded: UpscaleModel | AutoModel) -> str:
    """The model's name as results tables show it: its file, or auto's pair."""
    if isinstance(loaded, AutoModel):
        return f"auto ({loaded.clean.path.stem}" + (f" / {loaded.photo.path.stem})" if loaded.photo else ")")
    return loaded.blend or str(loaded.path)


def open_model(model: str, device: str, threads: int | None, quiet: bool = False,
               factor: float | None = None, strength: float | None = None) -> UpscaleModel | AutoModel:
    """Load the model (or, for ``auto``, the pair for ``factor``; with ``strength``, the blend of its clean and
    photo pair) and say, in one line on stderr, what runs where."""
    loaded = ModelSpec(model, device, threads, factor, strength).load()
    if not quiet:
        note(describe_model(loaded))
    return loaded
