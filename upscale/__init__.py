"""upscale: batch image super-resolution with ONNX models.

The library under the `upscale` command::

    from upscale import load_model, upscale_pil
    model = load_model()                      # the bundled default, CUDA when usable
    big = upscale_pil(model, Image.open("in.png"))

`upscale_picture` works on decoded arrays, `run_directory` on whole folders (`plan_directory` and
`run_pipelined` are its parts).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_HOMES = {
    "ModelInfo": "contract", "DeviceError": "errors", "ImageError": "errors", "ModelError": "errors",
    "UpscaleError": "errors", "Picture": "images", "read_image": "decoding", "FileResult": "job", "Job": "job",
    "OutputOptions": "job", "run_job": "job", "write_report": "job", "UpscaleModel": "model",
    "load_model": "model", "UpscaleOptions": "picture", "upscale_picture": "picture", "upscale_pil": "picture",
    "run_pipelined": "pipeline", "plan_directory": "planning", "FolderRun": "runner", "run_directory": "runner",
    "upscale_array": "tiling",
}
"""Each public name's module, imported on first use (PEP 562): ``import upscale.train`` or the error boundary then
costs no onnxruntime, runner or pipeline."""


def __getattr__(name: str) -> object:
    if name in _HOMES:
        value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'upscale' has no attribute {name!r}")


if TYPE_CHECKING:  # what type checkers and editors see
    from .contract import ModelInfo
    from .decoding import read_image
    from .errors import DeviceError, ImageError, ModelError, UpscaleError
    from .images import Picture
    from .job import FileResult, Job, OutputOptions, run_job, write_report
    from .model import UpscaleModel, load_model
    from .picture import UpscaleOptions, upscale_picture, upscale_pil
    from .pipeline import run_pipelined
    from .planning import plan_directory
    from .runner import FolderRun, run_directory
    from .tiling import upscale_array

__version__ = "0.1.0"

__all__ = [
    "DeviceError", "FileResult", "FolderRun", "ImageError", "Job", "ModelError", "ModelInfo", "OutputOptions",
    "Picture", "UpscaleError", "UpscaleModel", "UpscaleOptions", "__version__", "load_model", "plan_directory",
    "read_image", "run_directory", "run_job", "run_pipelined", "upscale_array", "upscale_picture", "upscale_pil",
    "write_report",
]
