"""`upscale image IN OUT`: one file, with the same engine and options as `upscale dir`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import UsageError
from ..formats import require
from ..images import DEFAULT_PNG_COMPRESSION, EXTENSIONS, probe_header
from ..job import Job, OutputOptions, run_job
from ..precision import choose as choose_precision
from ..terminal import error, error_boundary, note, warning
from .common import (
    BatchOption,
    DeviceOption,
    FitOption,
    HeightOption,
    LongSideOption,
    MaxMemoryOption,
    MetadataChoice,
    MetadataOption,
    ModelOption,
    PngCompressionOption,
    PrecisionChoice,
    PrecisionOption,
    QualityOption,
    ScaleOption,
    StrengthOption,
    ThreadsOption,
    TileOption,
    WidthOption,
    open_model,
    upscale_options,
)


def _format_for(path: Path) -> str:
    for fmt, extensions in EXTENSIONS.items():
        if path.suffix.lower() in extensions:
            return fmt
    raise UsageError(f"{path}: cannot tell the output format from the extension (use .png, .jpg, .webp, .tif, "
                     ".avif, .heic or .jxl)")


def _into_folder(input_file: Path, output_file: Path) -> Path:
    """OUT_FILE that is a folder means the input's name inside it, as ``cp`` does (PNG where we cannot write the
    input's format)."""
    if not output_file.is_dir():
        return output_file
    writable = any(input_file.suffix.lower() in extensions for extensions in EXTENSIONS.values())
    return output_file / (input_file.name if writable else f"{input_file.stem}.png")


def image_command(
    input_file: Annotated[Path, typer.Argument(help="Image to upscale.")],
    output_file: Annotated[Path, typer.Argument(help="Where to write it; the extension picks the format. A folder: "
                                                     "the input's name inside it.")],
    model: ModelOption = None,
    device: DeviceOption = "auto",
    scale: ScaleOption = None,
    width: WidthOption = None,
    height: HeightOption = None,
    long_side: LongSideOption = None,
    fit: FitOption = None,
    strength: StrengthOption = None,
    precision: PrecisionOption = PrecisionChoice.auto,
    tile: TileOption = None,
    batch_size: BatchOption = None,
    threads: ThreadsOption = None,
    quality: QualityOption = 95,
    png_compression: PngCompressionOption = DEFAULT_PNG_COMPRESSION,
    metadata: MetadataOption = MetadataChoice.all,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace OUTPUT_FILE if it exists.")] = False,
    max_memory: MaxMemoryOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
) -> None:
    """Upscale one image file."""
    with error_boundary():
        output_file = _into_folder(input_file, output_file)
        if output_file.exists() and not overwrite:
            raise UsageError(f"{output_file}: exists (use --overwrite to replace it)")
        fmt = _format_for(output_file)
        require(fmt)
        options = upscale_options(scale, tile, batch_size, width, height, long_side, fit)
        size, _, deep = probe_header(input_file)
        model = choose_precision(model or "auto", precision.value, device, blend=strength is not None)
        loaded = open_model(model, device, threads, quiet, scale, strength)
        output = OutputOptions(quality=quality, png_compression=png_compression, overwrite=True,
                               max_memory=max_memory, metadata=metadata.value)
        job = Job(input_file, output_file, fmt, size, deep)
        try:
            result = run_job(loaded, job, options, output)
        except KeyboardInterrupt:
            note("interrupted")
            raise typer.Exit(130) from None
        if result.status != "ok":
            error(f"{result.input}: {result.error}")
            raise typer.Exit(1)
        for text in result.warnings:
            warning(f"{input_file}: {text}")
        if not quiet:
            w, h = result.output_size or (0, 0)
            chosen = f", {result.model}: {result.model_reason}" if result.model else ""
            note(f"{input_file} -> {output_file} ({w}x{h}, {result.seconds:.2f} s{chosen})")
