"""Object-store folders (``s3://``, ``gs://``, ``hdfs://``, ``file://`` ...) for the Ray engine.

Any URI that pyarrow's filesystems understand works, with the credentials the user has configured for them.
Planning follows `batch.plan_directory`: the same names, formats, skip-existing, clashes and ignored files;
only the image headers are not read in the driver (one request per object would be slow), so the output
format for ``--format same`` comes from the extension and progress counts files, not pixels.

A worker downloads one object to a private temporary folder, runs the ordinary `batch.run_job` on it
(decode, tile, infer, encode, atomic local write), then uploads the result. An upload is a single PUT,
which object stores publish all at once or not at all; on ``file://`` it is a write to a temporary name
and a rename. So a killed worker never leaves a truncated object under a final name.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image

from .batch import FileResult, Job, OutputOptions, image_extensions, output_name, run_job
from .engine import UpscaleOptions
from .errors import UpscaleError
from .images import TEMP_SUFFIX, output_format
from .model import UpscaleModel


def is_uri(text: str) -> bool:
    return "://" in text


def open_filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for ``uri``."""
    try:
        from pyarrow import fs
    except ImportError:
        raise UpscaleError("object-store URIs need pyarrow: pip install 'upscale[ray]'") from None
    try:
        return fs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as exc:
        raise UpscaleError(f"{uri}: {str(exc).splitlines()[0]}") from None


@dataclass(frozen=True)
class RemoteJob:
    """One object to upscale: paths inside the input and output filesystems."""

    input: str
    output: str
    output_format: str
    pixels: int = 1  # unknown before decoding: progress counts files


def plan_remote(in_uri: str, out_uri: str, options: OutputOptions) -> tuple[list[RemoteJob], list[FileResult]]:
    """Jobs and already-known results for a URI folder, with `plan_directory`'s semantics."""
    from pyarrow import fs as pafs

    in_fs, in_root = open_filesystem(in_uri)
    out_fs, out_root = open_filesystem(out_uri)
    in_root, out_root = in_root.rstrip("/"), out_root.rstrip("/")
    same_store = type(in_fs) is type(out_fs)
    if same_store and in_root == out_root and not options.suffix:
        raise UpscaleError(f"{out_uri}: output folder is the input folder; give --suffix so no input is replaced")
    try:
        infos = in_fs.get_file_info(pafs.FileSelector(in_root, recursive=options.recursive))
    except (FileNotFoundError, OSError) as exc:
        raise UpscaleError(f"{in_uri}: cannot list the input folder: {str(exc).splitlines()[0]}") from None
    known_ext = image_extensions()
    registered = Image.registered_extensions()
    jobs: list[RemoteJob] = []
    results: list[FileResult] = []
    claimed: dict[str, str] = {}
    for info in sorted(infos, key=lambda i: i.path):
        relative = PurePosixPath(info.path).relative_to(in_root)
        if info.type != pafs.FileType.File or any(part.startswith(".") for part in relative.parts):
            continue
        if same_store and (info.path + "/").startswith(out_root + "/") and out_root != in_root:
            continue  # OUT inside IN: never read our own outputs
        if relative.suffix.lower() not in known_ext:
            results.append(FileResult(_join(in_uri, relative), None, "ignored", "not an image file extension"))
            continue
        fmt = output_format(options.format, registered.get(relative.suffix.lower()))
        target = f"{out_root}/{output_name(relative, fmt, options.suffix)}"
        if target in claimed:
            results.append(FileResult(_join(in_uri, relative), target, "failed",
                                      f"output name clashes with {claimed[target]}"))
            continue
        claimed[target] = info.path
        jobs.append(RemoteJob(info.path, target, fmt))
    if same_store:  # IN == OUT with a suffix: earlier outputs are not inputs
        jobs = [j for j in jobs if j.input not in claimed or claimed[j.input] == j.input]
    existing = {i.path for i in out_fs.get_file_info([j.output for j in jobs]) if i.type != pafs.FileType.NotFound}
    runnable = []
    for job in jobs:
        if job.output in existing and not options.overwrite:
            results.append(FileResult(job.input, job.output, "skipped"))
        else:
            runnable.append(job)
    return runnable, results


def _join(uri: str, relative: PurePosixPath) -> str:
    return f"{uri.rstrip('/')}/{relative}"


def run_remote_job(model: UpscaleModel, in_fs, out_fs, job: RemoteJob, upscale: UpscaleOptions,
                   output: OutputOptions) -> FileResult:
    """Download, `run_job`, upload; every expected failure is a failed result."""
    from pyarrow import fs as pafs

    with tempfile.TemporaryDirectory(prefix="upscale-") as tmp:
        local_in = Path(tmp) / PurePosixPath(job.input).name
        local_out = Path(tmp) / "out" / PurePosixPath(job.output).name
        try:
            with in_fs.open_input_stream(job.input) as src:
                local_in.write_bytes(src.read())
        except OSError as exc:
            return FileResult(job.input, job.output, "failed", f"cannot download: {str(exc).splitlines()[0]}")
        result = run_job(model, Job(local_in, local_out, (0, 0), job.output_format), upscale, output)
        result.input, result.output = job.input, job.output
        if result.status != "ok":
            return result
        try:
            parent = str(PurePosixPath(job.output).parent)
            out_fs.create_dir(parent, recursive=True)
            if isinstance(out_fs, pafs.LocalFileSystem):
                temp = f"{parent}/.{PurePosixPath(job.output).name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
                with out_fs.open_output_stream(temp) as dst:
                    dst.write(local_out.read_bytes())
                out_fs.move(temp, job.output)
            else:
                with out_fs.open_output_stream(job.output) as dst:  # one PUT: all or nothing
                    dst.write(local_out.read_bytes())
        except OSError as exc:
            result.status, result.error = "failed", f"cannot upload: {str(exc).splitlines()[0]}"
        return result
