"""What every `upscale` subcommand shares: option types and model loading (the error boundary and consoles are
`upscale.terminal`, shared with upscale-train and upscale-export)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from .. import precision
from ..auto import AutoModel
from ..engines import ModelSpec
from ..errors import UsageError
from ..memory import parse_size
from ..model import UpscaleModel
from ..picture import UpscaleOptions
from ..sizing import Fit, SizeRequest
from ..terminal import note


def within(low: float, high: float | None = None):
    """A callback that refuses values outside [low, high] (instead of typer's min/max, whose range would widen
    --help's middle column on every line)."""
    def check(value):
        if value is not None and (value < low or (high is not None and value > high)):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise typer.BadParameter(f"{value} is out of range: give a value {bound}")
        return value
    return check


MODEL, SIZE, OUTPUT, RUN = "Model", "Size", "Output", "Run"
"""--help's panels: which model runs where, how large outputs are, what is written, how the run goes."""

ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", show_default=False, rich_help_panel=MODEL,
    help="auto (default), a bundled name, .onnx, .pth.")]
DeviceOption = Annotated[str, typer.Option(
    "--device", "-d", show_default=False, rich_help_panel=MODEL,
    help="auto (default), cpu, cuda, webgpu, directml, coreml.")]
class PrecisionChoice(StrEnum):
    auto = "auto"
    fp32 = "fp32"
    int8 = "int8"


PrecisionOption = Annotated[PrecisionChoice, typer.Option(
    "--precision", show_default=False, rich_help_panel=MODEL,
    help="auto (default: int8 twin on CPUs with int8 dot products), fp32, int8.")]
TileOption = Annotated[int | None, typer.Option(
    "--tile", callback=within(0), rich_help_panel=RUN, help="Tile side in input pixels; 0: whole.")]
ScaleOption = Annotated[float | None, typer.Option(
    "--scale", "-s", callback=within(0.01), rich_help_panel=SIZE, help="Any factor; default: the model's own scale.")]
WidthOption = Annotated[int | None, typer.Option(
    "--width", callback=within(1), show_default=False, rich_help_panel=SIZE,
    help="Exact width (alone: height follows).")]
HeightOption = Annotated[int | None, typer.Option(
    "--height", callback=within(1), show_default=False, rich_help_panel=SIZE,
    help="Exact height (alone: width follows).")]
LongSideOption = Annotated[int | None, typer.Option(
    "--long-side", callback=within(1), show_default=False, rich_help_panel=SIZE, help="Exact longer side.")]
FitOption = Annotated[Fit | None, typer.Option(
    "--fit", show_default=False, metavar="MODE", rich_help_panel=SIZE,
    help="contain (default), cover or stretch.")]
StrengthOption = Annotated[float | None, typer.Option(
    "--strength", callback=within(0.0, 1.0), show_default=False, rich_help_panel=MODEL,
    help="Denoise 0..1: the clean (0) and photo (1) models blended.")]
BatchOption = Annotated[int | None, typer.Option(
    "--batch-size", callback=within(1), show_default=False, rich_help_panel=RUN, help="Most tiles per model call.")]
QualityOption = Annotated[int, typer.Option(
    "--quality", callback=within(1, 100), show_default=False, rich_help_panel=OUTPUT, help="1-100 (default 95).")]


class MetadataChoice(StrEnum):
    """What outputs carry from their sources (`upscale.encoding`)."""

    all = "all"
    no_location = "no-location"
    minimal = "minimal"


MetadataOption = Annotated[MetadataChoice, typer.Option(
    "--metadata", metavar="WHAT", show_default=False, rich_help_panel=OUTPUT,
    help="all (default), no-location or minimal.")]
PngCompressionOption = Annotated[int, typer.Option(
    "--png-compression", callback=within(0, 9), show_default=False, rich_help_panel=OUTPUT,
    help="0 fastest to 9 smallest (default 1).")]


def _memory_size(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


MaxMemoryOption = Annotated[int | None, typer.Option(
    "--max-memory", parser=_memory_size, metavar="SIZE", rich_help_panel=RUN,
    help="Plan images to fit this, e.g. 4G.")]
ThreadsOption = Annotated[int | None, typer.Option(
    "--threads", callback=within(1), rich_help_panel=RUN, help="onnxruntime threads (default: all cores).")]


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
    note = precision.describe(loaded.path.name) + note
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
