"""`upscale dir --engine ray`: the same per-file step, run by Ray tasks on a cluster's workers.

Only jobs travel (paths and a few header numbers, never pixels): each task decodes, upscales (choosing the model
per file for ``--model auto``, as locally), encodes and writes its own file with `job.run_job`, the step every
engine runs, so names, formats, skip-existing, bad-file reports and the JSON report are the local engine's. Each
worker process loads the run's model once (`ModelSpec`) and keeps it for the next files.

Plain tasks rather than Ray Data's actor pools: a file whose worker or node is lost comes back here as a lost
task, and is run again (up to `ATTEMPTS` times) with a warning in its report row saying so; a rerun rewrites the
same file atomically, so a lost worker leaves nothing truncated or duplicated under a final name. Paths must be
visible to every worker (a shared filesystem), or be object-store URIs (`remote`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..auto import AutoModel
from ..device import parse_device
from ..errors import UsageError
from ..files import sweep_temp_files
from ..job import FileResult, Job, OutputOptions, new_result, run_job
from ..model import UpscaleModel
from ..picture import UpscaleOptions
from ..providers import GPU_KINDS
from .base import ModelSpec, OnResult, RayOptions

ATTEMPTS = 3
"""Runs of one file before it is reported failed because its workers kept being lost."""

_LOADED: dict[ModelSpec, UpscaleModel | AutoModel] = {}
"""The model of this worker process, by spec (a worker serves one run's files, or the next run's)."""


def upscale_files(spec: ModelSpec, jobs: list[Job], options: UpscaleOptions, output: OutputOptions,
                  uris: tuple[str, str] | None, rerun: bool = False) -> list[FileResult]:
    """The task: `run_job` on each job with this worker's model (loaded by its first task). A ``rerun`` (its
    first worker was lost) keeps an output that worker finished before it died, so nothing is written twice."""
    if spec not in _LOADED:
        _LOADED.clear()
        _LOADED[spec] = spec.load()
    model = _LOADED[spec]
    if uris is None:
        return [_finished_before(job, options, model.scale) or run_job(model, job, options, output) if rerun
                else run_job(model, job, options, output) for job in jobs]
    from ..planning import open_filesystem
    from ..remote import run_remote_job

    in_fs, out_fs = open_filesystem(uris[0])[0], open_filesystem(uris[1])[0]
    return [run_remote_job(model, in_fs, out_fs, job, options, output) for job in jobs]


def join(ray, address: str | None) -> None:
    """Start or join Ray; a failure is one line (`join_error`). Ray's core prints a warning a second while it
    retries (an unreachable or token-protected head: for about a minute): held back (unless RAY_LOG_TO_STDERR is
    set), since the one line says what went wrong."""
    try:
        with _held_stderr():
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
                     configure_logging=False)
    except (ValueError, ConnectionError, RuntimeError) as exc:
        raise UsageError(join_error(exc, address)) from None


def join_error(exc: BaseException, address: str | None) -> str:
    """The one line for a failed `ray.init`, naming the cause Ray buried in its chain where it is the token."""
    where = f"the Ray cluster at {address}" if address else "a local Ray instance"
    chain = f"{exc} {exc.__cause__ or ''} {exc.__context__ or ''}"
    if "InvalidAuthToken" in chain or "Unauthenticated" in chain:
        return (f"cannot join {where}: it asks for its authentication token (Ray's token authentication): set "
                "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token (the head's ~/.ray/auth_token)")
    return f"cannot start or join {where}: {str(exc).strip().splitlines()[-1][:200]}"


@contextlib.contextmanager
def _held_stderr():
    """File descriptor 2 into a temporary file for the duration (Ray's C++ core writes there directly)."""
    if os.environ.get("RAY_LOG_TO_STDERR"):
        yield
        return
    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def folders_seen(input_file: str, marker: str) -> str | None:
    """Run on each node before any work: why this node cannot read the run's input or write its output folder
    (``marker``: a file the driver just made there, so a node writing a folder of its own does not pass), or
    None."""
    if not os.path.isfile(input_file):
        return f"cannot see {input_file}"
    folder = os.path.dirname(marker)
    if not os.path.isfile(marker):
        return f"does not share the output folder {folder}"
    try:
        probe = f"{marker}.{os.getpid()}"
        with open(probe, "wb"):
            pass
        os.unlink(probe)
    except OSError as exc:
        return f"cannot write {folder} ({exc.strerror or exc})"
    return None


def _finished_before(job: Job, options: UpscaleOptions, model_scale: int) -> FileResult | None:
    """The result of a file a lost worker had already written in full (the size this run makes), or None."""
    from ..errors import ImageError
    from ..images import probe_header
    from ..planning import unfinished_output

    target = Path(job.output)
    if not target.exists():
        return None
    try:
        if unfinished_output(Path(job.input), target, lambda size: options.target(model_scale, size).size):
            return None
    except ImageError:  # the input is now unreadable: let the step say so
        return None
    result = new_result(job)
    result.output_size, result.output_bytes = probe_header(target)[0], target.stat().st_size
    result.warnings.append("written in full by the worker that was lost: kept, not written again")
    return result


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("the ray engine needs Ray: pip install 'upscale[ray]'") from None
    return ray


@dataclass
class RayEngine:
    spec: ModelSpec
    options: UpscaleOptions
    output: OutputOptions
    ray: RayOptions = field(default_factory=RayOptions)
    uris: tuple[str, str] | None = None
    name: str = "ray"
    _payload: tuple[str, bytes, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        import_ray()  # a missing extra is a clear error before any work

    def load(self) -> UpscaleModel | AutoModel:
        """The driver's copy, on this machine's CPU: it checks the model (a bad file is one refusal, not one per
        file) and tells its scale; the workers load theirs on the requested device, from the bytes read now."""
        self._payload = self._to_ship()
        return replace(self.spec, device="cpu", threads=1).load()

    def _to_ship(self) -> tuple[str, bytes, str] | None:
        """(name, ONNX bytes, label) of a model other than the bundled ones, read (a .pth converted) once, here,
        when the run starts: it travels to the workers in the object store. None where workers need nothing."""
        from ..registry import bundled_models, resolve_model_path
        from ..strength import blended
        from ..untrusted import check_onnx_external_data

        if self.spec.strength is not None:
            return blended(self.spec.name, self.spec.strength, self.spec.factor)
        if self.spec.name in ("auto", "default") or self.spec.name in bundled_models():
            return None
        path = resolve_model_path(self.spec.name)
        data = path.read_bytes()
        if check_onnx_external_data(path, data):
            raise UsageError(f"{path}: its weights are in files beside it, which Ray workers on other machines "
                             "cannot read: save the model as one .onnx file for --engine ray")
        return str(path), data, ""

    def _worker_spec(self, ray) -> ModelSpec:
        """The spec the workers get: with the model's bytes in Ray's object store (one copy per node) where
        `_to_ship` read them."""
        if self._payload is None:
            return self.spec
        name, data, label = self._payload
        return replace(self.spec, name=name, shipped=ray.put(data), label=label)

    def _check_nodes_see_folders(self, ray, jobs: list[Job]) -> None:
        """Before any work, one probe task per node: every node that may run files must see IN and share OUT;
        else one refusal naming the node and the path."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        out = Path(jobs[0].output).parent
        out.mkdir(parents=True, exist_ok=True)
        marker = out / f".upscale-probe-{os.getpid()}"
        marker.touch()
        try:
            nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU")]
            probe = ray.remote(folders_seen)
            answers = {probe.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                n["NodeID"], soft=False)).remote(str(jobs[0].input), str(marker)): n for n in nodes}
            for ref, node in answers.items():
                why = ray.get(ref)
                if why:
                    raise UsageError(f"node {node.get('NodeManagerAddress', node['NodeID'])} {why}: with --engine "
                                     "ray, local folders must be on a filesystem every node shares (or use s3://)")
        finally:
            marker.unlink(missing_ok=True)

    def run(self, jobs: list[Job], on_result: OnResult, on_started: Callable[[Job], None] | None = None,
            on_pixels: Callable[[int], None] | None = None) -> None:
        if not jobs:
            return
        ray = import_ray()
        if not ray.is_initialized():
            join(ray, self.ray.address or os.environ.get("RAY_ADDRESS") or None)
        if self.uris is None:
            self._check_nodes_see_folders(ray, jobs)
        kind = parse_device(self.spec.device)[0]
        gpu = kind in GPU_KINDS
        cpus = self.ray.cpus_per_worker
        resources = ray.cluster_resources()
        if gpu and not resources.get("GPU"):
            raise UsageError(f"--device {self.spec.device}: the Ray cluster has no GPU resource (Ray finds NVIDIA "
                             "GPUs by itself; start nodes with other GPUs with ray start --num-gpus=N)")
        workers = self.ray.workers
        if workers is None:
            workers = int(resources.get("GPU", 1)) if gpu else max(1, int(resources.get("CPU", 1) // cpus))
        spec = replace(self._worker_spec(ray), device=kind if gpu else self.spec.device,  # each: its GPU
                       threads=self.spec.threads or max(1, int(cpus)))
        # an S3-compatible endpoint given here (--endpoint-url) reaches the workers as the standard variable
        passed = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL",) if k in os.environ}
        task = ray.remote(upscale_files).options(num_cpus=cpus, num_gpus=1 if gpu else 0, max_retries=0,
                                                 runtime_env={"env_vars": passed} if passed else None)
        waiting: deque[tuple[int, int]] = deque((i, 1) for i in range(len(jobs)))  # (job index, attempt)
        running: dict[object, tuple[int, int]] = {}
        finished: dict[int, FileResult] = {}
        reported = 0  # results go out in the jobs' order, as the local engine's do: the same lines, the same log
        try:
            while waiting or running:
                while waiting and len(running) < workers:
                    index, attempt = waiting.popleft()
                    running[task.remote(spec, [jobs[index]], self.options, self.output, self.uris,
                                        attempt > 1)] = index, attempt
                done, _ = ray.wait(list(running), num_returns=1)
                index, attempt = running.pop(done[0])
                try:
                    result = ray.get(done[0])[0]
                except ray.exceptions.RayTaskError as exc:  # the task raised outside `run_job`: this file's row
                    result = new_result(jobs[index])
                    result.fail_by(getattr(exc, "cause", None) or exc, "upscale")
                except ray.exceptions.RayError as exc:  # the worker, its node or the object was lost
                    if attempt < ATTEMPTS:
                        waiting.appendleft((index, attempt + 1))
                        continue
                    result = new_result(jobs[index])
                    result.fail(f"its worker was lost {attempt} times ({type(exc).__name__})")
                if attempt > 1:
                    result.warnings.append(f"run {attempt} times: the worker running it was lost")
                finished[index] = result
                while reported in finished:
                    job = jobs[reported]
                    if on_started:
                        on_started(job)
                    if on_pixels:
                        on_pixels(job.pixels or 1)
                    on_result(job, finished.pop(reported))
                    reported += 1
        except KeyboardInterrupt:
            for ref in running:  # files not started stay undone; the ones writing finish atomically or not at all
                ray.cancel(ref)
            for index in sorted(finished):  # done on disk, held back only for the order: reported all the same
                on_result(jobs[index], finished[index])
            raise
        finally:
            if self.uris is None:
                sweep_temp_files({Path(job.output).parent for job in jobs})
