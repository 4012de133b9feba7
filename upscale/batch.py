"""Whole folders: find the inputs, name the outputs, upscale each file, and account for every one.

`plan_directory` decides everything up front (which files, which output names, what to skip) from
file headers alone, so progress can be weighted by pixels and naming problems surface before any
work. `run_job` then does one file (`pipeline.run_pipelined` overlaps many); a bad file becomes a
failed result and the batch goes on. Outputs are written atomically (see `images.write_atomic`).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from PIL import Image

from .auto import AutoModel, model_for
from .engine import UpscaleOptions, upscale_picture
from .errors import ImageError, UpscaleError
from .images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_PNG_COMPRESSION,
    EXTENSIONS,
    TEMP_SUFFIX,
    encode,
    output_format,
    probe_header,
    read_image,
    write_atomic,
)
from .model import UpscaleModel


@dataclass(frozen=True)
class OutputOptions:
    """Where and how outputs are written."""

    format: str = "same"
    """same, png, jpg, webp or tiff."""
    quality: int = 95
    """JPEG/WebP quality."""
    png_compression: int = DEFAULT_PNG_COMPRESSION
    """zlib level 0-9 for PNG."""
    suffix: str = ""
    """Added to each output's stem, e.g. ``_x2``."""
    overwrite: bool = False
    """Replace existing outputs instead of skipping them."""
    recursive: bool = False
    """Descend into sub-folders and mirror them under the output folder."""
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass
class FileResult:
    """What happened to one input file (one row of the JSON report)."""

    input: str
    output: str | None
    status: str  # ok | skipped | failed | ignored
    error: str | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    output_bytes: int | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    model: str | None = None  # with --model auto: the model chosen for this file
    model_reason: str | None = None  # and why (upscale.auto.decide)


@dataclass(frozen=True)
class Job:
    input: Path
    output: Path
    size: tuple[int, int]
    output_format: str

    @property
    def pixels(self) -> int:
        return self.size[0] * self.size[1]


def image_extensions() -> set[str]:
    """Lower-case extensions Pillow can open."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def discover_inputs(in_dir: Path, out_dir: Path, recursive: bool) -> tuple[list[Path], list[Path]]:
    """(candidate images, other files) under ``in_dir``, sorted, never looking inside ``out_dir``.

    Hidden files and our own temporary files are not inputs.
    """
    out_resolved = out_dir.resolve()
    known = image_extensions()
    images: list[Path] = []
    others: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        root_path = Path(root)
        dirs[:] = sorted(
            d for d in dirs
            if recursive and not d.startswith(".") and (root_path / d).resolve() != out_resolved
        )
        for name in sorted(files):
            if name.startswith(".") or name.endswith(TEMP_SUFFIX):
                continue
            path = root_path / name
            (images if path.suffix.lower() in known else others).append(path)
    return images, others


def output_name(relative: Path, fmt: str, suffix: str) -> Path:
    """``relative`` renamed for format ``fmt``: the source extension is kept when it already names
    the format (``.jpeg`` stays), else replaced, never doubled."""
    extensions = EXTENSIONS[fmt]
    ext = relative.suffix if relative.suffix.lower() in extensions else extensions[0]
    return relative.with_name(relative.stem + suffix + ext)


def plan_directory(in_dir: Path, out_dir: Path, options: OutputOptions) -> tuple[list[Job], list[FileResult]]:
    """Jobs to run, and results already known (ignored files, unreadable headers, skips, clashes)."""
    if not in_dir.is_dir():
        raise UpscaleError(f"{in_dir}: input folder does not exist or is not a folder")
    if in_dir.resolve() == out_dir.resolve() and not options.suffix:
        raise UpscaleError(f"{out_dir}: output folder is the input folder; give --suffix so no input is replaced")
    images, others = discover_inputs(in_dir, out_dir, options.recursive)
    known: list[FileResult] = [FileResult(str(p), None, "ignored", "not an image file extension") for p in others]
    jobs: list[Job] = []
    claimed: dict[Path, Path] = {}
    for path in images:
        try:
            size, source_format = probe_header(path)
        except ImageError as exc:
            known.append(FileResult(str(path), None, "failed", exc.cause))
            continue
        fmt = output_format(options.format, source_format)
        target = out_dir / output_name(path.relative_to(in_dir), fmt, options.suffix)
        key = target.resolve()
        if key in claimed:
            known.append(FileResult(str(path), str(target), "failed", f"output name clashes with {claimed[key]}"))
            continue
        claimed[key] = path
        jobs.append(Job(path, target, size, fmt))
    # With IN == OUT (and a suffix), earlier outputs sit among the inputs: never upscale them again.
    jobs = [j for j in jobs if j.input.resolve() not in claimed or claimed[j.input.resolve()] == j.input]
    runnable = []
    for job in jobs:
        if job.output.exists() and not options.overwrite:
            known.append(FileResult(str(job.input), str(job.output), "skipped", None, job.size))
        else:
            runnable.append(job)
    return runnable, known


def run_job(model: UpscaleModel | AutoModel, job: Job, upscale: UpscaleOptions, output: OutputOptions,
            on_pixels=None) -> FileResult:
    """Upscale one file; every expected failure becomes a failed result, never an exception."""
    start = time.perf_counter()
    result = FileResult(str(job.input), str(job.output), "ok", input_size=job.size if job.pixels else None)
    try:
        picture = read_image(job.input, output.max_pixels)
        result.input_size = picture.size
        chosen, why = model_for(model, picture)
        if why is not None:
            result.model, result.model_reason = chosen.path.stem, why
        upscaled = upscale_picture(chosen, picture, upscale, on_pixels)
        data, notes = encode(upscaled, job.output_format, output.quality, output.png_compression)
        write_atomic(job.output, data)
        result.output_size = upscaled.size
        result.output_bytes = len(data)
        result.warnings = [*picture.warnings, *notes]
    except ImageError as exc:
        result.status, result.error = "failed", exc.cause
    except MemoryError:
        result.status, result.error = "failed", "out of memory (try a smaller --tile)"
    except OSError as exc:
        result.status, result.error = "failed", f"cannot write output: {exc.strerror or exc}"
    result.seconds = time.perf_counter() - start
    return result


def summarise(results: list[FileResult]) -> dict[str, int]:
    counts = {"ok": 0, "skipped": 0, "failed": 0, "ignored": 0}
    for r in results:
        counts[r.status] += 1
    return counts


def write_report(path: Path, results: list[FileResult], context: dict[str, object]) -> None:
    """The --report JSON: the run's context, a summary and one entry per file."""
    files = [asdict(r) for r in sorted(results, key=lambda r: r.input)]
    doc = {"context": context, "summary": summarise(results), "files": files}
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())
