"""Checkpoints: what a training run saves, how it is written and read, and the network it stands for.

A checkpoint describes itself (architecture name, scale and options, config, step, best PSNR, RNG states), so
`--resume`, `--init-from` and `upscale-export` rebuild everything from the file alone; `upscale-export` imports
this module, not the training loop.
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from upscale.errors import TrainingError
from upscale.files import write_atomic

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
        "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
    }


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())  # a kill mid-save never leaves a broken checkpoint


_KEYS = ("arch", "model", "ema", "step", "config")


def load_checkpoint(path: Path) -> dict:
    """A checkpoint of upscale-train, or TrainingError naming the file and why it is not one."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # pickle, zip and torch raise many types for a file that is not a checkpoint
        raise TrainingError(f"{path}: not a checkpoint of upscale-train ({str(exc).splitlines()[0][:200]})") from None
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
    """Copy every tensor of ``checkpoint`` (EMA weights when present) whose name and shape match."""
    weights = checkpoint_weights(load_checkpoint(checkpoint))
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matched, strict=False)
    return {"checkpoint": str(checkpoint), "copied": len(matched), "kept": len(own) - len(matched)}
