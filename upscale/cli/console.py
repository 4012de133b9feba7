"""The consoles of all three commands, and the one way to print a user-facing line.

User text (paths, error causes) is escaped: rich would otherwise read ``[ray]`` or ``photo[1].png``
as markup and swallow it.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error(message: object) -> None:
    err.print(f"[red]error:[/] {escape(str(message))}")


def warning(message: object) -> None:
    err.print(f"[yellow]warning:[/] {escape(str(message))}")


def note(message: object) -> None:
    err.print(escape(str(message)))
