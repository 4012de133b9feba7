"""``upscale dir --dry-run``: what a run would do to each file, and why, with nothing written.

The same planning as a run (`planning`: names, clashes, existing outputs, unfinished ones redone), the same
model loading (so a device or model refusal shows here too), the same memory prediction per file
(`job.check_fits`): each file's verdict — upscaled (sizes and predicted memory), skipped, ignored or refused —
and the model that runs it. With ``--model auto`` the model is chosen per picture from its pixels, when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .auto import AutoModel
from .engines import ModelSpec, make_engine
from .errors import ImageError
from .job import FileResult, Job, OutputOptions, Status, check_fits, factor_of
from .memory import budget
from .model import UpscaleModel
from .picture import UpscaleOptions
from .planning import plan_directory, redo_incomplete


@dataclass(frozen=True)
class Verdict:
    """One file's fate in the planned run."""

    input: str
    action: str  # "upscale", "skip", "ignore" or "refuse"
    detail: str


def preview(input_dir: Path, output_dir: Path, model: str | None, device: str, options: UpscaleOptions,
            output: OutputOptions, strength: float | None = None,
            threads: int | None = None) -> tuple[UpscaleModel | AutoModel, list[Verdict]]:
    """The model a run would load, and every file's verdict, in the order a run reports them."""
    runner = make_engine("local", ModelSpec(model or "auto", device, threads, options.factor, strength), options,
                         output, None, None)
    jobs, known = plan_directory(input_dir, output_dir, output)
    loaded = runner.load()
    if not output.overwrite:
        jobs, known = redo_incomplete(jobs, known, lambda size: options.target(loaded.scale, size).size)
    room = budget(output.max_memory)
    verdicts = [_known(result) for result in known]
    verdicts += [_job(job, loaded, options, room) for job in jobs]
    return loaded, verdicts


def _known(result: FileResult) -> Verdict:
    action = {Status.SKIPPED: "skip", Status.IGNORED: "ignore"}.get(result.status, "refuse")
    return Verdict(result.input, action, result.error or f"{result.output} exists")


def _job(job: Job, loaded: UpscaleModel | AutoModel, options: UpscaleOptions, room) -> Verdict:
    factor = factor_of(job, options, loaded.scale)
    try:
        check_fits(job, factor, room)
    except ImageError as exc:
        return Verdict(str(job.input), "refuse", exc.cause)
    detail = f"-> {job.output}"
    if job.size is not None:
        target = options.target(loaded.scale, job.size).size
        detail += f" ({job.size[0]}x{job.size[1]} -> {target[0]}x{target[1]}"
        need = job.need(factor)
        detail += f", memory planned: about {need / 2**20:,.0f} MiB)" if need else ")"
    if job.note:
        detail += f"; {job.note}"
    return Verdict(str(job.input), "upscale", detail)
