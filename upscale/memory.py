"""What an image will need, and what the process may use: predicted before decoding, so nothing gets killed.

A 24 MP photo at 4x is 384 MP out; the out-of-memory killer ends the whole process, and the rest of the batch
with it. So every file's need is estimated from its header (size, bit depth, scale, output format) and compared
with what this process may still use: the smallest of MemAvailable, the cgroup's limit less its usage, the
address-space limit (RLIMIT_AS) less the address space in use, and ``--max-memory`` less the resident set. A file
that cannot fit fails with both numbers and what would help; the batch goes on. The pipeline also keeps the
images it holds at once within that budget.

The estimate (bytes), from `benchmarks/memory.py`: the tile working set of onnxruntime (bounded by the tiler's
batch cap), plus per output pixel the output planes (3 colour + 1 possible alpha, times 2 for 16-bit; PNG is
written from them band by band), plus, for formats Pillow encodes (JPEG, WebP, TIFF, BMP), Pillow's copy (4 bytes
a pixel, 8 for 16-bit) and the encoded file, plus per input pixel the decoded image and its decoder's copy.
"""

from __future__ import annotations

import ctypes
import functools
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

WORKING_SET = 320 * 2**20
"""onnxruntime's tiles at their largest (200-250 MB measured for the bundled models at 2x and 4x) with room."""

STREAMED_FORMATS = ("PNG",)
PROC = Path("/proc")
CGROUP = Path("/sys/fs/cgroup")
"""Where the kernel's figures are read (tests point these at a fake tree)."""


def image_need(size: tuple[int, int], factor: float, deep: bool = False, fmt: str = "PNG") -> int:
    """Bytes an image of ``size`` (width, height) needs to be upscaled by ``factor`` and written as ``fmt``."""
    width, height = size
    inputs = width * height
    outputs = inputs * factor * factor
    sample = 2 if deep else 1
    per_output = 4 * sample
    if fmt not in STREAMED_FORMATS:
        per_output += 4 * sample + 1
    return int(WORKING_SET + outputs * per_output + inputs * 8 * sample)


@dataclass(frozen=True)
class Budget:
    available: int  # bytes this process may still allocate
    limited_by: str  # what sets it, for messages


def _meminfo_available() -> int | None:
    try:
        text = (PROC / "meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) * 1024 if match else None


def _cgroup_room() -> int | None:
    """The tightest cgroup memory limit less its usage, in bytes, over this process's cgroup and every cgroup
    above it (v2 and v1; inside a container the namespace makes its own cgroup the root); None without a limit."""
    rooms = []
    for folder, limit_name, usage_name in _cgroup_memory_files():
        try:
            limit, usage = (folder / limit_name).read_text().strip(), (folder / usage_name).read_text().strip()
            if limit != "max" and int(limit) < 2**60:  # v1 writes "no limit" as a number near 2**63
                rooms.append(int(limit) - int(usage))
        except (OSError, ValueError):
            continue
    return min(rooms) if rooms else None


def _cgroup_memory_files() -> list[tuple[Path, str, str]]:
    """(folder, limit file, usage file) for this process's cgroups, from /proc/self/cgroup (``0::/path`` for v2,
    ``N:memory:/path`` for v1), each folder followed by those above it."""
    try:
        lines = (PROC / "self" / "cgroup").read_text().splitlines()
    except OSError:
        lines = []
    found = []
    for line in lines or ["0::/"]:
        number, controllers, path = [*line.split(":", 2), "", ""][:3]
        if number == "0" and controllers == "":
            base, names = CGROUP, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            base, names = CGROUP / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        folder = base / path.strip().lstrip("/")
        found += [(f, *names) for f in (folder, *folder.parents) if f.is_relative_to(base)]
    return found


def _status_bytes(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", (PROC / "self" / "status").read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def _address_space_room() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _status_bytes("VmSize")
    return soft - used if used is not None else None


def budget(max_memory: int | None = None) -> Budget:
    """What this process may still use, and what limits it."""
    rooms = {"available memory": _meminfo_available(), "the cgroup's memory limit": _cgroup_room(),
             "the address-space limit": _address_space_room()}
    if max_memory is not None:
        rooms["--max-memory"] = max_memory - (_status_bytes("VmRSS") or 0)
    known = {k: v for k, v in rooms.items() if v is not None}
    if not known:
        return Budget(2**62, "nothing known")
    name = min(known, key=lambda k: known[k])
    return Budget(max(0, known[name]), name)


def parse_size(text: str) -> int:
    """``800M``, ``4G``, ``1.5GB``, ``2048`` (bytes) -> bytes; ValueError if not a size."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 800M, 4G)")
    number, unit = float(match.group(1)), match.group(2)
    return int(number * 1024 ** " kmgt".index(unit or " "))


def gigabytes(count: int) -> str:
    return f"{count / 1e9:.1f} GB" if count >= 1e8 else f"{count / 1e6:.0f} MB"


def refusal(need: int, room: Budget, fmt: str) -> str:
    """The one-line cause for a file that cannot fit."""
    helps = ["a smaller --scale"]
    if fmt not in STREAMED_FORMATS:
        helps.append("PNG output (written band by band)")
    helps.append("more memory" if room.limited_by != "--max-memory" else "a larger --max-memory")
    return (f"needs {gigabytes(need)}, {gigabytes(room.available)} available ({room.limited_by}); "
            f"try {', '.join(helps[:-1])} or {helps[-1]}")


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter numbers (malloc.h)


@functools.cache
def return_large_blocks_to_the_system() -> bool:
    """Serve allocations of 1 MB and more (images, bands, tile batches) with mmap, so that freeing them returns
    the memory at once. glibc's default raises this threshold up to 32 MB as blocks are freed, after which
    those blocks come from per-thread heaps that keep what they once held: the pipeline's decode, encode and
    lane threads then held 1104 MB at peak for one 48 MP output, against 450 MB with this (benchmarks/memory.py;
    the same as MALLOC_MMAP_THRESHOLD_=1048576). Linux with glibc only; elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 1 << 20))
    except (OSError, AttributeError):
        return False
