"""Typed errors for expected failures: the CLI prints them as one line, never as a stack trace."""

from __future__ import annotations

from pathlib import Path


class UpscaleError(Exception):
    """Base class: an expected failure with a message fit for a user."""


class DeviceError(UpscaleError):
    """The requested execution device cannot run (e.g. CUDA asked for on a machine without a GPU)."""


class ModelError(UpscaleError):
    """A model file is missing, unreadable, or breaks the model contract."""


class ImageError(UpscaleError):
    """One image could not be read or written; the batch goes on with the others."""

    def __init__(self, path: Path | str, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = Path(path)
        self.cause = cause
