"""Object-store folders (``s3://``, ``gs://``, ``hdfs://``, ``file://`` ...) for the Ray engine: one file's trip.

Any URI that pyarrow's filesystems understand works, with the credentials the user has configured for them;
planning is `planning.plan_remote` (the same rules as a local folder). A worker downloads one object to a
private temporary folder, runs the ordinary per-file step `job.run_job` on it (decode, tile, infer, encode,
atomic local write), then uploads the result. An upload is a single PUT, which object stores publish all at
once or not at all; on ``file://`` it is a write to a temporary name and a rename. So a killed worker never
leaves a truncated object under a final name.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path, PurePosixPath

from .auto import AutoModel
from .errors import first_line
from .files import TEMP_SUFFIX
from .job import FileResult, Job, OutputOptions, Status, run_job
from .model import UpscaleModel
from .picture import UpscaleOptions


def run_remote_job(model: UpscaleModel | AutoModel, in_fs, out_fs, job: Job, options: UpscaleOptions,
                   output: OutputOptions) -> FileResult:
    """Download, `run_job`, upload; every expected failure is a failed result."""
    from pyarrow import fs as pafs

    source, target = str(job.input), str(job.output)
    with tempfile.TemporaryDirectory(prefix="upscale-") as tmp:
        local_in = Path(tmp) / job.input.name
        local_out = Path(tmp) / "out" / job.output.name
        try:
            with in_fs.open_input_stream(source) as src:
                local_in.write_bytes(src.read())
        except Exception as exc:  # a store's error of any kind is this file's
            return FileResult(source, target, Status.FAILED, f"cannot download: {first_line(exc)}")
        result = run_job(model, Job(local_in, local_out, job.output_format), options, output)
        result.input, result.output = source, target
        if result.status != Status.OK:
            return result
        try:
            parent = str(PurePosixPath(target).parent)
            if isinstance(out_fs, pafs.LocalFileSystem):  # object stores have no folders: no marker objects
                out_fs.create_dir(parent, recursive=True)
                temp = f"{parent}/.{job.output.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}"
                with out_fs.open_output_stream(temp) as dst:
                    dst.write(local_out.read_bytes())
                out_fs.move(temp, target)
            else:
                with out_fs.open_output_stream(target) as dst:  # one PUT: all or nothing
                    dst.write(local_out.read_bytes())
        except Exception as exc:
            result.fail(f"cannot upload: {first_line(exc)}")
        return result
