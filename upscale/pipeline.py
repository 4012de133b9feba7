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
    if workers is None:
        workers = IOWorkers.for_device(model.device.kind)
    return_large_blocks_to_the_system()
    room = budget(output.max_memory)
    needs: dict[int, int] = {}  # id(job) -> predicted bytes, for the jobs in flight
    disk_full: list[str] = []  # the output whose write found no space left, once one has
    decode_ahead, write_behind = workers.decoders + 1, workers.encoders
    decoder = ThreadPoolExecutor(max_workers=workers.decoders, thread_name_prefix="upscale-decode")
    writer = ThreadPoolExecutor(max_workers=write_behind, thread_name_prefix="upscale-write")
    decoding: deque[tuple[Job, Future]] = deque()
    # (job, result, the write's future or None when the file already failed, decode + upscale seconds)
    writing: deque[tuple[Job, FileResult, Future | None, tuple[float, float]]] = deque()
    next_job = 0

    def fill_decoder() -> None:
        nonlocal next_job
        while next_job < len(jobs) and len(decoding) < (GROUP if _small(jobs[next_job]) else decode_ahead):
            job = jobs[next_job]
            factor = factor_of(job, options, model.scale)
            need = job.need(factor) or 0
            if needs and sum(needs.values()) + need > room.available and need <= room.available:
                return  # it fits alone, not beside the images in flight: it waits for them
            needs[id(job)] = need if need <= room.available else 0  # a refused file holds nothing
            decoding.append((job, decoder.submit(_decode, job, output, factor, room)))
            next_job += 1

    full = threading.Event()  # set by the write that found no space, before any other write starts
    full_at: list[str] = []

    def note_if_full(job: Job, exc: OSError) -> None:
        """A write found no space: no other write starts after it (`write_unless_full`, `write_together`)."""
        if exc.errno == errno.ENOSPC:
            full_at.append(str(job.output))
            full.set()

    def write_unless_full(job: Job, picture: Picture, output: OutputOptions) -> tuple[int, list[str], float]:
        if full.is_set():
            raise _DiskWasFull
        try:
            return write_timed(job, picture, output)
        except OSError as exc:
            note_if_full(job, exc)
            raise

    def not_attempted(job: Job) -> FileResult:
        return FileResult(str(job.input), str(job.output), Status.NOT_ATTEMPTED,
                          f"not attempted: the output disk is full ({(full_at or disk_full)[0]} could not be written)",
                          input_size=job.size)

    def finish(job: Job, result: FileResult, future: Future | None, seconds: tuple[float, float]) -> None:
        """Complete ``result`` from its write (waiting for it) and hand it on; once the disk is full, a write
        that has not started is not attempted."""
        if future is not None and (disk_full or full.is_set()) and future.cancel():
            needs.pop(id(job), None)
            on_result(job, not_attempted(job))
            return
        write_seconds = 0.0
        if future is not None:
            try:
                written, notes, write_seconds = future.result()
                result.wrote(written, notes)
            except _DiskWasFull:
                needs.pop(id(job), None)
                on_result(job, not_attempted(job))
                return
            except Exception as exc:
                result.fail_by(exc, "write", job.output)
                if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
                    disk_full.append(str(job.output))
        result.timed(*seconds, write_seconds)
        needs.pop(id(job), None)
        on_result(job, result)

    def drain_writes(limit: int) -> None:
        while len(writing) > limit:
            finish(*writing[0])  # popped once reported: an interrupt while waiting leaves it for the handler
            writing.popleft()

    def upscale_group(group: list[tuple[Job, Future]]) -> None:
        """Decode results in, one batched upscale of the pictures that decoded, writes submitted in order."""
        if on_start:
            for job, _ in group:
                on_start(job)
        decoded = [(job, new_result(job), *future.result()) for job, future in group]
        good = [(job, result, picture) for job, result, picture, _, _ in decoded if picture is not None]
        start, failure = time.perf_counter(), None
        try:
            upscaled = upscale_jobs(model, [p for _, _, p in good], options, [r for _, r, _ in good], on_pixels)
        except Exception as exc:
            if len(good) > 1:  # one picture's failure: each alone, so that the others succeed and it is named
                for job, future in group:
                    upscale_group([(job, future)])
                return
            upscaled, failure = [], exc
        share = (time.perf_counter() - start) / max(len(good), 1)  # a batch's time, split over its pictures
        done = {id(result): picture for (_, result, _), picture in zip(good, upscaled, strict=False)}
        together = [(job, done[id(result)]) for job, result, *_ in decoded if id(result) in done]
        # several small outputs: written by one task and published together (`files.Publication`)
        group_write = writer.submit(write_together, together) if len(together) > 1 else None
        for job, result, picture, error, decode_seconds in decoded:
            if picture is None:
                result.fail_by(error, "decode")
                writing.append((job, result, None, (decode_seconds, 0.0)))
            elif id(result) not in done:
                result.fail_by(failure, "upscale")
                writing.append((job, result, None, (decode_seconds, share)))
            else:
                write = _Part(group_write, [j for j, _ in together].index(job)) if group_write else \
                    writer.submit(write_unless_full, job, done[id(result)], output)
                writing.append((job, result, write, (decode_seconds, share)))

    def write_together(items: list[tuple[Job, Picture]]) -> list[tuple[int, list[str], float] | BaseException]:
        """Write each of ``items`` to a temporary, then sync once and rename them all; one outcome per item (its
        result, or the exception it met)."""
        publication, outcomes = Publication(), []
        for job, picture in items:
            if full.is_set():
                outcomes.append(_DiskWasFull())
                continue
            start = time.perf_counter()
            try:
                written, notes = write_job(job, picture, output, publication)
                outcomes.append((written, notes, time.perf_counter() - start))
            except Exception as exc:  # this member's own verdict: the others of the group are still written
                if isinstance(exc, OSError):
                    note_if_full(job, exc)
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

    try:
        fill_decoder()
        while decoding and not disk_full:
            group = [decoding.popleft()]
            while _small(group[0][0]) and decoding and len(group) < GROUP and _small(decoding[0][0]):
                group.append(decoding.popleft())  # small pictures: decoded ahead, upscaled several to a batch
            fill_decoder()
            upscale_group(group)
            drain_writes(GROUP if _small(group[0][0]) else write_behind)  # a small group's writes go on meanwhile
            while writing and next_job < len(jobs) and not decoding:  # memory, not count, holds the next file
                drain_writes(len(writing) - 1)
                fill_decoder()
        drain_writes(0)
        if disk_full:  # every later write would fail too: stop, and say which files were not attempted
            for future in [f for _, f in decoding]:
                future.cancel()
            for job in [j for j, _ in decoding] + jobs[next_job:]:
                on_result(job, not_attempted(job))
    except KeyboardInterrupt:
        for _, f in decoding:
            f.cancel()
        for _, _, f, _ in writing:
            if f is not None:
                f.cancel()
        decoder.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)  # running writes finish: each is atomic
        for job, result, f, seconds in writing:  # the report must say what is on disk: every finished write
            if f is not None and (f.cancelled() or not isinstance(f.exception(), type(None) | Exception)):
                continue  # never started, or stopped by the interrupt itself: nothing under its final name
            finish(job, result, f, seconds)
        raise
    finally:
        decoder.shutdown(wait=False, cancel_futures=True)
        writer.shutdown(wait=True)
