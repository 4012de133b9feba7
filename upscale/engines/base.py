"""What every engine shares: the model it loads anywhere (`ModelSpec`), Ray's options, and the `Engine` protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..auto import AutoModel, load_auto
from ..job import FileResult, Job
from ..model import UpscaleModel, load_model

OnResult = Callable[[Job, FileResult], None]


@dataclass(frozen=True)
class ModelSpec:
    """What loads the run's model anywhere: the driver loads it once to check it and report it, and each Ray
    worker loads the same one from this (a path, not a session, travels)."""

    name: str  # a model file's path, a bundled name, or "auto"
    device: str
    threads: int | None
    factor: float | None  # --scale: auto picks the x2 or x4 pair by it
    strength: float | None = None  # --strength: the clean and photo pair of the model, blended
    shipped: object = None
    """The model's ONNX bytes in Ray's object store (a user's file, a converted .pth, a blend), put there by the
    driver: a worker on another machine never reads the driver's paths. None for bundled models and auto."""
    label: str = ""  # a shipped blend's description

    def load(self) -> UpscaleModel | AutoModel:
        if self.shipped is not None:
            import ray

            return load_model(self.name, self.device, self.threads, ray.get(self.shipped), self.label)
        if self.strength is not None:
            from ..strength import load_blended

            return load_blended(self.name, self.strength, self.factor, self.device, self.threads)
        if self.name == "auto":
            return load_auto(self.factor, self.device, self.threads)
        return load_model(self.name, self.device, self.threads)


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # the cluster to join (default: RAY_ADDRESS, else a local instance)
    workers: int | None = None  # files run at once (default: one per GPU, or per group of CPUs)
    cpus_per_worker: float = 1.0


class Engine(Protocol):
    """Loads the run's model (`load`: the driver's copy, which checks it before any file runs), then runs planned
    jobs (`run`): each job's result goes to ``on_result`` exactly once (in any order), even when a worker running
    it was lost and it ran again. KeyboardInterrupt stops it after the running writes."""

    name: str

    def load(self) -> UpscaleModel | AutoModel: ...

    def run(self, jobs: list[Job], on_result: OnResult, on_started: Callable[[Job], None] | None = None,
            on_pixels: Callable[[int], None] | None = None) -> None: ...


