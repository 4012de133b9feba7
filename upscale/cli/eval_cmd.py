"""`upscale eval HR_DIR... --model M --scale S`: Y-PSNR/SSIM by the standard SR protocol."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..degrade import SPEC_HELP, parse_spec
from ..errors import UsageError
from ..evaluate import as_json, bicubic_upscaler, evaluate, model_upscaler, summarise
from ..files import write_atomic
from ..precision import choose as choose_precision
from ..terminal import error_boundary, out, warning
from .common import (
    DeviceOption,
    PrecisionChoice,
    PrecisionOption,
    StrengthOption,
    ThreadsOption,
    TileOption,
    model_label,
    open_model,
)


def eval_command(
    folders: Annotated[list[Path], typer.Argument(help="Folders of ground-truth (high-resolution) images.")],
    scale: Annotated[int, typer.Option("--scale", "-s", min=1, help="Upscaling factor to evaluate.")],
    model: Annotated[str, typer.Option(
        "--model", "-m", help="As for `upscale dir` ('auto' chooses per image, a name, an .onnx or .pth file), or "
                              "'bicubic'.")] = "default",
    device: DeviceOption = "auto",
    tile: TileOption = None,
    threads: ThreadsOption = None,
    strength: StrengthOption = None,
    precision: PrecisionOption = PrecisionChoice.auto,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the scores as JSON here.")] = None,
    per_image: Annotated[bool, typer.Option("--per-image", help="Print every image, not only the means.")] = False,
    degrade: Annotated[list[str], typer.Option(
        "--degrade", help=f"Degrade the LR input first (repeatable, one table): {SPEC_HELP}.")] = [],  # noqa: B006
) -> None:
    """Score a model (or bicubic interpolation) on HR images: PSNR and SSIM of the Y channel."""
    with error_boundary():
        for folder in folders:
            if not folder.is_dir():
                raise UsageError(f"{folder}: not a folder (the standard sets: upscale data get set5 set14)")
        specs = degrade or ["clean"]
        for spec in specs:
            try:
                parse_spec(spec)
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        if model == "bicubic":
            upscaler, label = bicubic_upscaler(scale), "bicubic (MATLAB imresize)"
        else:
            model = choose_precision(model, precision.value, device, blend=strength is not None)
            loaded = open_model(model, device, threads, factor=scale, strength=strength)
            upscaler, label = model_upscaler(loaded, scale, tile), model_label(loaded)
            if loaded.scale != scale:  # allowed (it is what `upscale dir --scale` does), but not the model's own score
                warning(f"{label} is a {loaded.scale}x model: scoring it at x{scale} runs it and resizes "
                        f"with Lanczos, so this measures that pipeline, not the model at its own scale")
        scores = [score for spec in specs for score in evaluate(folders, scale, upscaler, spec)]
        if not scores:
            raise UsageError("no images found in " + ", ".join(map(str, folders))
                             + " (the standard sets: upscale data get set5 set14)")
        table = Table("dataset", "image", f"PSNR (Y, x{scale})", "SSIM", title=label)
        if per_image:
            for s in scores:
                table.add_row(s.group, s.image, f"{s.psnr:.2f}", f"{s.ssim:.4f}")
        for name, mean in summarise(scores).items():
            table.add_row(f"[bold]{name}[/]", f"mean of {mean['images']}", f"[bold]{mean['psnr']:.2f}",
                          f"[bold]{mean['ssim']:.4f}")
        out.print(table)
        if json_path:
            doc = as_json(scores, {"model": label, "scale": scale, "folders": [str(f) for f in folders],
                                   "degradations": specs})
            write_atomic(json_path, (json.dumps(doc, indent=2) + "\n").encode())
