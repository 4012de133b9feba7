"""``upscale compare IN OUT``: a self-contained before/after page for a finished batch, judged by eye.

One card per file: the output's most changed region (where it differs most from a bicubic enlargement of the
input: what the model did) shown at 1:1 beside the same region of that bicubic enlargement, under a slider; the
sizes, the model ``auto`` chose and why, warnings, and for a failed file its reason. The rows come from the run's
JSON report when given, else from pairing each input with the output of the same name. Both pictures are decoded as
the pipeline decodes them (orientation, alpha, 16-bit), so what is shown is what the batch wrote.

The page is one HTML file with its script and style inline (no network, ever) and a folder of small lossless WebP
crops beside it (``compare-crops/``, ~20 KiB a file; ``--lossless``: ~110 KiB): never copies of whole outputs, which
the cards link to instead.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from .decoding import read_image
from .errors import ImageError
from .images import image_extensions
from .try_grid import busiest_window

CROP_SIDE = 256
"""Side of the region shown, in output pixels (smaller outputs are shown whole)."""
SEARCH_PIXELS = 2_000_000
"""The region is searched on a subsample of about this many output pixels: a 40 MP output costs no more."""


@dataclass
class Card:
    """One file's card, as the page's script reads it (JSON)."""

    name: str
    status: str
    input: str | None = None  # links, relative to the page
    output: str | None = None
    input_size: list[int] | None = None
    output_size: list[int] | None = None
    seconds: float = 0.0
    model: str | None = None
    model_reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    before: str | None = None  # the crops, relative to the page
    after: str | None = None
    crop: list[int] | None = None  # left, top, width, height in output pixels
    crop_bytes: int = 0


def rows_from_report(report: Path) -> list[dict]:
    """The report's rows (`upscale dir --report`)."""
    try:
        doc = json.loads(report.read_text())
        return [row for row in doc["files"] if isinstance(row, dict) and "input" in row]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImageError(report, f"not an upscale report ({exc})") from None


def rows_from_files(inputs: Path, outputs: Path) -> list[dict]:
    """Rows made by pairing each picture under ``inputs`` with the output of the same relative name and any
    picture extension under ``outputs``; a picture without one is listed as having no output."""
    known = image_extensions()
    written: dict[Path, Path] = {}
    for path in sorted(outputs.rglob("*")):
        if path.is_file() and path.suffix.lower() in known:
            written.setdefault(path.relative_to(outputs).with_suffix(""), path)
    rows = []
    for path in sorted(inputs.rglob("*")):
        if path.is_file() and path.suffix.lower() in known:
            output = written.get(path.relative_to(inputs).with_suffix(""))
            rows.append({"input": str(path), "output": str(output) if output else None,
                         "status": "ok" if output else "no output"})
    return rows


def display_pixels(path: Path) -> np.ndarray:
    """The picture as the pipeline decodes it, in 8-bit RGB or RGBA for a browser."""
    picture = read_image(path)
    pixels = picture.pixels if picture.alpha is None else np.dstack([picture.pixels, picture.alpha])
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.shape[2] in (1, 2):  # grey (and alpha): grey to RGB
        pixels = np.dstack([np.repeat(pixels[..., :1], 3, axis=2), pixels[..., 1:]])
    return np.ascontiguousarray(pixels)


def changed_region(source: np.ndarray, output: np.ndarray, side: int = CROP_SIDE) -> tuple[int, int, int, int]:
    """(left, top, width, height), in output pixels, of the ``side``-square window where the output differs most
    from a bicubic enlargement of ``source``: where the model added, removed or sharpened."""
    h, w = output.shape[:2]
    step = max(1, math.ceil(math.sqrt(h * w / SEARCH_PIXELS)))
    sampled = output[::step, ::step, :3].astype(np.float32)
    enlarged = np.asarray(Image.fromarray(source[..., :3]).resize((sampled.shape[1], sampled.shape[0]),
                                                                  Image.Resampling.BICUBIC), np.float32)
    energy = np.abs(sampled - enlarged).sum(axis=2)
    left, top, _, _ = busiest_window(energy, max(1, side // step))
    width, height = min(side, w), min(side, h)
    return min(left * step, w - width), min(top * step, h - height), width, height


def crops(source: np.ndarray, output: np.ndarray, box: tuple[int, int, int, int]) -> tuple[Image.Image, Image.Image]:
    """(bicubic enlargement, output) of ``box``: the enlargement made from the input's matching region, exactly
    the box of a whole-picture bicubic enlargement to the output's size."""
    left, top, width, height = box
    fx, fy = source.shape[1] / output.shape[1], source.shape[0] / output.shape[0]
    mode = "RGBA" if source.shape[2] == 4 else "RGB"
    before = Image.fromarray(source, mode).resize(
        (width, height), Image.Resampling.BICUBIC, box=(left * fx, top * fy, (left + width) * fx, (top + height) * fy))
    after = Image.fromarray(np.ascontiguousarray(output[top : top + height, left : left + width]))
    return before, after


def card_for(row: dict, page_dir: Path, crop_dir: Path, index: int, lossless: bool = False) -> Card:
    """One row's card; its crops written to ``crop_dir`` when it has an output that decodes: WebP at quality 95
    (about 20 KiB a file for the two 256-pixel crops), or ``lossless`` (about 110 KiB, every pixel exact)."""
    source, output = Path(row["input"]), row.get("output")
    card = Card(name=source.name, status=str(row.get("status", "ok")), input=_link(source, page_dir),
                output=_link(Path(output), page_dir) if output else None, input_size=_size(row.get("input_size")),
                output_size=_size(row.get("output_size")), seconds=float(row.get("seconds") or 0.0),
                model=row.get("model"), model_reason=row.get("model_reason"),
                warnings=list(row.get("warnings") or []), error=row.get("error"))
    if not output or not Path(output).is_file() or card.status == "failed":
        return card
    try:
        before_pixels, after_pixels = display_pixels(source), display_pixels(Path(output))
    except ImageError as exc:
        card.warnings.append(f"not shown: {exc}")
        return card
    card.input_size = [before_pixels.shape[1], before_pixels.shape[0]]
    card.output_size = [after_pixels.shape[1], after_pixels.shape[0]]
    box = changed_region(before_pixels, after_pixels)
    card.crop = list(box)
    for kind, image in zip(("before", "after"), crops(before_pixels, after_pixels, box), strict=True):
        path = crop_dir / f"{index:05d}-{kind}.webp"
        image.save(path, "WEBP", **({"lossless": True, "quality": 60, "method": 2} if lossless else {"quality": 95}))
        setattr(card, kind, _link(path, page_dir))
        card.crop_bytes += path.stat().st_size
    return card


def _link(path: Path, page_dir: Path) -> str:
    """``path`` relative to the page's folder, as a URL path (so the page moves with its folder)."""
    return Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()


def _size(value: object) -> list[int] | None:
    return [int(v) for v in value] if isinstance(value, list | tuple) and len(value) == 2 else None


def write_page(cards: list[Card], page: Path, title: str) -> None:
    """The page: the template with the cards' JSON inlined (``</`` escaped so no value can end the script)."""
    template = resources.files("upscale").joinpath("compare.html").read_text(encoding="utf-8")
    data = json.dumps([asdict(c) for c in cards], ensure_ascii=False).replace("</", "<\\/")
    html = template.replace("/*CARDS*/[]", data).replace("{{TITLE}}", _escape(title))
    page.write_text(html, encoding="utf-8")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
