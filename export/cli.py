"""`upscale-export OUT.onnx`: write a self-describing ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import onnx
import typer
from rich.console import Console

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@app.command()
def export(
    output: Annotated[Path, typer.Argument(help="The .onnx file to write.")],
    bicubic: Annotated[int | None, typer.Option("--bicubic", min=1, max=8,
                                                 help="Build the bicubic-interpolation model of this scale.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Export a model to ONNX with the metadata of the upscale model contract."""
    if output.exists() and not force:
        err.print(f"[red]error:[/] {output}: exists (use --force to overwrite)")
        raise typer.Exit(1)
    if bicubic is None:
        err.print("[red]error:[/] nothing to export: give --bicubic S")
        raise typer.Exit(2)
    from .bicubic import build_bicubic_model

    model = build_bicubic_model(bicubic)
    output.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, output)
    err.print(f"wrote {output} ({output.stat().st_size} bytes): bicubic x{bicubic}")


def main() -> None:
    app()
