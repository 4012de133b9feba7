"""`upscale`: the root Typer app; each subcommand lives in its own module."""

from __future__ import annotations

import typer

from .. import __version__
from . import compare_cmd, data_cmd, devices_cmd, dir_cmd, eval_cmd, image_cmd, info_cmd, try_cmd

app = typer.Typer(
    name="upscale",
    help="Batch image super-resolution with ONNX models (onnxruntime: CUDA, WebGPU, DirectML or Core ML when "
         "usable, else the CPU).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("dir", epilog=dir_cmd.EXAMPLES)(dir_cmd.dir_command)
app.command("image")(image_cmd.image_command)
app.command("info")(info_cmd.info_command)
app.add_typer(info_cmd.models_app, name="models")
app.command("eval")(eval_cmd.eval_command)
app.command("devices")(devices_cmd.devices_command)
app.command("try")(try_cmd.try_command)
app.command("compare")(compare_cmd.compare_command)
app.add_typer(data_cmd.data_app, name="data")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"upscale {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Batch image super-resolution."""


def main() -> None:
    app()
