"""``upscale try IMAGE``: one picture's most detailed region through bicubic and each model or strength asked,
side by side at 1:1, each cell labelled: which model suits these pictures is then seen, not read.

Each model upscales the whole picture through the engine (`picture.upscale_picture`, as ``upscale image`` does),
and the same region is cropped from each output: a cell is exactly what ``upscale image`` would write there.
The region is the window of the input with the most gradient energy (edges and texture, where models differ).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .images import Picture, as_rgb
from .metrics import y_psnr_ssim
from .model import UpscaleModel
from .picture import UpscaleOptions, upscale_picture

LABEL_HEIGHT = 16
"""Pixels of the strip under each cell that holds its label."""
GAP = 4


@dataclass(frozen=True)
class Cell:
    label: str
    pixels: np.ndarray  # the crop, HxWx3 uint8
    output: np.ndarray  # the whole output, for scoring against a reference


def detailed_box(pixels: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the ``side`` x ``side`` input window (the whole picture where smaller) with
    the most gradient energy."""
    grey = pixels.astype(np.float64).mean(axis=2)
    gy, gx = np.gradient(grey)
    return busiest_window(gx * gx + gy * gy, side)


def busiest_window(energy: np.ndarray, side: int) -> tuple[int, int, int, int]:
    """(left, top, width, height) of the ``side``-square window (clipped to the map) holding the most ``energy``,
    searched in steps of a quarter side over a summed-area table."""
    h, w = energy.shape
    bw, bh = min(side, w), min(side, h)
    table = np.pad(np.cumsum(np.cumsum(energy, axis=0, dtype=np.float64), axis=1), ((1, 0), (1, 0)))
    step = max(1, min(bw, bh) // 4)
    tops, lefts = np.arange(0, h - bh + 1, step), np.arange(0, w - bw + 1, step)
    totals = (table[tops[:, None] + bh, lefts[None, :] + bw] - table[tops[:, None], lefts[None, :] + bw]
              - table[tops[:, None] + bh, lefts[None, :]] + table[tops[:, None], lefts[None, :]])
    row, column = np.unravel_index(int(np.argmax(totals)), totals.shape)
    return int(lefts[column]), int(tops[row]), bw, bh


def cell_for(label: str, model: UpscaleModel | None, picture: Picture, factor: float,
             box: tuple[int, int, int, int]) -> Cell:
    """One cell: the picture upscaled (by ``model``, or bicubic where None) and the box's region of the output."""
    colour = as_rgb(picture.pixels)
    if model is None:
        size = (round(picture.size[0] * factor), round(picture.size[1] * factor))
        output = np.asarray(Image.fromarray(colour).resize(size, Image.Resampling.BICUBIC))
    else:
        upscaled = upscale_picture(model, Picture(colour), UpscaleOptions(factor=factor))
        output = upscaled.pixels
    left, top, width, height = box
    f = output.shape[1] / picture.size[0]
    crop = output[round(top * f):round((top + height) * f), round(left * f):round((left + width) * f)]
    return Cell(label, np.ascontiguousarray(crop), output)


def reference_cell(original: np.ndarray, factor: float, box: tuple[int, int, int, int]) -> Cell:
    """The original's region matching ``box`` (input pixels of its reduction by ``factor``)."""
    left, top, width, height = (round(v * factor) for v in box)
    return Cell("original", np.ascontiguousarray(original[top : top + height, left : left + width]), original)


def grid(cells: list[Cell], columns: int = 3, zoom: int = 1) -> Image.Image:
    """The cells in rows of ``columns``, each enlarged ``zoom`` times (nearest neighbour) with its label on a white
    strip beneath it."""
    if zoom > 1:
        cells = [Cell(c.label, np.repeat(np.repeat(c.pixels, zoom, axis=0), zoom, axis=1), c.output) for c in cells]
    ch, cw = cells[0].pixels.shape[:2]
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    canvas = Image.new("RGB", (columns * (cw + GAP) - GAP, rows * (ch + LABEL_HEIGHT + GAP) - GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for i, cell in enumerate(cells):
        x, y = (i % columns) * (cw + GAP), (i // columns) * (ch + LABEL_HEIGHT + GAP)
        canvas.paste(Image.fromarray(cell.pixels), (x, y))
        draw.text((x + 2, y + ch + 2), cell.label, fill="black")
    return canvas


def score(cell: Cell, reference: np.ndarray, factor: float) -> float:
    """Y-PSNR of the cell's whole output against a reference of the output's size."""
    return y_psnr_ssim(cell.output, reference, max(1, round(factor)))[0]
