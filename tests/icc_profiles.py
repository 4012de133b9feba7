"""ICC profiles made by the tests: a CMYK profile whose inks mean what the test says (no system files)."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageCms


def _s15(x: float) -> bytes:
    return struct.pack(">i", round(x * 65536))


def _lab16_of_srgb(colours: list[list[int]]) -> np.ndarray:
    """sRGB colours -> the ICC v2 16-bit Lab encoding, through LittleCMS."""
    image = Image.fromarray(np.asarray(colours, np.uint8)[None], "RGB")
    lab = ImageCms.profileToProfile(image, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                    outputMode="LAB")
    values = np.asarray(lab)[0].astype(np.int32)
    values[:, 1:] = values[:, 1:].astype(np.uint8).view(np.int8).astype(np.int32) + 128  # Pillow keeps a, b signed
    return values.astype(np.uint32) * 256


def cmyk_profile(corner_rgb: Callable[[int, int, int, int], list[int]]) -> bytes:
    """A CMYK -> Lab profile (ICC v2, an A2B0 lut16 with 2 grid points per ink): the ink corner (c, m, y, k)
    in {0, 1}^4 shows as the sRGB colour ``corner_rgb(c, m, y, k)``; in between, multilinear interpolation."""
    corners = list(itertools.product((0, 1), repeat=4))  # the first ink varies slowest, as the CLUT is laid out
    clut = _lab16_of_srgb([corner_rgb(*c) for c in corners])
    lut = b"mft2" + bytes(4) + bytes([4, 3, 2, 0])
    lut += b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1)) + struct.pack(">HH", 2, 2)
    lut += struct.pack(">8H", *([0, 65535] * 4)) + struct.pack(f">{clut.size}H", *clut.ravel())
    lut += struct.pack(">6H", *([0, 65535] * 3))
    text = b"test CMYK"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text) + 1) + text + b"\0" + bytes(4 + 4 + 2 + 1 + 67)
    white = _s15(0.9642) + _s15(1.0) + _s15(0.8249)  # D50
    tags = [(b"desc", desc), (b"wtpt", b"XYZ " + bytes(4) + white), (b"cprt", b"text" + bytes(4) + b"none\0"),
            (b"A2B0", lut)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    header = struct.pack(">I", offset + len(body)) + bytes(4) + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
    header += bytes(12) + b"acsp" + bytes(28) + white
    return header + bytes(128 - len(header)) + struct.pack(">I", len(tags)) + table + body


def swapped_cyan_magenta(c: int, m: int, y: int, k: int) -> list[int]:
    """Cyan ink shows as magenta would, and magenta as cyan: a naive CMYK conversion cannot guess this."""
    return [round(255 * v) for v in ((1 - m) * (1 - k), (1 - c) * (1 - k), (1 - y) * (1 - k))]
