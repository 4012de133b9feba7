"""Typed errors for expected failures: the CLI prints them as one line, never as a stack trace."""

from __future__ import annotations

from pathlib import Path


class UpscaleError(Exception):
    """Base class: an expected failure with a message fit for a user."""


class DeviceError(UpscaleError):
    """The requested execution device cannot run (e.g. CUDA asked for on a machine without a GPU)."""


class ModelError(UpscaleError):
    """A model file is missing, unreadable, or breaks the model contract."""


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
