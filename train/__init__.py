"""`upscale-train`: train super-resolution CNNs with PyTorch (installed as `upscale.train`)."""

from __future__ import annotations

import sys

TORCH_HINT = ("needs PyTorch, which is not installed: pip install 'upscale[train]' (on a machine without a GPU, "
              "install the CPU build first: pip install torch --index-url https://download.pytorch.org/whl/cpu)")


def main() -> None:
    """The `upscale-train` command: without torch, one line saying what to install (exit 2), not a traceback."""
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.stderr.write(f"error: upscale-train {TORCH_HINT}\n")
        raise SystemExit(2) from None
    from .cli import main as run

    run()
