"""Procedural pictures unlike photographs: text and user interfaces, flat shapes, star fields.

The training folders people have at hand (T91, BSD, DIV2K) are photographs, so a model learns nothing of a slide's
one-pixel text edges or a night sky's points of light, the pictures where the int8 twins depart most from their
float models (MODEL_CARD.md). `--graphics N` adds N of these pictures to the training set, drawn from the seed alone
(the same N, the same pictures), so no folder of screenshots need be found or shipped: hard edges in flat colours
(Pillow's drawing does not antialias), text from 8 to 40 pixels high in the font Pillow bundles, thin lines, and
dark skies of points from under a pixel to a few across. For the int8 twins they did not pay: their strong
activations raise the ranges, and every step with them (the measurements are in MODEL_CARD.md).
"""

from __future__ import annotations

import string

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SIZE = (480, 320)  # width, height: BSD's pictures
LETTERS = string.ascii_letters + string.digits + "     .,:-()%"


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (its fixed bitmap font where Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):
        return ImageFont.load_default()


def text_picture(rng: np.random.Generator) -> Image.Image:
    """A page or screen: panels in flat colours, rules, and lines of random text in random sizes and colours."""
    picture = Image.new("RGB", SIZE, _colour(rng) if rng.random() < 0.5 else (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(0, 4))):
        x0, y0 = int(rng.integers(0, SIZE[0])), int(rng.integers(0, SIZE[1]))
        draw.rectangle((x0, y0, x0 + int(rng.integers(40, 300)), y0 + int(rng.integers(20, 150))), fill=_colour(rng))
    y = int(rng.integers(0, 20))
    while y < SIZE[1]:
        height = int(rng.integers(8, 41))
        words = "".join(rng.choice(list(LETTERS), int(rng.integers(5, 60))))
        ink = (0, 0, 0) if rng.random() < 0.4 else _colour(rng)
        draw.text((int(rng.integers(0, 40)), y), words, fill=ink, font=_font(height))
        if rng.random() < 0.2:
            draw.line((0, y + height + 2, SIZE[0], y + height + 2), fill=_colour(rng), width=int(rng.integers(1, 3)))
        y += height + int(rng.integers(2, 16))
    return picture


def shapes_picture(rng: np.random.Generator) -> Image.Image:
    """Diagrams and pixel art: rectangles, ellipses, triangles and lines of one to four pixels, in flat colours."""
    picture = Image.new("RGB", SIZE, _colour(rng))
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(10, 40))):
        x0, y0 = rng.integers(-40, SIZE[0]), rng.integers(-40, SIZE[1])
        x1, y1 = x0 + rng.integers(2, 200), y0 + rng.integers(2, 200)
        box = (int(x0), int(y0), int(x1), int(y1))
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle(box, fill=_colour(rng), outline=_colour(rng) if rng.random() < 0.5 else None)
        elif kind == 1:
            draw.ellipse(box, fill=_colour(rng))
        elif kind == 2:
            draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=_colour(rng))
        else:
            draw.line(box, fill=_colour(rng), width=int(rng.integers(1, 5)))
    return picture


def star_field(rng: np.random.Generator) -> Image.Image:
    """A night sky: a dark background with faint noise and Gaussian points of light, from under a pixel across
    (single bright pixels, the hardest case) to a few, some saturated, in slightly varied colours."""
    height, width = SIZE[1], SIZE[0]
    background = np.full((height, width, 3), rng.uniform(0, 20), np.float32)
    sky = background + rng.normal(0, rng.uniform(0, 3), (height, width, 1))
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(int(rng.integers(50, 400))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        sigma, peak = rng.uniform(0.3, 3.0), rng.uniform(20, 400)
        y0, y1 = max(int(cy - 4 * sigma) - 1, 0), min(int(cy + 4 * sigma) + 2, height)
        x0, x1 = max(int(cx - 4 * sigma) - 1, 0), min(int(cx + 4 * sigma) + 2, width)
        spot = np.exp(-((yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2) / (2 * sigma**2))
        sky[y0:y1, x0:x1] += peak * spot[..., None] * rng.uniform(0.7, 1.0, 3)
    return Image.fromarray(np.clip(np.rint(sky), 0, 255).astype(np.uint8))


KINDS = (text_picture, shapes_picture, star_field)


def graphics_pictures(count: int, seed: int) -> list[np.ndarray]:
    """``count`` procedural pictures (HxWx3 uint8), in turn text, shapes and star fields; picture i depends on
    (seed, i) alone."""
    return [np.asarray(KINDS[i % len(KINDS)](np.random.default_rng([seed, i, 0x6AF])))
            for i in range(count)]
