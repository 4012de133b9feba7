"""PyTorch weight files (.pth, .safetensors, .ckpt) as models: converted once to ONNX, then cached.

`upscale dir --model RealESRGAN_x4plus.pth` works like any ONNX model: the first time, the file is converted by
`upscale-export` (our checkpoints, or any architecture spandrel knows) in a child process, so that torch is
never imported into the runtime and a crash in torch's exporter costs one error line, not the batch. The result
is kept under the user's cache folder, named by the file's content hash, so a changed file converts again and
an unchanged one never does; it is written atomically (a killed conversion leaves no half model).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .errors import ModelError, UsageError
from .files import sha256_of
from .untrusted import UnsafeFileError

PYTORCH_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


def cache_dir() -> Path:
    """``UPSCALE_CACHE_DIR``, else ``$XDG_CACHE_HOME/upscale``, else ``~/.cache/upscale``."""
    if os.environ.get("UPSCALE_CACHE_DIR"):
        return Path(os.environ["UPSCALE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "upscale"


def converted(path: Path) -> Path:
    """The cached ONNX model converted from the weight file ``path`` (converting it now if needed)."""
    target = cache_dir() / "models" / f"{path.stem}-{sha256_of(path)[:16]}.onnx"
    if target.is_file():
        return target
    if importlib.util.find_spec("torch") is None:
        raise UsageError(f"{path}: a PyTorch weight file; converting it needs torch and spandrel "
                         f"(pip install 'upscale[pth]'), or convert it where they are installed with "
                         f"`upscale-export MODEL.onnx --checkpoint {path.name}` and pass the .onnx")
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "upscale.export", str(target), "--checkpoint", str(path), "--force"],
                          capture_output=True, text=True)
    if done.returncode != 0 or not target.is_file():
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        if lines:
            cause = lines[-1].removeprefix("error:").strip().removeprefix(f"{path}:").strip()
        elif done.returncode < 0:
            cause = f"torch crashed while converting it (signal {-done.returncode})"
        else:
            cause = (done.stderr.strip().splitlines() or ["conversion failed"])[-1]
        # exit 2 is upscale-export's usage error: a file refused as unsafe (code, a zip bomb) stays one here
        raise (UnsafeFileError if done.returncode == 2 else ModelError)(f"{path}: {cause}")
    return target
