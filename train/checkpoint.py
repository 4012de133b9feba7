"""Checkpoints: what a training run saves, how it is written and read, and the network it stands for.

A checkpoint describes itself (architecture name, scale and options, config, step, best PSNR, RNG states), so
`--resume`, `--init-from` and `upscale-export` rebuild everything from the file alone; `upscale-export` imports
this module, not the training loop.

Every weight file, ours or a stranger's, is read by `read_weights`: ``torch.load(weights_only=True)``, which
builds only tensors and plain containers and never calls what a pickle names. So a checkpoint holds nothing else:
numpy's RNG state is stored as a tensor and plain numbers (`_numpy_rng_state`), not as a numpy object.
"""

from __future__ import annotations

import io
import random
import re
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from upscale.errors import TrainingError
from upscale.files import write_atomic
from upscale.untrusted import UnsafeFileError, check_safetensors, check_weight_archive

from .arch import SRNet, create_model
from .config import TrainConfig


def checkpoint_state(model: SRNet, ema: SRNet | None, opt: torch.optim.Optimizer, step: int,
                     best: float, cfg: TrainConfig) -> dict:
    return {
        "arch": {"name": model.arch_name, "scale": model.scale, "options": model.config()},
        "model": model.state_dict(),
        "ema": ema.state_dict() if ema is not None else None,
        "optimizer": opt.state_dict(),
        "step": step,
        "best_psnr": best,
        "config": asdict(cfg),
        "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_rng_state(), "python": random.getstate()},
    }


def _numpy_rng_state() -> dict:
    """numpy's global RNG state in types that weights-only loading reads (its own is a tuple holding an array)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"bit_generator": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def restore_rng(rng: dict) -> None:
    """Put back the RNG states `checkpoint_state` recorded."""
    torch.set_rng_state(rng["torch"])
    state = rng["numpy"]
    np.random.set_state((state["bit_generator"], state["keys"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))
    random.setstate(rng["python"])


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())  # a kill mid-save never leaves a broken checkpoint


_KEYS = ("arch", "model", "ema", "step", "config")
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # how torch's weights-only unpickler names what it refused


def read_weights(path: Path) -> object:
    """A PyTorch weight file (.pth/.pt/.ckpt/.bin or .safetensors) as tensors and plain containers.

    Never code: pickles are read with ``weights_only=True``; a file that needs more (an object whose class or
    function the pickle names, a TorchScript archive) is refused with `UnsafeFileError` (exit 2), as are zip bombs
    and safetensors files whose header claims more than the file holds. Other unreadable files: TrainingError."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        check_safetensors(path)
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError for damaged files
            raise TrainingError(f"{path}: cannot load: not a safetensors file ({_first_line(exc)})") from None
    check_weight_archive(path)
    try:
        with warnings.catch_warnings():  # torch warns that it would run a TorchScript archive; it refuses below
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch raise many types for a file that is not a weight file
        text = str(exc)
        if "TorchScript" in text:
            raise UnsafeFileError(f"{path}: refused: a TorchScript archive is a program, not weights; "
                                  "export its state_dict to a .pth or .safetensors file") from None
        named = _GLOBAL.search(text)
        if named:
            raise UnsafeFileError(f"{path}: refused: reading it needs more than weights-only loading (it would "
                                  f"call {named.group(1)}); model files are read as data, never run as code") from None
        detail = text.split("WeightsUnpickler error:")[-1].strip() if "WeightsUnpickler" in text else text
        raise TrainingError(f"{path}: cannot load: not a PyTorch weight file "
                            f"({_first_line(ValueError(detail)) if detail else type(exc).__name__})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def load_checkpoint(path: Path) -> dict:
    """A checkpoint of upscale-train, or TrainingError naming the file and why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found")
    state = read_weights(path)
    missing = [k for k in _KEYS if not isinstance(state, dict) or k not in state]
    if missing:
        raise TrainingError(f"{path}: not a checkpoint of upscale-train (no {', '.join(missing)})")
    return state


def checkpoint_weights(state: dict, use_ema: bool = True) -> dict:
    """The weights a checkpoint stands for: its EMA weights when it has them (what validation scored)."""
    return state["ema"] if use_ema and state.get("ema") is not None else state["model"]


def model_from_checkpoint(state: dict, use_ema: bool = True) -> SRNet:
    """Rebuild the network a checkpoint describes, with its EMA weights when it has them."""
    arch = state["arch"]
    model = create_model(arch["name"], arch["scale"], **arch["options"])
    model.load_state_dict(checkpoint_weights(state, use_ema))
    return model


def init_weights(model: SRNet, checkpoint: Path) -> dict[str, int]:
    """Copy every tensor of ``checkpoint`` (EMA weights when present) whose name and shape match; a network
    that is another's trained form (the int8 one of a float twin) adopts the twin's weights instead."""
    state = load_checkpoint(checkpoint)
    if model.float_twin == state["arch"]["name"]:
        try:
            copied = model.adopt(model_from_checkpoint(state))
        except ValueError as exc:
            raise TrainingError(f"{checkpoint}: {exc}") from None
        return {"checkpoint": str(checkpoint), "copied": copied, "kept": len(model.state_dict()) - copied}
    weights = checkpoint_weights(state)
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    return {"checkpoint": str(checkpoint), "copied": len(matched), "kept": len(own) - len(matched)}
