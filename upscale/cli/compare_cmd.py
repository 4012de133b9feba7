"""`upscale compare IN OUT`: a before/after page for a finished batch (`upscale.compare_page`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..compare_page import card_for, rows_from_files, rows_from_report, write_page
from ..errors import UsageError
from ..planning import is_uri
from ..terminal import error_boundary, note


def compare_command(
    input_dir: Annotated[Path, typer.Argument(help="The batch's input folder.", show_default=False)],
    output_dir: Annotated[Path, typer.Argument(help="Its output folder.", show_default=False)],
    page: Annotated[Path | None, typer.Option("--out", "-o", help="The page (default: OUT/compare.html); its "
                                                                  "crops go in a folder beside it.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="The run's --report JSON: statuses, models, "
                                                                 "reasons, warnings (default: pair files by name).")]
    = None,
    lossless: Annotated[bool, typer.Option("--lossless", help="Lossless crops (every pixel exact; ~5x the bytes).")]
    = False,
) -> None:
    """Write a self-contained page with a before/after slider per file at 1:1 on its most changed region, with
    filters; open it in any browser, offline."""
    with error_boundary():
        for folder in (input_dir, output_dir):
            if is_uri(str(folder)) or not folder.is_dir():
                raise UsageError(f"{folder}: not a local folder (upscale compare reads local folders)")
        page = page or output_dir / "compare.html"
        rows = rows_from_report(report) if report else rows_from_files(input_dir, output_dir)
        if not rows:
            raise UsageError(f"{input_dir}: no pictures to compare")
        crop_dir = page.parent / f"{page.stem}-crops"
        crop_dir.mkdir(parents=True, exist_ok=True)
        for stale in [*crop_dir.glob("*-before.webp"), *crop_dir.glob("*-after.webp")]:
            stale.unlink()  # a previous page's crops: this page writes its own
        cards = []
        for index, row in enumerate(rows):
            cards.append(card_for(row, page.parent, crop_dir, index, lossless))
        write_page(cards, page, f"upscale: {input_dir.name} → {output_dir.name}")
        shown = [c for c in cards if c.before]
        mean = sum(c.crop_bytes for c in shown) / len(shown) if shown else 0
        note(f"{len(cards)} files, {len(shown)} with crops ({mean / 1024:.0f} KiB a file) -> {page}")
