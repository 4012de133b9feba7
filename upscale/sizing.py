"""What size each output is: a factor (``--scale``), or an exact size (``--width``, ``--height``, ``--fit``,
``--long-side``) worked out per picture from its own size.

The model (and its family at other scales) then runs the passes the factor needs (`picture.chain_for`) and one
Lanczos resize lands on the exact size; ``cover`` crops the centre after that resize, ``stretch`` resizes each
axis on its own. A request that makes the picture smaller (or keeps its size) runs no model at all: one resize,
said in the report. The same `Target` drives the memory prediction, the names' re-run checks and the work itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Fit(StrEnum):
    """How ``--width`` and ``--height`` together are met."""

    CONTAIN = "contain"  # the largest size inside W x H, aspect kept (one side exact)
    COVER = "cover"  # the smallest size over W x H, aspect kept, then the centre W x H cropped
    STRETCH = "stretch"  # exactly W x H, each axis scaled on its own


@dataclass(frozen=True)
class SizeRequest:
    """An exact output size; ValueError, with a one-line reason, for combinations that cannot be met."""

    width: int | None = None
    height: int | None = None
    long_side: int | None = None
    fit: Fit | None = None  # only with both width and height (default contain)

    def __post_init__(self) -> None:
        for name in ("width", "height", "long_side"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.long_side is not None and (self.width or self.height):
            raise ValueError("--long-side sets the size alone: give it without --width and --height")
        if self.fit is not None and not (self.width and self.height):
            raise ValueError("--fit needs both --width and --height (one of them alone keeps the aspect)")
        if not (self.width or self.height or self.long_side):
            raise ValueError("an exact size needs --width, --height or --long-side")


@dataclass(frozen=True)
class Target:
    """One picture's output: the factor the model must reach, the size the resize lands on, and (cover) the
    centre box kept from it."""

    factor: float  # the larger of the two axes' factors: what the model passes must reach
    resize: tuple[int, int]  # (width, height) of the one resize
    crop: tuple[int, int, int, int] | None = None  # (left, top, right, bottom) inside ``resize``

    @property
    def size(self) -> tuple[int, int]:
        """The output's (width, height)."""
        if self.crop is None:
            return self.resize
        left, top, right, bottom = self.crop
        return right - left, bottom - top

    @property
    def runs_model(self) -> bool:
        return self.factor > 1


def target_for(width: int, height: int, factor: float, request: SizeRequest | None = None) -> Target:
    """The `Target` for a ``width`` x ``height`` picture: by ``request`` when given, else by ``factor``."""
    if request is None:
        return Target(factor, (round(width * factor), round(height * factor)))
    w, h, side = request.width, request.height, request.long_side
    if side is not None:
        f = side / max(width, height)
        return Target(f, (side, max(1, round(height * f))) if width >= height else (max(1, round(width * f)), side))
    if w and not h:
        f = w / width
        return Target(f, (w, max(1, round(height * f))))
    if h and not w:
        f = h / height
        return Target(f, (max(1, round(width * f)), h))
    assert w and h
    fx, fy = w / width, h / height
    fit = request.fit or Fit.CONTAIN
    if fit is Fit.STRETCH:
        return Target(max(fx, fy), (w, h))
    if fit is Fit.CONTAIN:
        f = min(fx, fy)
        return Target(f, (min(w, max(1, round(width * f))), min(h, max(1, round(height * f)))))
    f = max(fx, fy)
    rw, rh = max(w, round(width * f)), max(h, round(height * f))
    left, top = (rw - w) // 2, (rh - h) // 2
    return Target(f, (rw, rh), (left, top, left + w, top + h))
