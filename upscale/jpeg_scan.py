"""Whether a JPEG holds enough compressed data for the size its header states: one linear walk of its markers.

libjpeg decodes a scan that ends early (a file cut and closed with an end marker, a header whose size was changed)
by filling every missing block with flat grey, and only warns; Pillow does not pass that warning on. A 631-byte
file whose header says 2000x2000 would decode "fine" to a grey picture, upscaled and reported ok. Every block of a
Huffman-coded scan costs at least two bits (a DC code and an end-of-block code, each at least one bit long), every
block of a progressive first DC scan at least one, every sample of a lossless scan at least one: data shorter than
that cannot hold the picture. (Arithmetic coding has no such floor and is not judged.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_HUFFMAN_FRAMES = {0xC0: 2, 0xC1: 2, 0xC2: 1, 0xC3: 1, 0xC5: 2, 0xC6: 1, 0xC7: 1}
"""Start-of-frame markers of Huffman-coded JPEGs -> the fewest bits each block (sample, for lossless) costs."""
_LOSSLESS = {0xC3, 0xC7}
_ARITHMETIC_FRAMES = {0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn: markers without a length


@dataclass(frozen=True)
class ScanData:
    """What the walk found: the frame's size and the entropy-coded bytes of every scan."""

    width: int
    height: int
    least_bits: int
    """The fewest bits of entropy-coded data that can hold the frame (0: no floor is known)."""
    entropy_bytes: int

    @property
    def present_share(self) -> float:
        """At most this share of the picture can be in the file (1.0 where the data may well be whole)."""
        return 1.0 if not self.least_bits else min(1.0, self.entropy_bytes * 8 / self.least_bits)


def _least_bits(marker: int, width: int, height: int, components: list[tuple[int, int]]) -> int:
    """The floor for a frame of ``components`` (horizontal, vertical sampling factors)."""
    h_max = max(h for h, _ in components)
    v_max = max(v for _, v in components)
    units = 0
    for h, v in components:
        columns, rows = math.ceil(width * h / h_max), math.ceil(height * v / v_max)
        units += columns * rows if marker in _LOSSLESS else math.ceil(columns / 8) * math.ceil(rows / 8)
    return units * _HUFFMAN_FRAMES[marker]


def _entropy_length(data: bytes, at: int) -> int:
    """Bytes of entropy-coded data from ``at`` to the next marker that ends it (stuffed 0xFF00, restart markers
    and fill bytes are part of the data)."""
    start = at
    while True:
        at = data.find(b"\xff", at)
        if at < 0 or at + 1 >= len(data):
            return len(data) - start
        following = data[at + 1]
        if following == 0x00 or following == 0xFF or 0xD0 <= following <= 0xD7:
            at += 1 if following == 0xFF else 2
            continue
        return at - start


def scan_data(data: bytes) -> ScanData | None:
    """The first frame's size and data (an MPO's first picture), or None where the markers cannot be followed far
    enough to judge (the decoder then says what is wrong)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at, frame, entropy = 2, None, 0
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xD9:  # end of image
            break
        length = int.from_bytes(data[at + 2:at + 4], "big")
        body = data[at + 4:at + 2 + length]
        at += 2 + length
        if marker in _ARITHMETIC_FRAMES:
            return None
        if marker in _HUFFMAN_FRAMES and frame is None and len(body) >= 6:
            height, width, count = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
            sampling = [(b >> 4, b & 15) for b in body[7:6 + 3 * count:3]]
            if height == 0 or width == 0 or not sampling or any(h == 0 or v == 0 for h, v in sampling):
                return None  # the height comes later (DNL), or a header the decoder will refuse
            frame = (marker, width, height, sampling)
        elif marker == 0xDA:
            length = _entropy_length(data, at)
            entropy, at = entropy + length, at + length
    if frame is None:
        return None
    marker, width, height, sampling = frame
    return ScanData(width, height, _least_bits(marker, width, height, sampling), entropy)
