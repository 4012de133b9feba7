"""File handling that must never lose data: atomic writes, and sweeping what a killed write left behind.

An output appears under its final name complete or not at all: it is written to a temporary file beside the
target (same folder, so the rename is atomic), flushed and fsynced, then renamed over the target. A process
killed mid-write leaves only a hidden ``.NAME.XXXX.upscale-tmp`` file, which folder listings skip and
`sweep_temp_files` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".upscale-tmp"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file beside it, fsynced and renamed over ``path``
    when the block ends normally, removed when it raises; so ``path`` is absent/old or complete, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent/old or complete, never partial."""
    with open_atomic(path) as f:
        f.write(data)


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 1 MB pieces (weight files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sweep_temp_files(folders: set[Path]) -> None:
    """Remove temporary files left by writers that were killed mid-write (e.g. Ray workers whose rows were retried)."""
    for folder in folders:
        if folder.is_dir():
            for stale in folder.glob(f".*{TEMP_SUFFIX}"):
                stale.unlink(missing_ok=True)


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` if needed and prove it takes files (write, fsync and remove a probe), so that a read-only
    mount or a missing permission is one refusal before any work, not one failure per file after all of it.
    UsageError naming the folder and the cause."""
    from .errors import UsageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open_atomic(folder / ".upscale-write-probe") as f:
            f.write(b"probe")
        (folder / ".upscale-write-probe").unlink()
    except OSError as exc:
        raise UsageError(f"{folder}: {what} is not writable: {exc.strerror or exc}") from None
