"""`upscale devices`: which GPUs this machine can use for upscaling, and for each it cannot, why and the fix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ..device import DeviceError, candidates
from ..providers import GPU_KINDS, INSTALL, adapters, unusable_reason
from ..terminal import error_boundary, out


def devices_command(
    trial: Annotated[bool, typer.Option("--trial", help="Also run the default model's trial on each usable GPU "
                                                         "(a few seconds each).")] = False,
) -> None:
    """List the devices --device can name: each provider, its adapters, and for one that cannot run here the
    reason and the command that installs it."""
    with error_boundary():
        table = Table("--device", "status", "adapters, or what to do")
        table.add_row("cpu", "usable", "the processor")
        for kind in GPU_KINDS:
            reason = unusable_reason(kind)
            if reason is not None:
                table.add_row(kind, Text("not usable", "yellow"), Text(f"{reason}; {INSTALL[kind]}"))
                continue
            status = _trial(kind) if trial else "usable"
            table.add_row(kind, Text(status), Text(", ".join(adapters(kind)) or "default adapter"))
        tried = candidates("auto")[0]
        out.print(table)
        out.print(f"--device auto tries: {', '.join(str(d) for d in tried)}"
                  + ("" if tried[0].is_gpu else " (no GPU: the CPU)"))


def _trial(kind: str) -> str:
    """``passed`` or the trial's one-line failure, for the default model."""
    from ..model import load_model  # the trial needs the model's session: imported only for --trial

    try:
        loaded = load_model("default", kind)
    except DeviceError as exc:
        return f"trial failed: {exc}"
    return "trial passed" + (f" ({loaded.note})" if loaded.note else "")
