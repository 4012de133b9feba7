"""The local engine: this process. Local folders run through `pipeline.run_pipelined` (decoding and encoding
overlapped on threads); object-store folders (``s3://``...) through `remote.run_remote_job` on a few threads, so
that downloads and uploads overlap with the model."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..auto import AutoModel
from ..job import Job, OutputOptions
from ..model import UpscaleModel
from ..picture import UpscaleOptions
from ..pipeline import run_pipelined
from .base import ModelSpec, OnResult

TRANSFERS = 4
"""Object-store files in flight at once: their downloads and uploads wait on the network, not the CPU."""


@dataclass
class LocalEngine:
    spec: ModelSpec
    options: UpscaleOptions
    output: OutputOptions
    uris: tuple[str, str] | None = None
    name: str = "local"
    model: UpscaleModel | AutoModel | None = None

    def load(self) -> UpscaleModel | AutoModel:
        self.model = self.spec.load()
        return self.model

    def run(self, jobs: list[Job], on_result: OnResult, on_started: Callable[[Job], None] | None = None,
            on_pixels: Callable[[int], None] | None = None) -> None:
        assert self.model is not None, "load() first"
        if self.uris is None:
            run_pipelined(self.model, jobs, self.options, self.output, on_result, on_started, on_pixels)
            return
        from ..planning import open_filesystem
        from ..remote import run_remote_job

        in_fs, out_fs = open_filesystem(self.uris[0])[0], open_filesystem(self.uris[1])[0]
        pool = ThreadPoolExecutor(TRANSFERS, thread_name_prefix="upscale-transfer")
        futures = [pool.submit(run_remote_job, self.model, in_fs, out_fs, job, self.options, self.output)
                   for job in jobs]
        try:
            for job, future in zip(jobs, futures, strict=True):  # in the jobs' order, as every engine reports
                if on_started:
                    on_started(job)
                result = future.result()
                if on_pixels:
                    on_pixels(job.pixels or 1)
                on_result(job, result)
        finally:  # on Ctrl-C: files not started stay undone; uploads under way finish (each one PUT)
            pool.shutdown(wait=True, cancel_futures=True)
