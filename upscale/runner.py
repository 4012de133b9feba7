"""A whole folder, start to end: plan it, load the model, run it on the chosen engine, write the report.

`run_directory` is what `upscale dir` does, as a library call: the command line only parses options and draws
progress (through an `Observer`). It plans (`planning.plan_directory` / `plan_remote`), hands the jobs to an
engine (`engines.make_engine`: this process or a Ray cluster, each running the same per-file step, `job.run_job`)
and writes the report; it never asks which engine it has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .auto import AutoModel
from .engines import ENGINES, ModelSpec, RayOptions, make_engine
from .errors import UsageError, first_line
from .files import check_writable, sweep_temp_files
from .images import incomplete_output
from .job import FileResult, Job, OutputOptions, new_result, summarise, traceback_of, write_report
from .model import UpscaleModel
from .picture import UpscaleOptions
from .planning import check_remote_output, is_uri, plan_directory, plan_remote, redo_incomplete

__all__ = ["ENGINES", "FolderRun", "Observer", "RayOptions", "run_directory"]


class Observer(Protocol):
    """What a front end sees of a run, in this order: the model (local engine), the plan, then files."""

    def model_ready(self, model: UpscaleModel | AutoModel) -> None: ...
    def planned(self, jobs: list[Job], known: list[FileResult]) -> None: ...
    def started(self, job: Job) -> None: ...
    def pixels(self, count: int) -> None: ...
    def finished(self, job: Job, result: FileResult) -> None: ...
    def closed(self) -> None: ...


@dataclass
class FolderRun:
    results: list[FileResult]
    context: dict[str, object]
    interrupted: bool = False
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def written_unreported(jobs: list[Job], results: list[FileResult], since: float,
                       size_of: Callable[[tuple[int, int]], tuple[int, int]]) -> list[FileResult]:
    """Rows for outputs that an interrupted run finished but never reported (the interrupt landed between a
    file's rename and its row): complete, of the right size, written since the run began. The report then lists
    every file on disk, wherever the interrupt fell."""
    reported = {r.input for r in results}
    found = []
    for job in jobs:
        if str(job.input) in reported or is_uri(str(job.output)) or job.size is None:
            continue
        path, size = Path(job.output), size_of(job.size)
        try:
            written = path.stat()
        except OSError:
            continue
        if written.st_mtime >= since - 1 and incomplete_output(path, size) is None:
            result = new_result(job)
            result.upscaled(size, ["written as the run was interrupted"], "", None)
            result.wrote(written.st_size, [])
            found.append(result)
    return found


def _as_uri(location: str) -> str:
    return location if is_uri(location) else Path(location).resolve().as_uri()


def _check_destinations(local_output: Path | None, planned: list[Job | FileResult], report: Path | None) -> None:
    """Before any image: an output folder or report that cannot be written is one refusal, not one per file
    after all the work (called after the model loads, so that a model or device refusal leaves no folder behind).
    What writes killed in an earlier run left (hidden temporaries, never under a final name) goes now, whenever
    the kill landed."""
    if local_output is not None:
        check_writable(local_output, "the output folder")
        sweep_temp_files({Path(r.output).parent for r in planned if r.output is not None})
    if report is not None:
        if report.is_dir():
            raise UsageError(f"{report}: the report path is a folder")
        check_writable(report.parent, "the report's folder")


def run_directory(input_dir: str | Path, output_dir: str | Path, model: str | None = None, *, device: str = "auto",
                  strength: float | None = None,
                  threads: int | None = None, options: UpscaleOptions | None = None,
                  output: OutputOptions | None = None, engine: str = "local", ray: RayOptions | None = None,
                  report: Path | None = None, observer: Observer | None = None) -> FolderRun:
    """Upscale every image of ``input_dir`` into ``output_dir``; returns every file's result and the context.

    ``model`` None is ``auto``: the clean or the photo model per file (`upscale.auto`), on every engine.
    Raises UpscaleError (UsageError, DeviceError, ModelError) before any file runs when the run cannot start
    (an output folder or report that cannot be written included). Ctrl-C or SIGTERM (raised as
    KeyboardInterrupt) stops it after the running writes finish: the results so far come
    back with ``interrupted`` set, and the report is written all the same.
    """
    options, output = options or UpscaleOptions(), output or OutputOptions()
    input_dir, output_dir = str(input_dir), str(output_dir)
    uris = (_as_uri(input_dir), _as_uri(output_dir)) if is_uri(input_dir) or is_uri(output_dir) else None
    spec = ModelSpec(model or "auto", device, threads, options.factor, strength)
    runner = make_engine(engine, spec, options, output, ray, uris)  # refusals before any listing
    if uris is not None:
        jobs, results = plan_remote(*uris, output)
        check_remote_output(uris[1])
    else:
        jobs, results = plan_directory(Path(input_dir), Path(output_dir), output)
    loaded = runner.load()
    model_path = "auto" if isinstance(loaded, AutoModel) else (loaded.blend or str(loaded.path))
    if observer:
        observer.model_ready(loaded)
    if uris is None and not output.overwrite:
        jobs, results = redo_incomplete(jobs, results, lambda size: options.target(loaded.scale, size).size)
    _check_destinations(None if uris else Path(output_dir), [*results, *jobs], report)
    if observer:
        observer.planned(jobs, results)

    def finished(job: Job, result: FileResult) -> None:
        results.append(result)
        if observer:
            observer.finished(job, result)

    started, wall_start = time.perf_counter(), time.time()
    interrupted, failure = False, None
    try:
        runner.run(jobs, finished, observer.started if observer else None, observer.pixels if observer else None)
    except KeyboardInterrupt:
        interrupted = True
        results += written_unreported(jobs, results, wall_start, lambda size: options.target(loaded.scale, size).size)
    except Exception as exc:  # outside any file (the engine itself): the report still says what was done
        failure = exc
    finally:
        if observer:
            observer.closed()
    seconds = time.perf_counter() - started
    context = {"input": input_dir, "output": output_dir, "model": model_path, "engine": runner.name,
               "device": str(loaded.device) if runner.name == "local" else device,
               "scale": options.factor or loaded.scale, "tile": options.tile, "seconds": round(seconds, 3),
               "interrupted": interrupted}
    if failure is not None:
        context["error"] = f"the run stopped: {first_line(failure)}"
        context["traceback"] = traceback_of(failure)
    if report:
        write_report(report, results, context)
    if failure is not None:
        raise failure
    return FolderRun(results, context, interrupted, seconds, summarise(results))
