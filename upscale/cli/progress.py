"""Batch progress: one rich bar weighted by pixels on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..auto import AutoModel
from ..job import FileResult, Job, Status
from ..model import UpscaleModel
from ..terminal import error, note, out, shown, warning
from .common import describe_model


class BatchProgress:
    """A run's `runner.Observer` for the terminal: the model line, planning failures, then a bar (weighted by
    pixels, or by files where sizes are not known before running) or one plain line per file."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.total_files = self.files_done = self.pixels_done = 0
        self.began = time.perf_counter()
        self.bar: Progress | None = None

    def model_ready(self, model: UpscaleModel | AutoModel) -> None:
        if not self.quiet:
            note(describe_model(model))

    def planned(self, jobs: list[Job], known: list[FileResult]) -> None:
        refused = [r for r in known if r.status == Status.FAILED]  # found bad while planning: inputs all the same
        for r in refused:
            error(f"{r.input}: {r.error}")
        self.total_files = len(jobs) + len(refused)
        self.files_done = len(refused)
        self.began = time.perf_counter()
        if not self.quiet and out.is_terminal and jobs:
            self.bar = Progress(
                TextColumn("[bold]{task.fields[files]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
                console=out, transient=False,
            )
            self.task = self.bar.add_task("upscale", total=sum(j.pixels or 1 for j in jobs),
                                          files=self._files(), rate="", current="")
            self.bar.start()

    def _files(self) -> str:
        return f"{self.files_done}/{self.total_files} files"

    def closed(self) -> None:
        if self.bar:
            self.bar.stop()

    def started(self, job: Job) -> None:
        if self.bar:
            self.bar.update(self.task, current=shown(job.input.name))

    def pixels(self, count: int) -> None:
        self.pixels_done += count
        if self.bar:
            rate = self.pixels_done / 1e6 / max(time.perf_counter() - self.began, 1e-9)
            self.bar.update(self.task, advance=count, rate=f"{rate:.2f} MP/s in")

    def finished(self, job: Job, result: FileResult) -> None:
        self.files_done += 1
        if self.bar:
            self.bar.update(self.task, files=self._files())
        if result.status in (Status.FAILED, Status.NOT_ATTEMPTED):
            error(f"{result.input}: {result.error}")
        elif not self.quiet and not self.bar:
            chosen = f", {result.model}: {result.model_reason}" if result.model else ""
            print(shown(f"[{self.files_done}/{self.total_files}] {result.input} -> {result.output} "
                        f"({result.seconds:.2f} s{chosen})"), flush=True)
        if result.status == Status.OK and not self.quiet:
            for text in result.warnings:
                warning(f"{result.input}: {text}")
