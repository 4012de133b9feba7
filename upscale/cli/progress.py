"""Batch progress: one rich bar weighted by pixels on a terminal, plain lines elsewhere, or nothing."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..batch import FileResult, Job
from .console import error, out, warning


class BatchProgress:
    """Receives pixel counts per tile and one result per file; shows them as fits the output."""

    def __init__(self, jobs: list[Job], quiet: bool) -> None:
        self.total_files = len(jobs)
        self.files_done = 0
        self.pixels_done = 0
        self.quiet = quiet
        self.started = time.perf_counter()
        self.bar: Progress | None = None
        if not quiet and out.is_terminal and jobs:
            self.bar = Progress(
                TextColumn("[bold]{task.fields[files]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), TextColumn("{task.fields[current]}"),
                console=out, transient=False,
            )
            self.task = self.bar.add_task("upscale", total=sum(j.pixels for j in jobs) or 1,
                                          files=self._files(), rate="", current="")

    def _files(self) -> str:
        return f"{self.files_done}/{self.total_files} files"

    def __enter__(self) -> BatchProgress:
        if self.bar:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def start(self, job: Job) -> None:
        if self.bar:
            self.bar.update(self.task, current=job.input.name)

    def pixels(self, count: int) -> None:
        self.pixels_done += count
        if self.bar:
            rate = self.pixels_done / 1e6 / max(time.perf_counter() - self.started, 1e-9)
            self.bar.update(self.task, advance=count, rate=f"{rate:.2f} MP/s in")

    def finished(self, job: Job, result: FileResult) -> None:
        self.files_done += 1
        if self.bar:
            self.bar.update(self.task, files=self._files())
        if result.status == "failed":
            error(f"{result.input}: {result.error}")
        elif not self.quiet and not self.bar:
            chosen = f", {result.model}: {result.model_reason}" if result.model else ""
            print(f"[{self.files_done}/{self.total_files}] {result.input} -> {result.output} "
                  f"({result.seconds:.2f} s{chosen})", flush=True)
        if result.status == "ok" and not self.quiet:
            for text in result.warnings:
                warning(f"{result.input}: {text}")
