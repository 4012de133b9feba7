"""`upscale try IMAGE`: one picture through bicubic and several models or strengths, in one labelled grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from ..catalogue import auto_pair, auto_scale
from ..decoding import read_image
from ..engines import ModelSpec
from ..errors import UsageError
from ..terminal import error_boundary, note, out
from ..try_grid import cell_for, detailed_box, grid, score
from .common import DeviceOption


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
    device: DeviceOption = "auto",
) -> None:
    """Show one picture's most detailed region through bicubic and each model or strength, side by side at 1:1:
    each cell is what `upscale image` writes there."""
    with error_boundary():
        picture = read_image(image)
        if scale <= 1 or crop < 8:
            raise UsageError("upscale try: --scale must be above 1 and --crop at least 8")
        clean, photo = auto_pair(auto_scale(scale))
        models = model if model is not None else [m for m in (clean, photo) if m]
        strengths = strength if strength is not None else ([0.25, 0.5, 0.75] if model is None and photo else [])
        box = detailed_box(picture.pixels, crop)
        note(f"crop {box[0]},{box[1]} {box[2]}x{box[3]} (input pixels) at x{scale:g}")
        cells = [cell_for("bicubic", None, picture, scale, box)]
        for name in models:
            cells.append(cell_for(name, ModelSpec(name, device, None, scale).load(), picture, scale, box))
        for s in strengths:
            loaded = ModelSpec("auto", device, None, scale, s).load()
            cells.append(cell_for(f"strength {s:g}", loaded, picture, scale, box))
        grid(cells).save(out_file)
        if reference is not None:
            truth = np.asarray(read_image(reference).pixels)
            truth = truth if truth.shape[2] == 3 else np.repeat(truth, 3, axis=2)
            if truth.shape != cells[0].output.shape:
                raise UsageError(f"{reference}: {truth.shape[1]}x{truth.shape[0]}, not the output's "
                                 f"{cells[0].output.shape[1]}x{cells[0].output.shape[0]}")
            for cell in cells:
                out.print(f"{cell.label}: {score(cell, truth, scale):.2f} dB (Y-PSNR)", markup=False)
        note(f"{len(cells)} cells ({', '.join(c.label for c in cells)}) -> {out_file}")
