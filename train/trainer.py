"""The training loop: one config dataclass, small named helpers, a flat loop (in the manner of nanoGPT).

Checkpoints describe themselves (architecture name, scale and options, config, step, best PSNR), so
`--resume` and `upscale-export` rebuild the network from the file alone. `RUN_DIR/last.pt` is written
every `save_every` steps and at the end; `RUN_DIR/best.pt` whenever validation PSNR improves;
`RUN_DIR/metrics.jsonl` gets one line per log and validation event.

Resuming is exact: batch k is a pure function of (seed, rank, k) (see `data.PatchSampler`), the
learning rate a pure function of the step, and model, EMA and optimiser state come from the checkpoint.
Under `torchrun` the same loop runs DistributedDataParallel: gloo on CPUs, NCCL on GPUs; only rank 0
validates, logs and writes.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from threadpoolctl import threadpool_limits
from torch import nn

from upscale.degrade import parse_spec
from upscale.evaluate import evaluate, summarise
from upscale.files import write_atomic

from .arch import SRNet, create_model
from .config import TrainConfig
from .data import PatchSampler, load_images, prefetch, to_unit
from .losses import SRLoss

# ---------------------------------------------------------------------------------------------------


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for ``step``: 1) linear warmup, 2) cosine decay to min_lr_ratio * lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    kinds = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if cfg.optimizer not in kinds:
        raise ValueError(f"--optimizer must be adam or adamw, got {cfg.optimizer!r}")
    return kinds[cfg.optimizer](model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    d = min(decay, (1 + step) / (10 + step))  # a young average follows the model closely
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - d)  # one kernel, not one per tensor


def torch_upscaler(model: SRNet, device: torch.device):
    """uint8 LR image (HxWx3 or HxW grey) -> uint8 SR image, the whole image in one pass."""

    @torch.no_grad()
    def run(lr: np.ndarray) -> np.ndarray:
        rgb = np.repeat(lr[..., None], 3, axis=2) if lr.ndim == 2 else lr
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255)[None].to(device)
        y = model(x)[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.round(y.astype(np.float32).mean(axis=2)).astype(np.uint8) if lr.ndim == 2 else y

    return run


def validate(model: SRNet, cfg: TrainConfig, device: torch.device) -> dict[str, dict[str, float]]:
    """Y-PSNR/SSIM per validation folder (clean, then each of ``cfg.val_degrade``), by the same protocol and
    code as `upscale eval`; best.pt is chosen on the mean of them all."""
    was_training = model.training
    model.eval()
    try:
        upscaler = torch_upscaler(model, device)
        folders = [Path(v) for v in cfg.val]
        return summarise([score for spec in ["clean", *cfg.val_degrade]
                          for score in evaluate(folders, cfg.scale, upscaler, spec)])
    finally:
        model.train(was_training)


def mean_psnr(result: dict[str, dict[str, float]]) -> float:
    return float(np.mean([r["psnr"] for r in result.values()])) if result else float("nan")


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


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


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


def pick_device(spec: str, local_rank: int) -> torch.device:
    if spec == "cpu" or (spec == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("CUDA was requested but torch sees no usable GPU")
    index = int(spec.split(":")[1]) if ":" in spec else local_rank
    return torch.device("cuda", index)


def make_autocast(amp: str, device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass. Off by default: bfloat16 keeps 8 bits of mantissa, so the
    bicubic residual inside the network would carry errors of ~1/512, half a grey level, into a loss
    that is chasing fractions of a level; these small networks are launch-bound on a GPU anyway."""
    if amp == "off":
        return contextlib.nullcontext()
    if amp != "bf16":
        raise ValueError(f"--amp must be off or bf16, got {amp!r}")
    if device.type != "cuda":
        raise ValueError("--amp bf16 needs a CUDA device")
    return torch.autocast("cuda", dtype=torch.bfloat16)


def log_line(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------------


def train(cfg: TrainConfig, resume: bool = False, progress=None) -> dict:
    """Run (or continue) training; returns the last metrics record. ``progress(record)`` is called
    after each log/validation event (the CLI draws its progress line from it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(cfg.device, local_rank)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    master = rank == 0
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    state = None
    if resume:
        if not (out / "last.pt").is_file():
            raise FileNotFoundError(f"{out / 'last.pt'}: nothing to resume")
        state = load_checkpoint(out / "last.pt")
        arch = state["arch"]
        cfg.arch, cfg.scale, cfg.arch_options = arch["name"], arch["scale"], dict(arch["options"])
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, cfg.scale, **cfg.arch_options)
    initialised = init_weights(model, Path(cfg.init_from)) if cfg.init_from and state is None else None
    ema = copy.deepcopy(model).requires_grad_(False) if cfg.ema > 0 else None
    opt = make_optimizer(model, cfg)
    start, best = 0, -math.inf
    if state is not None:
        model.load_state_dict(state["model"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        start, best = state["step"], state["best_psnr"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
    model.to(device)
    if ema is not None:
        ema.to(device)
    for group in opt.state.values():
        for k, v in group.items():
            if torch.is_tensor(v):
                group[k] = v.to(device)
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    for spec in cfg.val_degrade:
        parse_spec(spec)  # a bad spec fails now, not at the first validation
    images = load_images([Path(d) for d in cfg.data], cfg.patch)
    sampler = PatchSampler(images.images, cfg.scale, cfg.patch, cfg.batch_size, cfg.seed, rank, cfg.degradation,
                           cfg.degradation_copies, cfg.threads)
    criterion = SRLoss(cfg.loss, cfg.fft_weight, cfg.perceptual_weight,
                       Path(cfg.vgg_weights) if cfg.vgg_weights else None).to(device)
    summary = model.describe()
    metrics_path = out / "metrics.jsonl"
    if master:
        out.mkdir(parents=True, exist_ok=True)
        log_line(metrics_path, {"event": "start", "step": start, "arch": asdict(summary), "device": str(device),
                                "world_size": world, "effective_batch": cfg.batch_size * world,
                                "train_images": len(images.images), "skipped_small": images.skipped_small,
                                "init_from": initialised,
                                "unreadable": images.unreadable, "config": asdict(cfg)})

    # numpy's BLAS on the prefetch thread would start its own threads and fight torch's for the same cores.
    blas_limit = threadpool_limits(limits=1, user_api="blas")
    autocast = make_autocast(cfg.amp, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch shapes: pick the fastest convolution once
    began = time.perf_counter()
    window_start, window_steps, data_wait = began, 0, 0.0
    record: dict = {"step": start}
    step = start
    wait_start = time.perf_counter()
    completed: int | None = start  # steps fully applied to weights, EMA and optimiser
    try:
        for step, (lr_batch, hr_batch) in enumerate(prefetch(sampler, start, cfg.steps), start=start):
            data_wait += time.perf_counter() - wait_start
            lr_now = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr_now
            lr_batch, hr_batch = to_unit(lr_batch, device), to_unit(hr_batch, device)
            with autocast:
                sr = net(lr_batch)
            loss, parts = criterion(sr.float(), hr_batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            completed = None  # from here until `done` the weights, EMA and optimiser are mid-update
            opt.step()
            if ema is not None:
                update_ema(ema, model, cfg.ema, step)
            done = completed = step + 1
            window_steps += 1
            out_of_time = (cfg.minutes is not None and time.perf_counter() - began > cfg.minutes * 60) or (
                cfg.stop_after is not None and done - start >= cfg.stop_after)
            last = done == cfg.steps or out_of_time
            if master and (done % cfg.log_every == 0 or last):
                now = time.perf_counter()
                record = {"event": "train", "step": done, "loss": float(loss.detach()), **parts, "lr": lr_now,
                          "it_s": window_steps / (now - window_start), "data_wait_s": data_wait / window_steps,
                          "elapsed_s": now - began}
                log_line(metrics_path, record)
                window_start, window_steps, data_wait = now, 0, 0.0
                if progress:
                    progress(record)
            if master and cfg.val and (done % cfg.val_every == 0 or last):
                result = validate(ema if ema is not None else model, cfg, device)
                psnr = mean_psnr(result)
                record = {"event": "val", "step": done, "val": result, "psnr": psnr}
                log_line(metrics_path, record)
                if psnr > best:
                    best = psnr
                    save_checkpoint(out / "best.pt", checkpoint_state(model, ema, opt, done, best, cfg))
                if progress:
                    progress(record)
            if master and (done % cfg.save_every == 0 or last):
                save_checkpoint(out / "last.pt", checkpoint_state(model, ema, opt, done, best, cfg))
            if world > 1:
                dist.barrier()
            if out_of_time:
                break
            wait_start = time.perf_counter()
    except KeyboardInterrupt:
        # Ctrl-C: keep every finished step, unless the interrupt came mid-update (then the last periodic
        # checkpoint stands), so that --resume stays exact.
        if master and world == 1 and completed is not None and completed > start:
            save_checkpoint(out / "last.pt", checkpoint_state(model, ema, opt, completed, best, cfg))
        raise
    finally:
        blas_limit.restore_original_limits()
    if master and not cfg.val and (out / "last.pt").is_file():
        write_atomic(out / "best.pt", (out / "last.pt").read_bytes())  # no validation: best is the last
    if world > 1:
        in_sync = ranks_in_sync(model)
        if master:
            record = {"event": "ddp", "step": step + 1, "world_size": world, "ranks_in_sync": in_sync}
            log_line(metrics_path, record)
        dist.barrier()
        dist.destroy_process_group()
    return record


def ranks_in_sync(model: nn.Module) -> bool:
    """Whether every rank holds the same weights (DDP should guarantee it; this checks)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])  # on the model's device:
    weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)  # NCCL needs CUDA tensors
    mine = torch.stack([flat.sum(), (flat * weights).sum()])
    gathered = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, mine)
    return all(torch.equal(g, gathered[0]) for g in gathered)
