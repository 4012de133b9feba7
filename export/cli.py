"""`upscale-export OUT.onnx --checkpoint RUN/best.pt`: write a self-describing ONNX model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from upscale.errors import UsageError
from upscale.files import write_atomic
from upscale.terminal import error_boundary, note, out

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@app.command()
def export(
    output: Annotated[Path, typer.Argument(help="The .onnx file to write.")],
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", "-c", help="A checkpoint of upscale-train (RUN/best.pt), or third-party weights (.pth, "
                                   ".safetensors, .ckpt) of an architecture spandrel knows.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Write float16 weights and I/O.")] = False,
    validation: Annotated[str, typer.Option("--validation",
                                            help="Quality note for the metadata (default: from the checkpoint).")] = "",
    training_data: Annotated[str, typer.Option(
        "--training-data", help="Training-data note for the metadata (default: the --data folder names).")] = "",
    purpose: Annotated[str, typer.Option(
        "--purpose", help="What the model is for, added to the metadata's description (e.g. real photos).")] = "",
    bicubic: Annotated[int | None, typer.Option(
        "--bicubic", min=1, max=8, help="Instead: build the bicubic-interpolation model of this scale.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Export a trained checkpoint (or bicubic interpolation) to ONNX with the upscale model contract."""
    with error_boundary():
        if (checkpoint is None) == (bicubic is None):
            raise UsageError("give exactly one of --checkpoint PATH or --bicubic S")
        if output.exists() and not force:
            raise UsageError(f"{output}: exists (use --force to overwrite)")
        if bicubic is not None:
            from .bicubic import build_bicubic_model

            write_atomic(output, build_bicubic_model(bicubic).SerializeToString())
            note(f"wrote {output} ({output.stat().st_size} bytes): bicubic x{bicubic}")
            return
        try:
            import torch  # noqa: F401
        except ImportError:
            from upscale.train import TORCH_HINT

            raise UsageError(f"--checkpoint {TORCH_HINT}") from None
        from .onnx_export import export_checkpoint

        summary = export_checkpoint(checkpoint, output, fp16, validation, training_data, purpose)
    table = Table(show_header=False, box=None, title=f"wrote {summary.path}")
    for key, value in [
        ("architecture", f"{summary.arch} x{summary.scale}"), ("parameters", f"{summary.params:,}"),
        ("MACs / output pixel", f"{summary.macs_per_output_pixel:,.0f}" if summary.macs_per_output_pixel else "-"),
        ("receptive field", f"{summary.receptive_field} input pixels"), ("tiling", summary.tiling),
        ("file size", f"{summary.file_bytes / 1024:.1f} KiB"),
        ("dtype", summary.dtype or ("float16" if summary.fp16 else "float32")),
        ("parity vs PyTorch", summary.parity_levels or
         f"max abs {summary.parity_max_abs:.2e} (bound {summary.tolerance:.0e})"),
        ("input sizes", summary.shapes),
    ]:
        table.add_row(key, value)
    out.print(table)


def main() -> None:
    app()
