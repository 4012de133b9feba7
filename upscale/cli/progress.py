"""Batch progress: one rich bar weighted by pixels on a terminal, plain lines elsewhere, or nothing.

The bar is drawn on stderr, where every error and warning line goes too, so that rich prints those lines above
the bar instead of leaving stale copies of it in the scrollback."""

from __future__ import annotations

import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from ..auto import AutoModel
from ..job import FileResult, Job, Status
from ..model import UpscaleModel
from ..terminal import err, error, note, shown, warning
from .common import describe_model


class BatchProgress:
    """A run's `runner.Observer` for the terminal: the model line, planning failures, then a bar (weighted by
    pixels, or by files where sizes are not known before running) or one plain line per file."""

    def __init__(self, quiet: bool, verbose: bool = False) -> None:
        self.quiet, self.verbose = quiet, verbose and not quiet
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
        ignored = [r for r in known if r.status == Status.IGNORED]
        if ignored and not self.quiet:
            names = ", ".join(shown(r.input.rsplit("/", 1)[-1]) for r in ignored[:_NAMED])
            more = f" and {len(ignored) - _NAMED} more" if len(ignored) > _NAMED else ""
            note(f"ignored, not pictures: {names}{more}")
        self.total_files = len(jobs) + len(refused)
        self.files_done = len(refused)
        self.began = time.perf_counter()
        if not self.quiet and err.is_terminal and jobs:
            self.bar = Progress(
                TextColumn("[bold]{task.fields[files]}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                TextColumn("{task.fields[current]}"), console=err, transient=False,
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
            self.bar.update(self.task, advance=count, rate=f"{rate:.2f} MP/s")

    @property
    def left(self) -> int:
        """Files planned that have no result yet (after Ctrl-C: what a re-run does)."""
        return self.total_files - self.files_done

    def finished(self, job: Job, result: FileResult) -> None:
        self.files_done += 1
        if self.bar:  # a file that failed before its pixels were counted still counts as done
            counted = result.output_size is not None and result.status == Status.OK
            self.bar.update(self.task, files=self._files(), advance=0 if counted else (job.pixels or 1))
        if result.status in (Status.FAILED, Status.NOT_ATTEMPTED):
            error(f"{result.input}: {result.error}")
        elif self.verbose and self.bar:
            self.bar.console.print(shown(self._line(result)), markup=False, highlight=False)
        elif not self.quiet and not self.bar:
            print(shown(self._line(result)), flush=True)
        if result.status == Status.OK and not self.quiet:
            for text in result.warnings:
                warning(f"{result.input}: {text}")

    def _line(self, result: FileResult) -> str:
        chosen = f", {result.model}: {result.model_reason}" if result.model else ""
        return (f"[{self.files_done}/{self.total_files}] {result.input} -> {result.output} "
                f"({result.seconds:.2f} s{chosen})")


_NAMED = 5
"""Ignored files named on the terminal at most (the report lists them all)."""
