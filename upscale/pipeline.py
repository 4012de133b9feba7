"""A bounded three-stage pipeline for folders: decode ahead, infer in order, encode and write behind.

Decoding (Pillow) and encoding (zlib, libjpeg, libwebp) release the GIL, so they overlap with
onnxruntime's inference on the main thread. Each stage holds at most a few images, so memory stays
bounded however long the folder. Results come back in input order with the same semantics as
`job.run_job`, whose steps (`decode_job`, `upscale_job`, `write_job`, `FileResult.fail_by`) these are: every
failure is that file's failed result, never an exception.

On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into one by the CLI) no new work starts, the writes
already running finish (each is atomic), and the interrupt is re-raised after the finished results
have been handed to ``on_result``.
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .auto import AutoModel
from .files import Publication
from .images import Picture
from .job import (
    FileResult,
    Job,
    OutputOptions,
    Status,
    check_fits,
    decode_job,
    factor_of,
    new_result,
    upscale_jobs,
    write_job,
    write_timed,
)
from .memory import Budget, budget, return_large_blocks_to_the_system
from .model import UpscaleModel
from .picture import UpscaleOptions


class _DiskWasFull(Exception):
    """A write not started because an earlier one found the output disk full."""


class _Part:
    """One item of a task that wrote several files (`write_together`), seen as that file's own future."""

    def __init__(self, future: Future, index: int) -> None:
        self.future, self.index = future, index

    def result(self) -> tuple[int, list[str], float]:
        outcome = self.future.result()[self.index]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def cancel(self) -> bool:
        return self.future.cancel()

    def cancelled(self) -> bool:
        return self.future.cancelled()

    def exception(self) -> BaseException | None:
        failed = self.future.exception()
        if failed is not None:
            return failed
        outcome = self.future.result()[self.index]
        return outcome if isinstance(outcome, BaseException) else None


SMALL_PICTURE = 256 * 256
"""Input pixels up to which pictures are decoded ahead and upscaled several to a batch (one window each)."""
GROUP = 16
"""Most small pictures decoded ahead and upscaled together."""


def _small(job: Job) -> bool:
    return job.pixels is not None and job.pixels <= SMALL_PICTURE


def _decode(job: Job, output: OutputOptions, factor: float,
            room: Budget) -> tuple[Picture | None, Exception | None, float]:
    """(picture or None, what decoding raised or None, seconds this decode took on its thread)."""
    start = time.perf_counter()
    try:
        check_fits(job, factor, room)
        return decode_job(job, output), None, time.perf_counter() - start
    except Exception as exc:  # whatever it is, it is this file's: its row says so (`FileResult.fail_by`)
        return None, exc, time.perf_counter() - start


@dataclass(frozen=True)
class IOWorkers:
    """Threads that decode ahead of and encode behind the inference on the main thread."""

    decoders: int
    encoders: int

    @classmethod
    def for_device(cls, kind: str, cores: int | None = None) -> IOWorkers:
        """On a CPU, inference takes every core, and 1 decoder + 2 encoders are what overlaps with it without
        taking its cores (README, Performance). On a GPU the cores are free for I/O, which is then what a fast
        model waits on: a quarter of the cores decode, the rest but one (the main thread feeds the GPU) encode;
        decoding is the cheaper half (PNG inflate or JPEG decode vs deflate or JPEG encode)."""
        cores = cores or os.cpu_count() or 1
        if kind == "cpu":  # any GPU provider frees the cores alike
            return cls(1, 2)
        decoders = max(1, cores // 4)
        return cls(decoders, max(2, cores - decoders - 1))


def run_pipelined(
    model: UpscaleModel | AutoModel,
    jobs: list[Job],
    options: UpscaleOptions,
    output: OutputOptions,
    on_result: Callable[[Job, FileResult], None],
    on_start: Callable[[Job], None] | None = None,
    on_pixels: Callable[[int], None] | None = None,
    workers: IOWorkers | None = None,
) -> None:
    """Process ``jobs``; ``on_result`` receives each job's result, in input order. ``workers`` defaults to
    `IOWorkers.for_device` of the model's device. At most decoders + 1 images wait decoded and ``encoders``
    wait to be written (small pictures, up to `SMALL_PICTURE` pixels: `GROUP` of each, upscaled as one batch and
    published together), and the images in flight together stay within the memory this process may use
    (`upscale.memory`, measured when the run starts): a file predicted not to fit alone is refused before it
    is decoded, and the next file waits until enough of the others are written."""
    return_large_blocks_to_the_system()
    _Pipeline(model, jobs, options, output, on_result, on_start, on_pixels,
              workers or IOWorkers.for_device(model.device.kind)).run()


class _Pipeline:
    """One folder's run through the three stages: the queues between them and the rules that move files on."""

    def __init__(self, model: UpscaleModel | AutoModel, jobs: list[Job], options: UpscaleOptions,
                 output: OutputOptions, on_result: Callable[[Job, FileResult], None],
                 on_start: Callable[[Job], None] | None, on_pixels: Callable[[int], None] | None,
                 workers: IOWorkers) -> None:
        self.model, self.jobs, self.options, self.output = model, jobs, options, output
        self.on_result, self.on_start, self.on_pixels = on_result, on_start, on_pixels
        self.room = budget(output.max_memory)
        self.needs: dict[int, int] = {}  # id(job) -> predicted bytes, for the jobs in flight
        self.disk_full: list[str] = []  # the output whose write found no space left, once one has
        self.decode_ahead, self.write_behind = workers.decoders + 1, workers.encoders
        self.decoder = ThreadPoolExecutor(max_workers=workers.decoders, thread_name_prefix="upscale-decode")
        self.writer = ThreadPoolExecutor(max_workers=workers.encoders, thread_name_prefix="upscale-write")
        self.decoding: deque[tuple[Job, Future]] = deque()
        # (job, result, the write's future or None when the file already failed, decode + upscale seconds)
        self.writing: deque[tuple[Job, FileResult, Future | None, tuple[float, float]]] = deque()
        self.next_job = 0
        self.full = threading.Event()  # set by the write that found no space, before any other write starts
        self.full_at: list[str] = []

    def run(self) -> None:
        try:
            self._run_all()
        except KeyboardInterrupt:
            self._stop()
            raise
        finally:
            self.decoder.shutdown(wait=False, cancel_futures=True)
            self.writer.shutdown(wait=True)

    def _run_all(self) -> None:
        self.fill_decoder()
        while self.decoding and not self.disk_full:
            group = [self.decoding.popleft()]
            while _small(group[0][0]) and self.decoding and len(group) < GROUP and _small(self.decoding[0][0]):
                group.append(self.decoding.popleft())  # small pictures: decoded ahead, upscaled several to a batch
            self.fill_decoder()
            self.upscale_group(group)
            self.drain_writes(GROUP if _small(group[0][0]) else self.write_behind)  # a small group's writes go on
            while self.writing and self.next_job < len(self.jobs) and not self.decoding:  # memory holds the next
                self.drain_writes(len(self.writing) - 1)
                self.fill_decoder()
        self.drain_writes(0)
        if self.disk_full:  # every later write would fail too: stop, and say which files were not attempted
            for future in [f for _, f in self.decoding]:
                future.cancel()
            for job in [j for j, _ in self.decoding] + self.jobs[self.next_job:]:
                self.on_result(job, self.not_attempted(job))

    def _stop(self) -> None:
        """Ctrl-C: nothing new starts, running writes finish (each is atomic), and every finished write is
        reported: the report must say what is on disk."""
        for _, f in self.decoding:
            f.cancel()
        for _, _, f, _ in self.writing:
            if f is not None:
                f.cancel()
        self.decoder.shutdown(wait=True, cancel_futures=True)
        self.writer.shutdown(wait=True, cancel_futures=True)
        for job, result, f, seconds in self.writing:
            if f is not None and (f.cancelled() or not isinstance(f.exception(), type(None) | Exception)):
                continue  # never started, or stopped by the interrupt itself: nothing under its final name
            self.finish(job, result, f, seconds)

    def fill_decoder(self) -> None:
        """Start decoding the next files while the queue has room for them and memory for them beside the others."""
        while self.next_job < len(self.jobs) and len(self.decoding) < self._ahead(self.jobs[self.next_job]):
            job = self.jobs[self.next_job]
            factor = factor_of(job, self.options, self.model.scale)
            need = job.need(factor) or 0
            if self.needs and sum(self.needs.values()) + need > self.room.available and need <= self.room.available:
                return  # it fits alone, not beside the images in flight: it waits for them
            self.needs[id(job)] = need if need <= self.room.available else 0  # a refused file holds nothing
            self.decoding.append((job, self.decoder.submit(_decode, job, self.output, factor, self.room)))
            self.next_job += 1

    def _ahead(self, job: Job) -> int:
        """How many pictures may wait decoded before ``job`` is started: `GROUP` small ones, else decoders + 1."""
        return GROUP if _small(job) else self.decode_ahead

    def note_if_full(self, job: Job, exc: OSError) -> None:
        """A write found no space: no other write starts after it (`write_unless_full`, `write_together`)."""
        if exc.errno == errno.ENOSPC:
            self.full_at.append(str(job.output))
            self.full.set()

    def write_unless_full(self, job: Job, picture: Picture) -> tuple[int, list[str], float]:
        """`job.write_timed`, unless an earlier write found the disk full."""
        if self.full.is_set():
            raise _DiskWasFull
        try:
            return write_timed(job, picture, self.output)
        except OSError as exc:
            self.note_if_full(job, exc)
            raise

    def not_attempted(self, job: Job) -> FileResult:
        return FileResult(str(job.input), str(job.output), Status.NOT_ATTEMPTED,
                          f"not attempted: the output disk is full ({(self.full_at or self.disk_full)[0]} could not "
                          "be written)",
                          input_size=job.size)

    def finish(self, job: Job, result: FileResult, future: Future | None, seconds: tuple[float, float]) -> None:
        """Complete ``result`` from its write (waiting for it) and hand it on; once the disk is full, a write
        that has not started is not attempted."""
        if future is not None and (self.disk_full or self.full.is_set()) and future.cancel():
            self.needs.pop(id(job), None)
            self.on_result(job, self.not_attempted(job))
            return
        write_seconds = 0.0
        if future is not None:
            try:
                written, notes, write_seconds = future.result()
                result.wrote(written, notes)
            except _DiskWasFull:
                self.needs.pop(id(job), None)
                self.on_result(job, self.not_attempted(job))
                return
            except Exception as exc:
                result.fail_by(exc, "write", job.output)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    self.disk_full.append(str(job.output))
        result.timed(*seconds, write_seconds)
        self.needs.pop(id(job), None)
        self.on_result(job, result)

    def drain_writes(self, limit: int) -> None:
        """Report finished writes, oldest first, until at most ``limit`` are pending."""
        while len(self.writing) > limit:
            self.finish(*self.writing[0])  # popped once reported: an interrupt while waiting leaves it to `_stop`
            self.writing.popleft()

    def upscale_group(self, group: list[tuple[Job, Future]]) -> None:
        """Decode results in, one batched upscale of the pictures that decoded, writes submitted in order."""
        if self.on_start:
            for job, _ in group:
                self.on_start(job)
        decoded = [(job, new_result(job), *future.result()) for job, future in group]
        good = [(job, result, picture) for job, result, picture, _, _ in decoded if picture is not None]
        start, failure = time.perf_counter(), None
        try:
            upscaled = upscale_jobs(self.model, [p for _, _, p in good], self.options, [r for _, r, _ in good],
                                    self.on_pixels)
        except Exception as exc:
            if len(good) > 1:  # one picture's failure: each alone, so that the others succeed and it is named
                for job, future in group:
                    self.upscale_group([(job, future)])
                return
            upscaled, failure = [], exc
        share = (time.perf_counter() - start) / max(len(good), 1)  # a batch's time, split over its pictures
        done = {id(result): picture for (_, result, _), picture in zip(good, upscaled, strict=False)}
        together = [(job, done[id(result)]) for job, result, *_ in decoded if id(result) in done]
        # several small outputs: written by one task and published together (`files.Publication`)
        group_write = self.writer.submit(self.write_together, together) if len(together) > 1 else None
        for job, result, picture, error, decode_seconds in decoded:
            if picture is None:
                result.fail_by(error, "decode")
                self.writing.append((job, result, None, (decode_seconds, 0.0)))
            elif id(result) not in done:
                result.fail_by(failure, "upscale")
                self.writing.append((job, result, None, (decode_seconds, share)))
            else:
                write = _Part(group_write, [j for j, _ in together].index(job)) if group_write else \
                    self.writer.submit(self.write_unless_full, job, done[id(result)])
                self.writing.append((job, result, write, (decode_seconds, share)))

    def write_together(self, items: list[tuple[Job, Picture]]) -> list[tuple[int, list[str], float] | BaseException]:
        """Write each of ``items`` to a temporary, then sync once and rename them all; one outcome per item (its
        result, or the exception it met)."""
        publication, outcomes = Publication(), []
        for job, picture in items:
            if self.full.is_set():
                outcomes.append(_DiskWasFull())
                continue
            start = time.perf_counter()
            try:
                written, notes = write_job(job, picture, self.output, publication)
                outcomes.append((written, notes, time.perf_counter() - start))
            except Exception as exc:  # this member's own verdict: the others of the group are still written
                if isinstance(exc, OSError):
                    self.note_if_full(job, exc)
                outcomes.append(exc)
        start = time.perf_counter()
        try:
            publication.publish()
        except BaseException as exc:  # those renamed before it are done; the rest never appear
            publication.discard()
            renamed = iter(range(len(outcomes)))
            return [o if isinstance(o, BaseException) or next(renamed) < publication.published else exc
                    for o in outcomes]
        sync = (time.perf_counter() - start) / max(len(items), 1)  # the one sync, split over its files
        return [o if isinstance(o, BaseException) else (o[0], o[1], o[2] + sync) for o in outcomes]
