"""`upscale info MODEL` and `upscale models`: what a model is and where it came from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..catalogue import entry, roles
from ..community import BY_NAME, COMMUNITY, cached, fetch, is_fetched
from ..errors import UsageError
from ..registry import bundled_models
from ..terminal import error, error_boundary, note, out
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


models_app = typer.Typer(help="The bundled models, and the community's fetched by name.")


@models_app.callback(invoke_without_command=True)
def models_command(ctx: typer.Context) -> None:
    """List the models bundled with the package, and the community models `upscale models get` fetches."""
    if ctx.invoked_subcommand is not None:
        return
    with error_boundary():
        table = Table("bundled model", "x", "use it for")
        for name in bundled_models():
            known = entry(name)
            label = f"{name} ({', '.join(roles(name))})" if roles(name) else name
            table.add_row(label, str(known.scale) if known else "?", Text(known.purpose if known else ""))
        out.print(table)
        community = Table("community model", "x", "use it for", "fetched")
        for model in COMMUNITY:
            community.add_row(model.name, str(model.scale), f"{model.use_for} ({model.licence})",
                              "yes" if is_fetched(model) else "no")
        out.print(community)
        out.print("More on one: upscale info NAME. A community one: upscale models get NAME.")


@models_app.command("get")
def get_command(
    names: Annotated[list[str], typer.Argument(help="Community models to fetch (see upscale models).")],
    mirror: Annotated[str | None, typer.Option("--mirror", help="Fetch MIRROR/<file> instead of the release "
                                                                "(a copy, an offline cache).")] = None,
) -> None:
    """Fetch community models into the cache, each checked against its release's sha256."""
    with error_boundary():
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise UsageError(f"unknown community model {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
        failed = False
        for name in names:
            model = BY_NAME[name]
            if is_fetched(model):
                note(f"{name}: already fetched ({cached(model)})")
                continue
            try:
                path = fetch(model, mirror)
            except (OSError, ValueError) as exc:
                error(f"{name}: not fetched: {getattr(exc, 'reason', None) or exc}")
                failed = True
                continue
            note(f"{name}: fetched to {path} ({model.licence}); use it with --model {name}")
    if failed:
        raise typer.Exit(1)
