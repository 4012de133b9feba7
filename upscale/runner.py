"""A whole folder, start to end: plan it, load the model, run it on the chosen engine, write the report.

`run_directory` is what `upscale dir` does, as a library call: the command line only parses options and draws
progress (through an `Observer`). The engines share everything but the running: the planning
(`planning.plan_directory` / `plan_remote`), the per-file step (`batch.run_job` and its parts) and the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .auto import AutoModel, load_auto
from .batch import FileResult, Job, OutputOptions, summarise, write_report
from .engine import UpscaleOptions
from .errors import UsageError
from .files import check_writable, sweep_temp_files
from .model import UpscaleModel, load_model
from .pipeline import run_pipelined
from .planning import is_uri, plan_directory, plan_remote, redo_incomplete
from .registry import resolve_model_path

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # the cluster to join (default: RAY_ADDRESS, else a local instance)
    workers: int | None = None  # model actors (default: one per GPU, or per group of CPUs)
    cpus_per_worker: float = 1.0


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


def load_for_run(model: str, device: str, threads: int | None, factor: float | None) -> UpscaleModel | AutoModel:
    """A model by name or path, or for ``auto`` the clean/photo pair of the scale ``factor`` needs."""
    return load_auto(factor, device, threads) if model == "auto" else load_model(model, device, threads)


def _as_uri(location: str) -> str:
    return location if is_uri(location) else Path(location).resolve().as_uri()


def run_directory(input_dir: str | Path, output_dir: str | Path, model: str | None = None, *, device: str = "auto",
                  threads: int | None = None, options: UpscaleOptions | None = None,
                  output: OutputOptions | None = None, engine: str = "local", ray: RayOptions | None = None,
                  report: Path | None = None, observer: Observer | None = None) -> FolderRun:
    """Upscale every image of ``input_dir`` into ``output_dir``; returns every file's result and the context.

    ``model`` None is ``auto`` on the local engine (the clean or the photo model per file, `upscale.auto`) and
    the default model on Ray (whose actors hold one model). Raises UpscaleError (UsageError, DeviceError,
    ModelError) before any file runs when the run cannot start (an output folder or report that cannot be
    written included). Ctrl-C or
    SIGTERM (raised as KeyboardInterrupt) stops it after the running writes finish: the results so far come
    back with ``interrupted`` set, and the report is written all the same.
    """
    options, output, ray = options or UpscaleOptions(), output or OutputOptions(), ray or RayOptions()
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}: use local or ray")
    input_dir, output_dir = str(input_dir), str(output_dir)
    uris = None
    if is_uri(input_dir) or is_uri(output_dir):
        if engine != "ray":
            raise UsageError("object-store URIs need --engine ray")
        uris = (_as_uri(input_dir), _as_uri(output_dir))
        jobs, results = plan_remote(*uris, output)
    else:
        jobs, results = plan_directory(Path(input_dir), Path(output_dir), output)
    model = model or ("default" if engine == "ray" else "auto")
    if engine == "ray":
        from .ray_engine import import_ray, run_on_ray

        if model == "auto":
            raise UsageError("--model auto runs with --engine local only; name a model for --engine ray")
        import_ray()  # a missing extra is a clear error before any work
        model_path, device_name, model_scale = str(resolve_model_path(model)), device, None
    else:
        loaded = load_for_run(model, device, threads, options.factor)
        model_path = "auto" if isinstance(loaded, AutoModel) else str(loaded.path)
        device_name, model_scale = str(loaded.device), loaded.scale
        if observer:
            observer.model_ready(loaded)
    factor = options.factor or model_scale  # on Ray without --scale the model's scale is its actors' to know
    if uris is None and factor and not output.overwrite:
        jobs, results = redo_incomplete(jobs, results, factor)
    # Before any image: an output folder or report that cannot be written is one refusal, not one per file
    # after all the work (after the model, so that a model or device refusal leaves no folder behind).
    if uris is None:
        check_writable(Path(output_dir), "the output folder")
        # what writes killed in an earlier run left (hidden temporaries, never under a final name): gone now,
        # whenever the kill landed
        sweep_temp_files({Path(r.output).parent for r in [*results, *jobs] if r.output is not None})
    if report is not None:
        if report.is_dir():
            raise UsageError(f"{report}: the report path is a folder")
        check_writable(report.parent, "the report's folder")
    if observer:
        observer.planned(jobs, results)

    def finished(job: Job, result: FileResult) -> None:
        results.append(result)
        if observer:
            observer.finished(job, result)

    started = time.perf_counter()
    interrupted = False
    try:
        if engine == "ray":
            def finished_with_pixels(job: Job, result: FileResult) -> None:
                if observer:
                    observer.pixels(job.pixels or 1)
                finished(job, result)

            run_on_ray(model_path, device, threads, jobs, options, output, finished_with_pixels,
                       ray.address, ray.workers, ray.cpus_per_worker, uris)
        else:
            run_pipelined(loaded, jobs, options, output, finished, observer.started if observer else None,
                          observer.pixels if observer else None)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if observer:
            observer.closed()
    seconds = time.perf_counter() - started
    context = {"input": input_dir, "output": output_dir, "model": model_path, "engine": engine,
               "device": device_name, "scale": options.factor or model_scale, "tile": options.tile,
               "seconds": round(seconds, 3), "interrupted": interrupted}
    if report:
        write_report(report, results, context)
    return FolderRun(results, context, interrupted, seconds, summarise(results))
