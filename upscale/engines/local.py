"""The local engine: this process, with decoding and encoding overlapped on threads (`pipeline.run_pipelined`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..auto import AutoModel
from ..job import Job, OutputOptions
from ..model import UpscaleModel
from ..picture import UpscaleOptions
from ..pipeline import run_pipelined
from .base import ModelSpec, OnResult


@dataclass
class LocalEngine:
    spec: ModelSpec
    options: UpscaleOptions
    output: OutputOptions
    name: str = "local"
    model: UpscaleModel | AutoModel | None = None

    def load(self) -> UpscaleModel | AutoModel:
        self.model = self.spec.load()
        return self.model

    def run(self, jobs: list[Job], on_result: OnResult, on_started: Callable[[Job], None] | None = None,
            on_pixels: Callable[[int], None] | None = None) -> None:
        assert self.model is not None, "load() first"
        run_pipelined(self.model, jobs, self.options, self.output, on_result, on_started, on_pixels)
