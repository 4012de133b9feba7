"""`upscale dir IN OUT`: upscale every image in a folder, never losing or corrupting a file.

Option parsing and progress only: the run is `upscale.runner.run_directory`.
"""

from __future__ import annotations

import os
from collections import Counter
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..dry_run import preview
from ..engines import RayOptions
from ..errors import UsageError
from ..formats import require
from ..images import DEFAULT_MAX_PIXELS, DEFAULT_PNG_COMPRESSION, FORMATS
from ..job import OutputOptions, Status
from ..planning import is_uri
from ..precision import choose as choose_precision
from ..runner import run_directory
from ..terminal import error_boundary, note, shown
from .common import (
    OUTPUT,
    RUN,
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
    describe_model,
    upscale_options,
    within,
)
from .progress import BatchProgress

FORMAT_ALIASES = {"jpeg": "jpg", "tif": "tiff", "heif": "heic"}
"""The other names people give these formats (as extensions do)."""


def _format_value(value: str) -> str:
    """``--format``'s value: a format we write, by its name or a usual alias (jpeg, tif, heif), any case."""
    name = value.strip().lower().lstrip(".")
    name = FORMAT_ALIASES.get(name, name)
    if name != "same" and name not in FORMATS:
        raise typer.BadParameter(f"{value!r}: use same, png, jpg (jpeg), webp, tiff (tif), avif, heic (heif) or jxl")
    return name


class Engine(str, Enum):
    local = "local"
    ray = "ray"


def _print_preview(input_dir: str, output_dir: str, model: str | None, device: str, options, output: OutputOptions,
                   strength: float | None, threads: int | None) -> None:
    """--dry-run: the model line, one line per file, and the counts; nothing is written."""
    if is_uri(input_dir) or is_uri(output_dir):
        raise UsageError("--dry-run plans local folders (object-store folders are listed when they run)")
    loaded, verdicts = preview(Path(input_dir), Path(output_dir), model, device, options, output, strength, threads)
    note(describe_model(loaded))
    for verdict in verdicts:
        print(shown(f"{verdict.action:8} {verdict.input} {verdict.detail}"), flush=True)
    counts = Counter(v.action for v in verdicts)
    note(f"dry run: {counts['upscale']} to upscale, {counts['skip']} skipped, {counts['ignore']} ignored, "
         f"{counts['refuse']} refused; nothing written")


CLUSTER = "Clusters and object stores"
EXAMPLES = """Examples: upscale dir photos/ out/ (2x, the clean or photo model per file);
upscale dir photos/ out/ -s 4 -r --report r.json; upscale dir photos/ out/ --long-side 3840 -f jpg;
upscale dir photos/ out/ --dry-run. GPUs: upscale devices."""


def dir_command(
    input_dir: Annotated[str, typer.Argument(help="Folder of pictures (or a URI).",
                                             show_default=False)],
    output_dir: Annotated[str, typer.Argument(help="Folder for the results (or a URI).")],
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
    recursive: Annotated[bool, typer.Option("--recursive", "-r", rich_help_panel=OUTPUT,
                                            help="Include sub-folders, mirrored.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", callback=_format_value, rich_help_panel=OUTPUT,
                                     show_default=False, help="same (default), png, jpg, webp, tiff, ...")] = "same",
    quality: QualityOption = 95,
    png_compression: PngCompressionOption = DEFAULT_PNG_COMPRESSION,
    metadata: MetadataOption = MetadataChoice.all,
    suffix: Annotated[str, typer.Option("--suffix", rich_help_panel=OUTPUT, help="Added to names, e.g. _x2.")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", rich_help_panel=OUTPUT,
                                            help="Replace existing outputs (default: skip).")] = False,
    report: Annotated[Path | None, typer.Option("--report", rich_help_panel=RUN,
                                                help="A JSON report, a row per file.")] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", callback=within(1), rich_help_panel=RUN,
                                            show_default=False, help="Refuse larger inputs (200 MP).")
                          ] = DEFAULT_MAX_PIXELS,
    max_memory: MaxMemoryOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", rich_help_panel=RUN, help="Only errors.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", rich_help_panel=RUN,
                                          help="Say what each file would become; write nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", rich_help_panel=RUN,
                                          help="A line per file beside the bar.")] = False,
    endpoint_url: Annotated[str | None, typer.Option(
        "--endpoint-url", rich_help_panel=CLUSTER, help="An S3-compatible endpoint.")] = None,
    engine: Annotated[Engine, typer.Option("--engine", rich_help_panel=CLUSTER, show_default=False, metavar="NAME",
                                           help="local (default), or ray: a Ray cluster.")] = Engine.local,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", rich_help_panel=CLUSTER, help="Cluster to join (default: RAY_ADDRESS).")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        "--ray-workers", callback=within(1), rich_help_panel=CLUSTER,
        help="Files at once (default: per GPU).")] = None,
    ray_cpus_per_worker: Annotated[float, typer.Option(
        "--ray-cpus-per-worker", callback=within(0.1), rich_help_panel=CLUSTER, show_default=False,
        help="CPUs (and threads) per file (1).")] = 1.0,
) -> None:
    """Upscale every image in INPUT_DIR into OUTPUT_DIR. Exit 0 if all succeeded, 1 if any failed."""
    with error_boundary():
        options = upscale_options(scale, tile, batch_size, width, height, long_side, fit)
        if fmt != "same":
            require(FORMATS[fmt])
        if endpoint_url:  # the variable every AWS SDK reads, pyarrow's S3 and the Ray workers' included
            os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        output = OutputOptions(fmt, quality, png_compression, suffix, overwrite, recursive, max_pixels, max_memory,
                               metadata.value)
        model = choose_precision(model, precision.value, device, blend=strength is not None)
        if dry_run:
            _print_preview(input_dir, output_dir, model, device, options, output, strength, threads)
            return
        run = run_directory(
            input_dir, output_dir, model, device=device, threads=threads, strength=strength,
            options=options, output=output,
            engine=engine.value, ray=RayOptions(ray_address, ray_workers, ray_cpus_per_worker), report=report,
            observer=(progress := BatchProgress(quiet, verbose)),
        )
    if not quiet or run.interrupted:
        line = ", ".join(f"{n} {k}" for k, n in run.counts.items() if n or k in ("ok", "failed"))
        note(f"{'interrupted: ' if run.interrupted else ''}{line} in {run.seconds:.1f} s")
    if run.interrupted and progress.left:
        note(f"{progress.left} left: run the same command to resume (finished files are skipped)")
    if run.interrupted:
        raise typer.Exit(130)
    if run.counts["failed"] or run.counts.get(Status.NOT_ATTEMPTED):
        raise typer.Exit(1)
