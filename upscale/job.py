"""One file: decode, upscale, encode, atomic write, and what became of it (a `FileResult`, never an exception).

Every engine runs files through these steps: `run_job` in order (`upscale image`, the Ray actors, the URI
path), and `pipeline.run_pipelined` on three threads that overlap decoding, inference and encoding. Whatever
fails, `failure_message` says it the same way for all of them, and the batch goes on.
"""

from __future__ import annotations

import json
import time
import traceback
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path, PurePath

from . import sidecar
from .auto import AutoModel, model_for
from .decoding import read_image
from .encoding import write_picture
from .errors import UNEXPECTED, ImageError, UpscaleError, debugging, first_line
from .files import Publication, write_atomic
from .images import DEFAULT_MAX_PIXELS, DEFAULT_PNG_COMPRESSION, Picture
from .memory import Budget, budget, image_need, refusal, return_large_blocks_to_the_system
from .model import UpscaleModel
from .picture import UpscaleOptions, upscale_pictures


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
    max_memory: int | None = None
    """Plan for at most this many bytes (besides what the machine, cgroup and address-space limits allow)."""
    metadata: str = "all"
    """What outputs carry from their sources: ``all``, ``no-location`` or ``minimal`` (`encoding`)."""


class Status(StrEnum):
    """What became of one input file; the values are the report's words."""

    OK = "ok"
    SKIPPED = "skipped"  # its output exists (no --overwrite)
    FAILED = "failed"
    IGNORED = "ignored"  # not an image file extension
    NOT_ATTEMPTED = "not attempted"  # the run stopped before it (the output disk filled up)


@dataclass
class FileResult:
    """What happened to one input file (one row of the JSON report). Built by `new_result` (or the planner's
    verdicts) and changed only through its methods, whichever engine ran the file."""

    input: str
    output: str | None
    status: Status
    error: str | None = None
    input_size: tuple[int, int] | None = None
    output_size: tuple[int, int] | None = None
    output_bytes: int | None = None
    seconds: float = 0.0
    """This file's own work: decode + upscale + write (files overlap in a pipeline: the run's wall time is in the
    report's context, not a sum of these)."""
    decode_seconds: float = 0.0
    upscale_seconds: float = 0.0
    write_seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)
    model: str | None = None  # with --model auto: the model chosen for this file
    model_reason: str | None = None  # and why (upscale.auto.decide)
    traceback: str | None = None
    """For an unexpected error (a bug, ours or a library's, met on this file): where it was raised, for a report."""

    def fail(self, error: str, details: str | None = None) -> None:
        """The file failed with ``error`` (one line): no output came of it."""
        self.status, self.error, self.output_size, self.output_bytes = Status.FAILED, error, None, None
        self.traceback = details

    def fail_by(self, exc: BaseException, step: str, output: PurePath | str | None = None) -> None:
        """The file failed because ``step`` raised ``exc``: its one-line cause, and the traceback when it was not
        an expected failure (`failure_message`)."""
        self.fail(failure_message(exc, step, output), None if is_expected(exc, step) else traceback_of(exc))

    def upscaled(self, size: tuple[int, int], warnings: list[str], chosen: str, why: str | None) -> None:
        """The upscale step's outcome: the output's size, the decoder's warnings, and with ``--model auto`` the
        model chosen and ``why`` (None: no choice was made)."""
        self.output_size = size
        if why is not None:
            self.model, self.model_reason = chosen, why
        self.warnings += warnings

    def wrote(self, size: int, notes: list[str]) -> None:
        """The write step's outcome: bytes written and what the format could not hold."""
        self.output_bytes = size
        self.warnings += notes

    def timed(self, decode: float, upscale: float, write: float) -> None:
        """Each step's own seconds, and their sum as the file's."""
        self.decode_seconds, self.upscale_seconds, self.write_seconds = decode, upscale, write
        self.seconds = decode + upscale + write


@dataclass(frozen=True)
class Job:
    """One file to upscale. Paths are local (`Path`) or inside an object store's filesystem (`PurePosixPath`);
    ``size`` is the header's (width, height), None where headers are not read before running (object stores)."""

    input: PurePath
    output: PurePath
    output_format: str
    size: tuple[int, int] | None = None
    deep: bool = False  # 16-bit samples, from the header
    note: str | None = None  # said in the result's warnings (why an existing output is redone)

    def need(self, factor: float) -> int | None:
        """Predicted bytes to upscale this file by ``factor`` (`upscale.memory`); None without a header size."""
        return image_need(self.size, factor, self.deep, self.output_format) if self.size else None

    @property
    def pixels(self) -> int | None:
        return self.size[0] * self.size[1] if self.size else None


def new_result(job: Job) -> FileResult:
    """The result a job starts from (ok until a step fails), with the job's note as its first warning."""
    return FileResult(str(job.input), str(job.output), Status.OK, input_size=job.size,
                      warnings=[job.note] if job.note else [])


def is_expected(exc: BaseException, step: str) -> bool:
    """Whether ``exc`` is a failure a user can cause and a rule names (a bad file, a full disk, too little memory)."""
    return isinstance(exc, UpscaleError | MemoryError) or (isinstance(exc, OSError) and step == "write")


def traceback_of(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def failure_message(exc: BaseException, step: str, output: PurePath | str | None = None) -> str:
    """The one-line cause of a failure in ``step`` (decode, upscale or write), for reports; a write failure names
    the ``output`` it could not write (the error line itself names the input). Whatever else a file raises is one
    line too, marked unexpected; only KeyboardInterrupt and SystemExit pass (and everything, with
    ``UPSCALE_DEBUG=1``)."""
    if not is_expected(exc, step):
        if not isinstance(exc, Exception) or debugging():
            raise exc
        return f"{UNEXPECTED}: {first_line(exc)}"
    if isinstance(exc, ImageError):
        return exc.cause
    if isinstance(exc, UpscaleError):  # e.g. the model failed on this picture (`model.ModelRunError`)
        return str(exc)
    if isinstance(exc, MemoryError):  # what the prediction let through did not fit after all
        doing = {"decode": "decoding", "upscale": "upscaling", "write": "encoding"}[step]
        return (f"out of memory while {doing}: the image needs more than this process could get; try a smaller "
                "--scale, or --max-memory below the real limit so images are planned to fit")
    return f"cannot write {output or 'the output'}: {exc.strerror or exc}"  # an OSError while writing


def factor_of(job: Job, options: UpscaleOptions, model_scale: int) -> float:
    """The factor the model runs at for this file (exact sizes make it per file), for memory predictions."""
    if job.size is None or options.size is None:
        return options.factor_for(model_scale)
    return max(1.0, options.target(model_scale, job.size).factor)


def check_fits(job: Job, factor: float, room: Budget) -> None:
    """Refuse, before decoding, a file predicted not to fit (ImageError naming the need and the limit)."""
    need = job.need(factor)
    if need is not None and need > room.available:
        raise ImageError(job.input, refusal(need, room, job.output_format))


def decode_job(job: Job, output: OutputOptions) -> Picture:
    """The picture, with the XMP sidecar beside it (where outputs carry metadata)."""
    picture = read_image(Path(job.input), output.max_pixels)
    if output.metadata != "minimal":
        picture.sidecar = sidecar.find(Path(job.input))
    return picture


def upscale_job(model: UpscaleModel | AutoModel, picture: Picture, options: UpscaleOptions, result: FileResult,
                on_pixels=None) -> Picture:
    """Upscale with the model (or, for ``auto``, the one chosen for this picture, noted in ``result``)."""
    return upscale_jobs(model, [picture], options, [result], on_pixels)[0]


def upscale_jobs(model: UpscaleModel | AutoModel, pictures: list[Picture], options: UpscaleOptions,
                 results: list[FileResult], on_pixels=None) -> list[Picture]:
    """`upscale_job` for several pictures: those that get the same model run together (`upscale_pictures`)."""
    chosen = [model_for(model, picture) for picture in pictures]
    upscaled: list[Picture | None] = [None] * len(pictures)
    for runner in dict.fromkeys(m for m, _ in chosen):
        mine = [i for i, (m, _) in enumerate(chosen) if m is runner]
        for i, out in zip(mine, upscale_pictures(runner, [pictures[i] for i in mine], options, on_pixels),
                          strict=True):
            upscaled[i] = out
    for (runner, why), result, out in zip(chosen, results, upscaled, strict=True):
        result.upscaled(out.size, out.warnings, runner.path.stem, why)  # the decoder's warnings, and the resize's
    return upscaled


def write_job(job: Job, picture: Picture, output: OutputOptions,
              publication: Publication | None = None) -> tuple[int, list[str]]:
    """Encode and write atomically (or staged for ``publication``); (bytes written, warnings about what the format
    could not hold)."""
    written, notes = write_picture(Path(job.output), picture, job.output_format, output.quality,
                                   output.png_compression, publication, output.metadata)
    if picture.sidecar is not None:
        sidecar.write(picture.sidecar, Path(job.output), picture.size, output.metadata == "no-location")
    return written, notes


def write_timed(job: Job, picture: Picture, output: OutputOptions) -> tuple[int, list[str], float]:
    """`write_job`, and the seconds it took (on whichever thread runs it)."""
    start = time.perf_counter()
    written, notes = write_job(job, picture, output)
    return written, notes, time.perf_counter() - start


def run_job(model: UpscaleModel | AutoModel, job: Job, options: UpscaleOptions, output: OutputOptions,
            on_pixels=None) -> FileResult:
    """Upscale one file, step after step; every failure becomes a failed result, never an exception."""
    result = new_result(job)
    step = "decode"
    seconds = {"decode": 0.0, "upscale": 0.0, "write": 0.0}
    start = time.perf_counter()
    return_large_blocks_to_the_system()
    try:
        check_fits(job, factor_of(job, options, model.scale), budget(output.max_memory))
        picture = decode_job(job, output)
        result.input_size = picture.size
        seconds["decode"], start, step = time.perf_counter() - start, time.perf_counter(), "upscale"
        upscaled = upscale_job(model, picture, options, result, on_pixels)
        seconds["upscale"], start, step = time.perf_counter() - start, time.perf_counter(), "write"
        result.wrote(*write_job(job, upscaled, output))
    except Exception as exc:  # one file's trouble, whatever it is, is that file's row
        result.fail_by(exc, step, job.output)
    seconds[step] = time.perf_counter() - start
    result.timed(**seconds)
    return result


def summarise(results: list[FileResult]) -> dict[str, int]:
    counts = {str(s): 0 for s in (Status.OK, Status.SKIPPED, Status.FAILED, Status.IGNORED)}
    for r in results:
        counts[str(r.status)] = counts.get(str(r.status), 0) + 1
    return counts


def write_report(path: Path, results: list[FileResult], context: dict[str, object]) -> None:
    """The --report JSON: the run's context, a summary and one entry per file."""
    files = [asdict(r) for r in sorted(results, key=lambda r: r.input)]
    doc = {"context": context, "summary": summarise(results), "files": files}
    write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())
