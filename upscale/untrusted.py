"""Checks on model files from strangers, made before any parser trusts what the file claims.

Model files come from forums and model sites, so none of them is trusted: a ``.pth`` is a zip archive whose
declared sizes a parser would allocate, a ``.safetensors`` file starts with a header length a parser would read,
an ONNX model may name external weight files anywhere on disk, and its metadata is text printed to a terminal.
Each check here reads only the few bytes it needs and refuses in one line naming the file and the cause
(`UnsafeFileError`, a usage error: exit 2). The unpickling side (weights only, never code) lives with the torch
code in `upscale.train.checkpoint.read_weights`.

Nothing here imports torch or onnx: the runtime checks ONNX files with a small protobuf walk of its own.
"""

from __future__ import annotations

import json
import struct
import unicodedata
import zipfile
from pathlib import Path

from .errors import UsageError

MAX_INFLATION = 16
"""A weight archive may unpack to at most this many times its size (plus `INFLATION_ALLOWANCE`): PyTorch stores
tensors uncompressed (ratio 1), float weights barely compress, and a zip bomb unpacks to thousands of times."""
INFLATION_ALLOWANCE = 64 << 20
MAX_SAFETENSORS_HEADER = 100 << 20
"""The safetensors format's own limit on the JSON header (its reference reader refuses larger ones)."""
MAX_METADATA_TEXT = 2000
"""Characters of one metadata value that are shown; a description needs far fewer."""

_SAFETENSORS_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
                         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


class UnsafeFileError(UsageError):
    """A model file that would need trust to read (code, impossible sizes, paths outside its folder): refused."""


def check_weight_archive(path: Path) -> None:
    """Refuse a zip archive (a ``.pth`` of PyTorch >= 1.6) that would unpack to far more than its own size."""
    if not zipfile.is_zipfile(path):
        return  # legacy pickles and other formats are bounded by the file's own size
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeFileError(f"{path}: refused: a damaged zip archive ({exc})") from None
    if unpacked > MAX_INFLATION * size + INFLATION_ALLOWANCE:
        raise UnsafeFileError(f"{path}: refused: the archive claims to unpack to {unpacked:,} bytes from {size:,} "
                              f"(a zip bomb?); weight files unpack to about their own size")


def check_safetensors(path: Path) -> None:
    """Refuse a ``.safetensors`` file whose header or tensors claim more bytes than the file holds."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise UnsafeFileError(f"{path}: refused: too short for a safetensors file ({size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise UnsafeFileError(f"{path}: refused: the safetensors header claims {length:,} bytes; the file has "
                                  f"{size:,}" + (" and the format allows 100 MB" if length > MAX_SAFETENSORS_HEADER
                                                 else ""))
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # not JSON, a 4,300-digit number, deep nesting
            raise UnsafeFileError(f"{path}: refused: the safetensors header is not JSON we read "
                                  f"({type(exc).__name__}: {str(exc)[:120]})") from None
    data_bytes = size - 8 - length
    if not isinstance(header, dict):
        raise UnsafeFileError(f"{path}: refused: the safetensors header is not a JSON object")
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            count = 1
            for dim in shape:
                count *= int(dim)
            sound = 0 <= start <= end <= data_bytes and (end - start) == count * _SAFETENSORS_ITEMSIZE[dtype]
        except (KeyError, TypeError, ValueError):
            sound = False
        if not sound:
            raise UnsafeFileError(f"{path}: refused: safetensors tensor {printable(str(name))[:80]!r} claims bytes "
                                  f"the file does not hold ({data_bytes:,} bytes of data)")


# --- ONNX: where a model's weights may come from --------------------------------------------------------------------
# Field numbers from onnx.proto3: which fields of which message hold further messages worth walking into.
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _ENTRY = range(8)
_CHILDREN = {
    _MODEL: {7: _GRAPH, 25: _FUNCTION},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _FUNCTION: {7: _NODE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
    _TENSOR: {13: _ENTRY},
}


def read_varint(data: memoryview, pos: int) -> tuple[int, int]:
    """A protobuf varint at ``pos``: (its value, the position after it); ValueError when it is cut short."""
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def packed_varints(data: memoryview) -> list[int]:
    """The values of a packed repeated varint field (e.g. a tensor's dims)."""
    values, pos = [], 0
    while pos < len(data):
        value, pos = read_varint(data, pos)
        values.append(value)
    return values


def protobuf_fields(data: memoryview):
    """(field number, wire type, value) of one protobuf message; value is an int or a memoryview."""
    pos, end = 0, len(data)

    def varint() -> int:
        nonlocal pos
        value, pos = read_varint(data, pos)
        return value

    while pos < end:
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            length = varint()
            if pos + length > end:
                raise ValueError("field runs past the message")
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire}")


def onnx_external_locations(data: bytes) -> list[str]:
    """Every external-data ``location`` an ONNX model names (initialisers, constants, subgraphs, functions)."""
    found: list[str] = []
    stack = [(memoryview(data), _MODEL)]
    while stack:
        message, kind = stack.pop()
        children = _CHILDREN.get(kind, {})
        entry: dict[str, str] = {}
        for number, wire, value in protobuf_fields(message):
            if wire != 2:
                continue
            if kind == _ENTRY and number in (1, 2):
                entry["key" if number == 1 else "value"] = bytes(value).decode("utf-8", "replace")
            elif number in children:
                stack.append((value, children[number]))
        if kind == _ENTRY and entry.get("key") == "location":
            found.append(entry.get("value", ""))
    return found


def check_onnx_external_data(path: Path, data: bytes) -> bool:
    """Refuse an ONNX model whose external weights lie outside its own folder; True when it has any (it must then
    be loaded from its path, so that they resolve beside it)."""
    try:
        locations = onnx_external_locations(data)
    except ValueError:
        return False  # not protobuf: onnxruntime's own loader says what is wrong with it
    folder = path.resolve().parent
    for location in locations:
        target = (folder / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(folder):
            raise UnsafeFileError(f"{path}: refused: its weights point outside the model's folder "
                                  f"({printable(location)[:200]!r})")
        if not target.is_file():
            raise UnsafeFileError(f"{path}: its external weights {printable(location)[:200]!r} are missing")
    return bool(locations)


def printable(text: str) -> str:
    """Metadata text fit for a terminal: control characters (escape sequences, carriage returns) become spaces,
    and it is cut at `MAX_METADATA_TEXT` characters."""
    clean = "".join(" " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c for c in text)
    return clean if len(clean) <= MAX_METADATA_TEXT else clean[:MAX_METADATA_TEXT] + "…"
