"""File handling that must never lose data: atomic writes, and sweeping what a killed write left behind.

An output appears under its final name complete or not at all: it is written to a temporary file beside the
target (same folder, so the rename is atomic), flushed and fsynced, then renamed over the target. A process
killed mid-write leaves only a hidden ``.NAME.XXXX.upscale-tmp`` file, which folder listings skip and
`sweep_temp_files` removes.
"""

from __future__ import annotations

import contextlib
import ctypes
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


class Publication:
    """Files written to temporaries without a sync each, published together: one filesystem sync, then every
    rename. Many small outputs cost one sync instead of one fsync each (0.3 ms apiece on an ext4 SSD), and the
    promise holds: a final name appears only after its data is on disk; a kill before `publish` leaves only
    temporaries (swept by the next run), never a partial file under a final name."""

    def __init__(self) -> None:
        self.staged: list[tuple[str, Path]] = []
        self.published = 0  # how many of the staged files are under their final names

    def publish(self) -> None:
        """Sync the filesystems holding the staged files, then rename each over its target, in order (if it stops
        halfway, `published` says how many made it)."""
        for folder in {path.parent for _, path in self.staged}:
            sync_filesystem(folder)
        while self.staged:
            tmp, path = self.staged[0]
            os.replace(tmp, path)
            self.staged.pop(0)
            self.published += 1

    def discard(self) -> None:
        for tmp, _ in self.staged:
            Path(tmp).unlink(missing_ok=True)
        self.staged.clear()


def sync_filesystem(folder: Path) -> None:
    """Flush every written file of the filesystem holding ``folder`` (Linux ``syncfs``; elsewhere ``sync``)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), f"syncfs failed on {folder}")
        finally:
            os.close(fd)
    except AttributeError:  # no syncfs in this C library
        os.sync()


NAME_MAX = 255
"""Bytes in one file name on Linux, macOS and Windows filesystems alike."""
_TEMP_EXTRA = 2 + 8 + len(TEMP_SUFFIX)  # the dots around the name, mkstemp's 8 random characters, the suffix


def temp_prefix(name: str) -> str:
    """``.NAME.`` for a temporary beside ``name``, the name cut (on a character boundary) so that the temporary's
    whole name fits where the final name fits: any name the filesystem allows can be written."""
    room = NAME_MAX - _TEMP_EXTRA
    encoded = name.encode("utf-8", "surrogateescape")
    if len(encoded) > room:
        name = encoded[:room].decode("utf-8", "ignore")
    return f".{name}."


@contextlib.contextmanager
def open_atomic(path: Path, publication: Publication | None = None) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file beside it, fsynced and renamed over ``path``
    when the block ends normally (or, with a ``publication``, left for it to sync and rename with others),
    removed when it raises; so ``path`` is absent/old or complete, never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; a finished file gets the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if publication is None:
                os.fsync(f.fileno())
        if publication is None:
            os.replace(tmp, path)
        else:
            publication.staged.append((tmp, path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes, publication: Publication | None = None) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent/old or complete, never partial."""
    with open_atomic(path, publication) as f:
        f.write(data)


def sha256_of(path: Path) -> str:
    """The file's sha256, read in 1 MB pieces (weight files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_checked(url: str, target: Path, sha256: str) -> bool:
    """Download ``url`` to ``target`` through a temporary file beside it, renamed only when its sha256 is
    ``sha256``; False (nothing kept) on a mismatch, OSError where it cannot be had."""
    import urllib.request  # only the data and model fetchers download

    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while block := response.read(1 << 20):
                out.write(block)
        if sha256_of(Path(name)) != sha256:
            return False
        os.replace(name, target)
        return True
    finally:
        Path(name).unlink(missing_ok=True)


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
