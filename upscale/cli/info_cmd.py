"""`upscale info MODEL` and `upscale models`: what a model is and where it came from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..catalogue import roles
from ..registry import bundled_models
from ..terminal import error_boundary, out
from .common import DeviceOption, open_model


def info_command(
    model: Annotated[str, typer.Argument(help="Bundled model name, 'default', or a path to an .onnx file.")],
    device: DeviceOption = "cpu",
) -> None:
    """Print a model's contract: scale, architecture, tile overlap, provenance."""
    with error_boundary():
        loaded = open_model(model, device, None, quiet=True)
        info = loaded.info
        table = Table(show_header=False, box=None)
        table.add_row("file", Text(str(loaded.path)))
        table.add_row("input", f"{loaded.input_name} NCHW {loaded.input_dtype.__name__} RGB [0,1]")
        rows = [
            ("scale", str(info.scale)), ("architecture", info.architecture),
            ("tile overlap", f"{info.tile_overlap} input pixels"),
            ("size needs", f"multiple of {info.multiple_of}, at least {info.min_size}"),
            ("value range", info.value_range), ("channel order", info.channel_order),
            ("training data", info.training_data or "-"), ("validation", info.validation or "-"),
            ("description", info.description or "-"), ("tiling", info.tiling), ("input sizes", info.shapes),
        ]
        if info.source:
            rows.append(("converted from", info.source))
        for key, value in rows:
            table.add_row(key, Text(value))  # plain text: metadata is the model author's, never rich markup
        if not info.has_metadata:
            table.add_row("note", "no upscale metadata: scale found by a probe run, default tile overlap")
        out.print(table)


def models_command() -> None:
    """List the models bundled with the package."""
    with error_boundary():
        table = Table("name", "scale", "architecture", "description")
        for name, path in bundled_models().items():
            info = open_model(str(path), "cpu", None, quiet=True).info
            label = f"{name} ({', '.join(roles(name))})" if roles(name) else name
            table.add_row(label, str(info.scale), Text(info.architecture), Text(info.description))
        out.print(table)
