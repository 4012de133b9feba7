"""`upscale dir --engine ray`: the same jobs, run by a pool of model-holding actors on Ray Data.

Nothing here schedules: Ray Data distributes the rows, keeps one onnxruntime session per actor (one actor
per GPU, or per group of CPUs), and restarts actors and retries their tasks when a worker dies. Each row
runs `batch.run_job`, the single-machine code path (decode, tile, infer, encode, atomic write), so names,
formats, skip-existing, bad-file reports and the JSON report are identical; a retried row rewrites the
same file atomically, so a killed worker leaves nothing truncated or duplicated under a final name.
Paths must be visible to every worker (a shared filesystem).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from .batch import FileResult, Job, OutputOptions, run_job
from .engine import UpscaleOptions
from .errors import UsageError
from .files import sweep_temp_files
from .planning import open_filesystem
from .remote import run_remote_job


class RayUpscaler:
    """A Ray Data actor: loads the model once, then upscales the files named by each batch of rows."""

    def __init__(self, model: str, device: str, threads: int | None, options: dict, output: dict,
                 in_uri: str | None = None, out_uri: str | None = None) -> None:
        from .model import load_model

        self.model = load_model(model, device, threads)
        self.options = UpscaleOptions(**options)
        self.output = OutputOptions(**output)
        self.in_fs = open_filesystem(in_uri)[0] if in_uri else None
        self.out_fs = open_filesystem(out_uri)[0] if out_uri else None

    def __call__(self, rows: dict) -> dict:
        results: dict[str, list] = {"index": [], "result": []}
        for i, index in enumerate(rows["index"]):
            width, height = int(rows["width"][i]), int(rows["height"][i])
            if self.in_fs is not None:
                job = Job(PurePosixPath(rows["input"][i]), PurePosixPath(rows["output"][i]), str(rows["format"][i]))
                result = run_remote_job(self.model, self.in_fs, self.out_fs, job, self.options, self.output)
            else:
                job = Job(Path(rows["input"][i]), Path(rows["output"][i]), str(rows["format"][i]),
                          (width, height) if width else None)
                result = run_job(self.model, job, self.options, self.output)
            results["index"].append(int(index))
            results["result"].append(json.dumps(asdict(result)))
        return results


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise UsageError("the ray engine needs Ray: pip install 'upscale[ray]'") from None
    return ray


def run_on_ray(
    model: str,
    device: str,
    threads: int | None,
    jobs: list[Job],
    options: UpscaleOptions,
    output: OutputOptions,
    on_result: Callable[[Job, FileResult], None],
    address: str | None = None,
    workers: int | None = None,
    cpus_per_worker: float = 1.0,
    uris: tuple[str, str] | None = None,
) -> None:
    """Run ``jobs`` on Ray (a local instance unless ``address`` or RAY_ADDRESS names a cluster).

    ``jobs`` name local files, or, with ``uris``, paths inside the (input, output) folder URIs' filesystems.
    """
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address or os.environ.get("RAY_ADDRESS"), logging_level=logging.ERROR,
                 log_to_driver=False, include_dashboard=False, configure_logging=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # per-dataset INFO lines would break our progress
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # our own progress bar reports per file
    context.print_on_execution_start = False
    gpu = device.startswith("cuda")
    if workers is None:
        resources = ray.cluster_resources()
        workers = int(resources.get("GPU", 1)) if gpu else max(1, int(resources.get("CPU", 1) // cpus_per_worker))
    rows = [{"index": i, "input": str(j.input), "output": str(j.output), "format": j.output_format,
             "width": j.size[0] if j.size else 0, "height": j.size[1] if j.size else 0}  # 0: not known
            for i, j in enumerate(jobs)]
    if not rows:
        return
    # One block per file, made in the driver (no tasks that would compete with the actors for CPUs).
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
    results = dataset.map_batches(
        RayUpscaler, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker, num_gpus=1 if gpu else 0,
        fn_constructor_kwargs={"model": model, "device": device if not gpu else "cuda",
                               "threads": threads or max(1, int(cpus_per_worker)),
                               "options": asdict(options), "output": asdict(output),
                               "in_uri": uris[0] if uris else None, "out_uri": uris[1] if uris else None},
    )
    for row in results.iter_rows():
        job = jobs[int(row["index"])]
        data = json.loads(row["result"])
        for key in ("input_size", "output_size"):
            if data[key] is not None:
                data[key] = tuple(data[key])
        on_result(job, FileResult(**data))
    if uris is None:
        sweep_temp_files({Path(job.output).parent for job in jobs})
