"""`upscale data get SETS...` and `upscale data list`: the standard image sets for `upscale eval` and training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..datasets import MANIFEST, get, load_manifest
from ..errors import UsageError
from ..terminal import error, error_boundary, note, out

data_app = typer.Typer(help="The standard image sets (Set5, Set14, T91, BSD200, BSDS500): fetch and list them.",
                       no_args_is_help=True)
ToOption = Annotated[Path, typer.Option("--to", help="Where the set folders go.")]
ManifestOption = Annotated[Path, typer.Option("--manifest", help="Another manifest (the addresses and sha256 of "
                                                                 "each file).", show_default=False)]


@data_app.command("get")
def get_command(
    sets: Annotated[list[str], typer.Argument(help="set5, set14, t91, bsd200, bsds500-test200 (see upscale data "
                                                   "list).")],
    to: ToOption = Path("data"),
    mirror: Annotated[str | None, typer.Option("--mirror", help="Fetch from MIRROR/<folder>/<file> instead (a "
                                                                "copy, an offline cache).")] = None,
    manifest: ManifestOption = MANIFEST,
) -> None:
    """Fetch image sets into TO/<Set>, each file checked against its sha256; files already there are kept."""
    with error_boundary():
        known = load_manifest(manifest)
        unknown = [s for s in sets if s.lower() not in known]
        if unknown:
            raise UsageError(f"unknown set {', '.join(unknown)} (known: {', '.join(known)})")
        failed = False
        for key in sets:
            outcome = get(key.lower(), known[key.lower()], to, mirror)
            for cause, urls in outcome.failures.items():  # one line per cause, not one per file
                error(f"{key}: {len(urls)} of {outcome.total} files not fetched: {cause} (first: {urls[0]})")
            failed |= bool(outcome.failures)
            note(f"{key}: {outcome.have} of {outcome.total} files in {outcome.folder} ({outcome.fetched} fetched now)")
    if failed:
        raise typer.Exit(1)


@data_app.command("list")
def list_command(to: ToOption = Path("data"), manifest: ManifestOption = MANIFEST) -> None:
    """The sets known, where each goes, its origin and its licence."""
    with error_boundary():
        for key, entry in load_manifest(manifest).items():
            out.print(f"{key}: {len(entry['files'])} images -> {to / entry['folder']}; {entry['origin']}; "
                      f"licence: {entry['licence']}", markup=False, highlight=False, soft_wrap=True)
