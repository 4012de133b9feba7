"""`upscale dir IN OUT`: upscale every image in a folder, never losing or corrupting a file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ..auto import AutoModel
from ..batch import FileResult, Job, OutputOptions, plan_directory, summarise, write_report
from ..engine import UpscaleOptions
from ..errors import UpscaleError
from ..images import DEFAULT_MAX_PIXELS, DEFAULT_PNG_COMPRESSION
from ..pipeline import run_pipelined
from ..ray_engine import _import_ray, run_on_ray
from ..registry import resolve_model_path
from ..remote import is_uri, plan_remote
from .common import (
    BatchOption,
    DeviceOption,
    ModelOption,
    PngCompressionOption,
    QualityOption,
    ScaleOption,
    ThreadsOption,
    TileOption,
    error_boundary,
    open_model,
)
from .console import error, note
from .progress import BatchProgress

FORMATS = ["same", "png", "jpg", "webp", "tiff"]


def dir_command(
    input_dir: Annotated[str, typer.Argument(help="Folder of images to upscale (or, with --engine ray, a URI).",
                                             show_default=False)],
    output_dir: Annotated[str, typer.Argument(help="Folder for the results, created if needed (or a URI).")],
    model: ModelOption = "default",
    device: DeviceOption = "auto",
    scale: ScaleOption = None,
    tile: TileOption = None,
    batch_size: BatchOption = 4,
    threads: ThreadsOption = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Include sub-folders, mirrored.")] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="same, png, jpg, webp or tiff.")] = "same",
    quality: QualityOption = 95,
    png_compression: PngCompressionOption = DEFAULT_PNG_COMPRESSION,
    suffix: Annotated[str, typer.Option("--suffix", help="Appended to output names, e.g. _x2.")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (default: skip).")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write a per-file JSON report here.")] = None,
    max_pixels: Annotated[int, typer.Option("--max-pixels", min=1,
                                            help="Refuse larger images (decompression bombs).")] = DEFAULT_MAX_PIXELS,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local (this process) or ray (a Ray cluster).")] = "local",
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a local instance).")] = None,
    ray_workers: Annotated[int | None, typer.Option(
        "--ray-workers", min=1, help="Model actors (default: one per GPU, or per CPU group).")] = None,
    ray_cpus_per_worker: Annotated[float, typer.Option(
        "--ray-cpus-per-worker", min=0.1, help="CPUs (and onnxruntime threads) per model actor.")] = 1.0,
) -> None:
    """Upscale every image in INPUT_DIR into OUTPUT_DIR. Exit 0 if all succeeded, 1 if any failed."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if engine not in ("local", "ray"):
        raise typer.BadParameter("must be local or ray", param_hint="--engine")
    with error_boundary():
        output = OutputOptions(fmt, quality, png_compression, suffix, overwrite, recursive, max_pixels)
        uris = None
        if is_uri(input_dir) or is_uri(output_dir):
            if engine != "ray":
                raise UpscaleError("object-store URIs need --engine ray")
            uris = (_as_uri(input_dir), _as_uri(output_dir))
            jobs, results = plan_remote(*uris, output)
        else:
            jobs, results = plan_directory(Path(input_dir), Path(output_dir), output)
        options = UpscaleOptions(scale, tile, batch_size)
        if engine == "ray":
            if model == "auto":
                raise UpscaleError("--model auto runs with --engine local only; name a model for --engine ray")
            _import_ray()  # a missing extra is a clear error before any work
            model_path, device_name, model_scale = str(resolve_model_path(model)), device, None
        else:
            loaded = open_model(model, device, threads, quiet, scale)
            runs = loaded.clean if isinstance(loaded, AutoModel) else loaded
            model_path = "auto" if isinstance(loaded, AutoModel) else str(loaded.path)
            device_name, model_scale = str(runs.device), loaded.scale
        for r in results:
            if r.status == "failed":
                error(f"{r.input}: {r.error}")
        started = time.perf_counter()
        interrupted = False
        with BatchProgress(jobs, quiet) as progress:

            def finished(job: Job, result: FileResult) -> None:
                results.append(result)
                progress.finished(job, result)

            try:
                if engine == "ray":
                    def finished_with_pixels(job: Job, result: FileResult) -> None:
                        progress.pixels(job.pixels)
                        finished(job, result)

                    run_on_ray(model_path, device, threads, jobs, options, output, finished_with_pixels,
                               ray_address, ray_workers, ray_cpus_per_worker, uris)
                else:
                    run_pipelined(loaded, jobs, options, output, finished, progress.start, progress.pixels)
            except KeyboardInterrupt:
                interrupted = True
        elapsed = time.perf_counter() - started
        _finish(results, report, elapsed, quiet, interrupted, {
            "input": str(input_dir), "output": str(output_dir), "model": model_path, "engine": engine,
            "device": device_name, "scale": scale or model_scale, "tile": tile,
        })


def _as_uri(location: str) -> str:
    return location if is_uri(location) else Path(location).resolve().as_uri()


def _finish(results: list[FileResult], report: Path | None, elapsed: float, quiet: bool, interrupted: bool,
            context: dict[str, object]) -> None:
    counts = summarise(results)
    context = {**context, "seconds": round(elapsed, 3), "interrupted": interrupted}
    if report:
        write_report(report, results, context)
    if not quiet or interrupted:
        line = ", ".join(f"{n} {k}" for k, n in counts.items() if n or k in ("ok", "failed"))
        note(f"{'interrupted: ' if interrupted else ''}{line} in {elapsed:.1f} s")
    if interrupted:
        raise typer.Exit(130)
    if counts["failed"]:
        raise typer.Exit(1)
