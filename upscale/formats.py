"""The modern formats: AVIF (Pillow's own codec), HEIC/HEIF (pillow-heif) and JPEG XL (pillow-jxl-plugin).

The two plugins are optional extras (``upscale[heif]``, ``upscale[jxl]``), registered with Pillow when installed.
Their extensions always count as images, so a ``.heic`` file without the extra is one failed file saying which
extra to install (never silently ignored), and ``--format heic`` without it is refused before any work.
HEIF keeps 10- and 12-bit pictures deep (16-bit samples here, written back at 10 bits); AVIF and JPEG XL are
read and written at 8 bits through Pillow, with the usual warning when a 16-bit picture is reduced.
"""

from __future__ import annotations

import importlib
from functools import cache

import numpy as np

from .errors import UsageError

OPTIONAL = {"HEIF": ("pillow_heif", "heif", "HEIC"), "JXL": ("pillow_jxl", "jxl", "JPEG XL")}
"""Pillow format -> (the plugin's module, the extra that installs it, the name users know)."""
EXTENSIONS = {".avif": "AVIF", ".heic": "HEIF", ".heif": "HEIF", ".jxl": "JXL"}


@cache
def available(fmt: str) -> bool:
    """Whether Pillow reads and writes ``fmt`` here (registering the plugin the first time)."""
    if fmt == "AVIF":
        from PIL import features

        return bool(features.check("avif"))
    if fmt not in OPTIONAL:
        return True
    try:
        module = importlib.import_module(OPTIONAL[fmt][0])
    except ImportError:
        return False
    if fmt == "HEIF":
        module.register_heif_opener()
    return True


def missing(fmt: str) -> str | None:
    """Why ``fmt`` cannot be used here (one line naming what to install), or None."""
    if available(fmt):
        return None
    if fmt == "AVIF":
        return "AVIF needs a Pillow built with AVIF (11.3 or newer): pip install -U pillow"
    module, extra, name = OPTIONAL[fmt]
    return f"{name} needs {module.replace('_', '-')}: pip install 'upscale[{extra}]'"


def require(fmt: str) -> None:
    """UsageError when an output format cannot be written here."""
    why = missing(fmt)
    if why:
        raise UsageError(why)


def register_installed() -> None:
    """Register whatever plugins are installed, so that Pillow opens their files."""
    for fmt in OPTIONAL:
        available(fmt)


def read_deep_heif(path) -> np.ndarray | None:
    """A 10/12-bit HEIF's pixels as HxWxC uint16 (scaled to 16 bits), or None for an 8-bit one."""
    import pillow_heif

    heif = pillow_heif.open_heif(str(path), convert_hdr_to_8bit=False)
    if heif.info.get("bit_depth", 8) <= 8:
        return None
    data = np.asarray(heif)
    return data if data.ndim == 3 else data[..., None]


def encode_deep_heif(planes: np.ndarray, quality: int, exif: bytes | None, xmp: bytes | None,
                     icc: bytes | None) -> bytes:
    """16-bit RGB or RGBA samples as a 10-bit HEIF (what the HEVC encoder holds)."""
    import io

    import pillow_heif

    mode = {3: "RGB;16", 4: "RGBA;16"}[planes.shape[2]]
    heif = pillow_heif.from_bytes(mode=mode, size=(planes.shape[1], planes.shape[0]),
                                  data=np.ascontiguousarray(planes, dtype="<u2").tobytes())
    buffer = io.BytesIO()
    extra = {k: v for k, v in (("exif", exif), ("xmp", xmp), ("icc_profile", icc)) if v}
    heif.save(buffer, quality=quality, **extra)
    return buffer.getvalue()
