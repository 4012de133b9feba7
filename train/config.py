"""The training configuration, written once, and the rules for changing it on `--resume`.

A run is a pure function of its configuration (batch k of (seed, rank, k), the learning rate of the step),
so `--resume` must continue with the configuration the checkpoint recorded, not with the command line's
defaults. Options that only say how this invocation runs (time budget, device, threads, how often it logs,
saves or validates) may be changed on resume, with a warning; the others would make a different run, so a
value that differs from the checkpoint's is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from upscale.errors import UsageError


@dataclass
class TrainConfig:
    # --- data ---
    data: list[str] = field(default_factory=list)  # folders of HR images (recursive)
    val: list[str] = field(default_factory=list)  # folders of HR validation images
    val_degrade: list[str] = field(default_factory=list)  # `upscale eval --degrade` specs to validate on too
    scale: int = 2  # 2, 3 or 4
    patch: int = 128  # HR patch side in pixels (LR side = patch / scale)
    batch_size: int = 16
    degradation: str = "bicubic"  # bicubic (clean downscale) or realistic (upscale.degrade's random pipeline)
    degradation_copies: int = 8  # realistic: degraded LR copies made per image before training
    graphics: int = 0  # procedural pictures (text, shapes, star fields) added to the training images
    # --- model ---
    arch: str = "repsr"  # see `upscale-train --list-archs`
    arch_options: dict[str, int] = field(default_factory=dict)  # e.g. {"channels": 32, "depth": 8}
    # --- optimisation ---
    steps: int = 20000  # total steps; the cosine schedule spans them
    minutes: float | None = None  # stop (and save) after this much wall time, to resume later
    stop_after: int | None = None  # stop (and save) after this many steps in this invocation
    optimizer: str = "adam"  # adam or adamw
    lr: float = 5e-4
    min_lr_ratio: float = 0.01  # cosine floor, as a fraction of lr
    warmup: int = 500  # linear warmup steps
    weight_decay: float = 0.0
    grad_clip: float = 1.0  # max gradient norm; 0 disables
    ema: float = 0.999  # EMA decay of weights; 0 disables
    init_from: str | None = None  # start from another run's weights where shapes match (e.g. 4x from 2x)
    # --- loss ---
    loss: str = "l1"  # l1 or mse
    fft_weight: float = 0.0
    perceptual_weight: float = 0.0
    vgg_weights: str | None = None
    pixel_weight: float = 1.0  # weight of the loss against the ground truth (0: learn the teacher alone)
    teacher: str | None = None  # checkpoint of a stronger model whose outputs the network also learns from
    distill_weight: float = 0.0  # weight of the distance to the teacher's output (0 with no teacher)
    distill_loss: str = "l1"  # l1, or mse: large differences to the teacher cost more (an int8 twin's tails)
    # --- run ---
    out: str = "runs/default"
    seed: int = 0
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    amp: str = "off"  # off (float32; TF32 convolutions on CUDA) or bf16 (autocast, CUDA only)
    val_every: int = 1000
    log_every: int = 50
    save_every: int = 500
    threads: int | None = None


# Fields that change how this invocation runs but not what it computes: the weights after step k are the same.
RESUME_SAFE = frozenset({"minutes", "stop_after", "device", "threads", "log_every", "save_every", "val_every", "out"})


def option_name(field_name: str) -> str:
    """The command-line flag of a config field (`batch_size` -> `--batch-size`)."""
    return {"arch_options": "--arch-option"}.get(field_name, "--" + field_name.replace("_", "-"))


def config_from_saved(saved: dict) -> TrainConfig:
    """The config a checkpoint recorded; fields it predates take their defaults, unknown ones are dropped."""
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known})


def config_for_resume(saved: dict, given: dict) -> tuple[TrainConfig, list[str]]:
    """Merge the options given on a resume command line into the checkpoint's config.

    Returns the config and one warning per safe option that changed; raises ValueError naming every option
    that would change the run (giving the run's own value again is fine).
    """
    cfg = config_from_saved(saved)
    warnings, refused = [], []
    for name, value in given.items():
        old = getattr(cfg, name)
        if value == old:
            continue
        if name in RESUME_SAFE:
            if name != "out":
                warnings.append(f"{option_name(name)} {value} on resume (the run had {old})")
            setattr(cfg, name, value)
        else:
            refused.append(f"{option_name(name)} {value} (the run has {old})")
    if refused:
        safe = ", ".join(sorted(option_name(n) for n in RESUME_SAFE - {"out"}))
        raise UsageError(f"--resume continues the run as it was configured; these options would change it: "
                         f"{'; '.join(refused)}. Only {safe} may change on resume (or start a new --out)")
    return cfg, warnings
