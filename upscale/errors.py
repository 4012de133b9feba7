"""Typed errors for expected failures: the CLI prints them as one line, never as a stack trace."""

from __future__ import annotations

import os
from pathlib import Path

UNEXPECTED = "unexpected error, please report"
"""How a failure that no rule expects starts its one line (a bug, ours or a library's)."""


def debugging() -> bool:
    """``UPSCALE_DEBUG=1``: unexpected errors are raised with their traceback instead of becoming one line (for
    developers; users never see a traceback)."""
    return os.environ.get("UPSCALE_DEBUG", "") not in ("", "0")


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports of exceptions nobody expected."""
    text = str(exc).strip().split("\n")[0][:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class UpscaleError(Exception):
    """Base class: an expected failure with a message fit for a user."""


class DeviceError(UpscaleError):
    """The requested execution device cannot run (e.g. CUDA asked for on a machine without a GPU)."""


class ModelError(UpscaleError):
    """A model file is missing, unreadable, or breaks the model contract."""


class ModelRunError(UpscaleError):
    """The model failed on one picture at run time (an onnxruntime error): that file fails, the batch goes on."""


class UsageError(UpscaleError):
    """The command cannot run as asked (an option or run folder that does not fit); exit code 2."""


class TrainingError(UpscaleError, ValueError):
    """upscale-train or upscale-export cannot go on: bad data folder, unusable checkpoint, parity failure.

    Also a ValueError, so code that called the trainer and caught ValueError keeps working."""


class ImageError(UpscaleError):
    """One image could not be read or written; the batch goes on with the others."""

    def __init__(self, path: Path | str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = Path(path)
        self.cause = cause
