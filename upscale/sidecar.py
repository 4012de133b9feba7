"""XMP sidecars: the ``.xmp`` file beside a picture where Lightroom, darktable and digiKam keep its keywords,
ratings and edits, carried beside the output with the sizes it states updated.

Two namings are in use: ``photo.xmp`` (Lightroom, Capture One) and ``photo.jpg.xmp`` (darktable, digiKam). The
longer one, naming this very file, is preferred where both exist; the output's sidecar is named the same way
(``photo_x2.xmp`` or ``photo_x2.png.xmp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .files import write_atomic
from .xmp_packet import for_output

_LARGEST = 64 << 20
"""Bytes read at most: a sidecar is text of some kilobytes; anything far larger is not one."""


@dataclass(frozen=True)
class Sidecar:
    packet: bytes
    full_name: bool
    """Named after the picture's whole file name (``photo.jpg.xmp``), not its stem (``photo.xmp``)."""


def find(source: Path) -> Sidecar | None:
    """The sidecar beside ``source``, if there is a readable one."""
    for candidate, full_name in ((Path(f"{source}.xmp"), True), (source.with_suffix(".xmp"), False),
                                 (source.with_suffix(".XMP"), False)):
        try:
            if candidate.is_file() and candidate.stat().st_size <= _LARGEST:
                return Sidecar(candidate.read_bytes(), full_name)
        except OSError:
            continue
    return None


def path_for(output: Path, sidecar: Sidecar) -> Path:
    """Where the output's sidecar goes, named as the source's was."""
    return Path(f"{output}.xmp") if sidecar.full_name else output.with_suffix(".xmp")


def write(sidecar: Sidecar, output: Path, size: tuple[int, int], drop_location: bool) -> Path:
    """Write the updated sidecar beside ``output`` (atomically); its path."""
    target = path_for(output, sidecar)
    write_atomic(target, for_output(sidecar.packet, size[0], size[1], drop_location) or sidecar.packet)
    return target
