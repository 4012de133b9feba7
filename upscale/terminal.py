"""The terminal side of all three commands: the consoles, the one way to print a user-facing line, and the error
boundary that turns expected errors into one line and an exit code.

It imports nothing heavy (rich, typer, the error types), so that upscale-train and upscale-export get it without
onnxruntime, the runner or the pipeline. User text (paths, error causes) is escaped: rich would otherwise read
``[ray]`` or ``photo[1].png`` as markup and swallow it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from .errors import UNEXPECTED, DeviceError, UpscaleError, UsageError, debugging, first_line

# Exits a command chose: typer's Exit and Abort, and click's usage errors (ClickException), which newer typer vendors
# (click is then not installed at all) and older typer re-exports: found through typer, whichever it is.
CHOSEN_EXITS = (typer.Exit, typer.Abort, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def shown(text: object) -> str:
    """``text`` safe to print: control and formatting characters (escape sequences, newlines, bidirectional
    overrides, which a file name may hold) written as ``\\x1b``-style escapes, so the name stays recognisable and
    the terminal untouched."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in str(text))


def error(message: object) -> None:
    err.print(f"[red]error:[/] {escape(shown(message))}")


def warning(message: object) -> None:
    err.print(f"[yellow]warning:[/] {escape(shown(message))}")


def note(message: object) -> None:
    err.print(escape(shown(message)))


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: finish cleaning up, then stop."""


_STOPPED_AT_ONCE = (b"stopped at once: files under their final names are whole; writes cut short are hidden "
                    b"temporaries, removed by the next run\n")


class _Interrupts:
    """How many times the user has asked to stop: the first asks for a clean stop (the running writes finish and
    the report is written), a second for an immediate one."""

    count = 0

    @classmethod
    def stop(cls, first: type[KeyboardInterrupt]) -> None:
        cls.count += 1
        if cls.count > 1:  # no cleanup: waiting on threads (onnxruntime's among them) is what the user refused
            os.write(2, _STOPPED_AT_ONCE)
            os._exit(130)
        raise first()


def _on_sigterm(signum: int, frame: object) -> None:
    _Interrupts.stop(Terminated)


def _on_sigint(signum: int, frame: object) -> None:
    _Interrupts.stop(KeyboardInterrupt)


@contextmanager
def error_boundary() -> Iterator[None]:
    """Turn expected errors into one red line and an exit code: 2 for device and usage errors, else 1.
    Anything else is a bug: one line too, exit 1, asking for a report (``UPSCALE_DEBUG=1`` shows the traceback);
    users never see a stack trace. Shared by upscale, upscale-train and upscale-export."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    previous_int = signal.signal(signal.SIGINT, _on_sigint)
    _Interrupts.count = 0
    try:
        yield
    except (DeviceError, UsageError) as exc:
        error(f"{exc}")
        raise typer.Exit(2) from None
    except UpscaleError as exc:
        error(f"{exc}")
        raise typer.Exit(1) from None
    except CHOSEN_EXITS:
        raise
    except Exception as exc:
        if debugging():
            raise
        error(f"{UNEXPECTED}: {first_line(exc)} (UPSCALE_DEBUG=1 shows where)")
        raise typer.Exit(1) from None
    finally:
        if not _Interrupts.count:  # once stopping, stay ready for "now": the exit may still wait on threads
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
