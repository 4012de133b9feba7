"""`upscale try IMAGE`: one picture through bicubic and several models or strengths, in one labelled grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..bicubic import imresize
from ..catalogue import auto_pair, auto_scale
from ..decoding import read_image
from ..degrade import SPEC_HELP, apply_spec, image_seed, parse_spec
from ..engines import ModelSpec
from ..errors import UsageError
from ..images import Picture, as_rgb
from ..precision import choose as choose_precision
from ..terminal import error_boundary, note, out
from ..try_grid import Cell, cell_for, detailed_box, grid, reference_cell, score
from .common import DeviceOption, PrecisionChoice, PrecisionOption


def try_command(
    image: Annotated[Path, typer.Argument(help="The picture to try.")],
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="A model to show (repeatable); "
                                                    "default: the clean and the photo model.")] = None,
    strength: Annotated[list[float] | None, typer.Option("--strength", help="A blend to show (repeatable); "
                                                         "default: 0.25, 0.5 and 0.75.")] = None,
    scale: Annotated[float, typer.Option("--scale", "-s", help="The factor.")] = 2.0,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where the grid goes.")] = Path("try.png"),
    crop: Annotated[int, typer.Option("--crop", help="Side of the region shown, in input pixels.")] = 64,
    reference: Annotated[Path | None, typer.Option("--reference", help="A high-resolution original of the "
                                                   "output's size: Y-PSNR per cell.")] = None,
    shrink: Annotated[bool, typer.Option("--shrink", help="IMAGE is an original: try on its bicubic reduction by "
                                         "--scale, with IMAGE as the reference (and a cell).")] = False,
    degrade: Annotated[str | None, typer.Option("--degrade", help=f"With --shrink, degrade the reduction first: "
                                                f"{SPEC_HELP}.")] = None,
    zoom: Annotated[int, typer.Option("--zoom", min=1, max=8, help="Show each cell enlarged N times (nearest "
                                      "neighbour: the pixels stay visible).")] = 1,
    device: DeviceOption = "auto",
    precision: PrecisionOption = PrecisionChoice.auto,
) -> None:
    """Show one picture's most detailed region through bicubic and each model or strength, side by side at 1:1:
    each cell is what `upscale image` writes there."""
    with error_boundary():
        if scale <= 1 or crop < 8:
            raise UsageError("upscale try: --scale must be above 1 and --crop at least 8")
        if degrade and not shrink:
            raise UsageError("upscale try: --degrade applies to --shrink's reduction (a picture of your own is "
                             "tried as it is)")
        original = None
        if shrink:
            picture, original = shrunk(image, scale, degrade)
        else:
            picture = read_image(image)
        clean, photo = auto_pair(auto_scale(scale))
        models = model if model is not None else [m for m in (clean, photo) if m]
        strengths = strength if strength is not None else ([0.25, 0.5, 0.75] if model is None and photo else [])
        box = detailed_box(picture.pixels, crop)
        note(f"crop {box[0]},{box[1]} {box[2]}x{box[3]} (input pixels) at x{scale:g}")
        cells = [cell_for("bicubic", None, picture, scale, box)]
        for name in models:
            chosen = choose_precision(name, precision.value, device)  # as `upscale image` would run it
            cells.append(cell_for(chosen, ModelSpec(chosen, device, None, scale).load(), picture, scale, box))
        for s in strengths:
            loaded = ModelSpec("auto", device, None, scale, s).load()
            cells.append(cell_for(f"strength {s:g}", loaded, picture, scale, box))
        truth = original if original is not None else _reference(reference)
        if truth is not None:
            if truth.shape != cells[0].output.shape:
                raise UsageError(f"{reference}: {truth.shape[1]}x{truth.shape[0]}, not the output's "
                                 f"{cells[0].output.shape[1]}x{cells[0].output.shape[0]}")
            scored = [(cell, score(cell, truth, scale)) for cell in cells]
            for cell, db in scored:
                out.print(f"{cell.label}: {db:.2f} dB (Y-PSNR)", markup=False)
            cells = [Cell(f"{cell.label}  {db:.2f} dB", cell.pixels, cell.output) for cell, db in scored]
        if original is not None:
            cells.append(reference_cell(original, scale, box))
        grid(cells, zoom=zoom).save(out_file)
        note(f"{len(cells)} cells ({', '.join(c.label for c in cells)}) -> {out_file}")


def _reference(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    return as_rgb(read_image(path).pixels)


def shrunk(image: Path, scale: float, degrade: str | None) -> tuple[Picture, np.ndarray]:
    """(the reduced picture to try, the original cropped to a multiple of the scale): `upscale eval`'s protocol,
    MATLAB's bicubic, then ``degrade``."""
    if scale != int(scale):
        raise UsageError("upscale try --shrink: --scale must be a whole number (2, 3, 4)")
    factor = int(scale)
    hr = _reference(image)
    hr = hr[: hr.shape[0] // factor * factor, : hr.shape[1] // factor * factor]
    try:
        steps = parse_spec(degrade or "clean")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return Picture(apply_spec(imresize(hr, 1 / factor), steps, image_seed(image.name))), hr
