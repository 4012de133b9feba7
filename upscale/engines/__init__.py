"""Where a folder's files run: this process (`local`) or a Ray cluster (`ray`), behind one seam.

An engine takes the planned jobs and runs the one per-file step on each: decode, choose the model (``--model
auto`` decides per file, inside the step, on every engine), upscale, encode, write; it hands back one
`FileResult` per job. The runner only plans, picks an engine by name (`make_engine`) and reports, so the same
command gives the same pictures and the same report on a laptop and on a cluster.
"""

from __future__ import annotations

from ..errors import UsageError
from ..job import OutputOptions
from ..picture import UpscaleOptions
from .base import Engine, ModelSpec, OnResult, RayOptions

__all__ = ["ENGINES", "Engine", "ModelSpec", "OnResult", "RayOptions", "make_engine"]

ENGINES = ("local", "ray")


def make_engine(name: str, spec: ModelSpec, options: UpscaleOptions, output: OutputOptions,
                ray: RayOptions | None = None, uris: tuple[str, str] | None = None) -> Engine:
    """The engine called ``name`` for this run; UsageError, before any work, for an unknown one, or for Ray
    without its extra."""
    if name == "local":
        from .local import LocalEngine

        return LocalEngine(spec, options, output, uris)
    if name == "ray":
        from .ray_cluster import RayEngine

        return RayEngine(spec, options, output, ray or RayOptions(), uris)
    raise UsageError(f"unknown engine {name!r}: use {' or '.join(ENGINES)}")
