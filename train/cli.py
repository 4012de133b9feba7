"""`upscale-train`: command-line front of `trainer.train`."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from upscale.errors import UsageError
from upscale.terminal import error_boundary, note, out, warning

from .arch import architectures, create_model
from .checkpoint import load_checkpoint
from .config import TrainConfig, config_for_resume
from .data import DEGRADATIONS
from .losses import PIXEL_LOSSES
from .trainer import AMP_MODES, OPTIMIZERS, bicubic_baseline, train

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


def _arch_options(values: list[str]) -> dict[str, int]:
    options = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not value.lstrip("-").isdigit():
            raise typer.BadParameter(f"{item!r} is not KEY=INTEGER", param_hint="--arch-option")
        options[key] = int(value)
    return options


def _list_archs(value: bool) -> None:
    if value:
        for name in architectures():
            for scale in (2, 4):
                d = create_model(name, scale).describe()
                out.print(f"{name} x{scale}: {d.params:,} params, {d.macs_per_output_pixel:,.0f} MACs/output pixel, "
                          f"receptive field {d.receptive_field} px")
        raise typer.Exit()


_D = TrainConfig()  # the defaults, written once in TrainConfig; --help shows them


def _choices(name: str, values) -> type[Enum]:
    """An enum of the choices the training code itself accepts, so --help lists them and Typer rejects typos."""
    return Enum(name, {value: value for value in values}, type=str)


Optimizer = _choices("Optimizer", OPTIMIZERS)
Loss = _choices("Loss", PIXEL_LOSSES)
Amp = _choices("Amp", AMP_MODES)
Degradation = _choices("Degradation", DEGRADATIONS)


_DEFAULT_AMP, _DEFAULT_LOSS, _DEFAULT_DISTILL = Amp(_D.amp), Loss(_D.loss), Loss(_D.distill_loss)
_DEFAULT_OPTIMIZER, _DEFAULT_DEGRADATION = Optimizer(_D.optimizer), Degradation(_D.degradation)


@app.command()
def main_command(
    ctx: typer.Context,
    data: Annotated[list[Path], typer.Option("--data", help="Folder of HR training images (repeatable).")] = [],  # noqa: B006
    val: Annotated[list[Path], typer.Option("--val", help="Folder of HR validation images (repeatable).")] = [],  # noqa: B006
    val_degrade: Annotated[list[str], typer.Option(
        "--val-degrade", help="Also validate on degraded inputs (an `upscale eval --degrade` spec; repeatable).")
    ] = [],  # noqa: B006
    scale: Annotated[int, typer.Option("--scale", min=2, max=4)] = _D.scale,
    arch: Annotated[str, typer.Option("--arch", help="Architecture (see --list-archs).")] = _D.arch,
    arch_option: Annotated[list[str], typer.Option("--arch-option", help="KEY=INT, e.g. channels=32.")] = [],  # noqa: B006
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path(_D.out),
    steps: Annotated[int, typer.Option("--steps", min=1, help="Total steps (the schedule spans them).")] = _D.steps,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Time budget; saves and stops.")] = _D.minutes,
    stop_after: Annotated[int | None, typer.Option("--stop-after", min=1,
                                                   help="Stop (and save) after this many steps; resume later.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue OUT/last.pt with its settings.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = _D.seed,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = _D.device,
    amp: Annotated[Amp, typer.Option("--amp", help="off (float32) or bf16 (CUDA autocast).")] = _DEFAULT_AMP,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = _D.batch_size,
    degradation: Annotated[Degradation, typer.Option(
        "--degradation", help="bicubic (clean downscale) or realistic (blur, resize, noise, JPEG; see README).")
    ] = _DEFAULT_DEGRADATION,
    degradation_copies: Annotated[int, typer.Option(
        "--degradation-copies", min=1, help="realistic: degraded LR copies per image, made before training.")
    ] = _D.degradation_copies,
    graphics: Annotated[int, typer.Option(
        "--graphics", min=0, help="Add N procedural pictures (text, shapes, star fields) to the data.")
    ] = _D.graphics,
    patch: Annotated[int, typer.Option("--patch", min=8, help="HR patch side (LR = patch/scale).")] = _D.patch,
    lr: Annotated[float, typer.Option("--lr")] = _D.lr,
    optimizer: Annotated[Optimizer, typer.Option("--optimizer")] = _DEFAULT_OPTIMIZER,
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = _D.warmup,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = _D.weight_decay,
    grad_clip: Annotated[float, typer.Option("--grad-clip", help="Max grad norm; 0 = off.")] = _D.grad_clip,
    ema: Annotated[float, typer.Option("--ema", help="EMA decay; 0 = off.")] = _D.ema,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Start from this checkpoint's weights where shapes match (e.g. 4x from 2x).")] = None,
    loss: Annotated[Loss, typer.Option("--loss", help="Pixel loss.")] = _DEFAULT_LOSS,
    pixel_weight: Annotated[float, typer.Option(
        "--pixel-weight", min=0.0, help="Weight of the loss against the ground truth; 0 with --teacher: learn the "
        "teacher alone (a twin that must match it pixel for pixel).")] = _D.pixel_weight,
    fft_weight: Annotated[float, typer.Option("--fft-weight")] = _D.fft_weight,
    perceptual_weight: Annotated[float, typer.Option("--perceptual-weight",
                                                     help="VGG19 feature loss weight.")] = _D.perceptual_weight,
    vgg_weights: Annotated[Path | None, typer.Option("--vgg-weights", help="torchvision VGG19 .pth file.")] = None,
    teacher: Annotated[Path | None, typer.Option(
        "--teacher", help="Distil: a checkpoint (e.g. the default model's) whose outputs the network also learns.")
    ] = None,
    distill_weight: Annotated[float, typer.Option(
        "--distill-weight", min=0.0, help="Weight of the distance to the teacher's output.")] = _D.distill_weight,
    distill_loss: Annotated[Loss, typer.Option(
        "--distill-loss", help="Distance to the teacher: mse makes large differences cost more.")] = _DEFAULT_DISTILL,
    val_every: Annotated[int, typer.Option("--val-every", min=1)] = _D.val_every,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = _D.log_every,
    save_every: Annotated[int, typer.Option("--save-every", min=1)] = _D.save_every,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = _D.threads,
    list_archs: Annotated[bool, typer.Option("--list-archs", callback=_list_archs, is_eager=True,
                                             help="List architectures with their cost, then exit.")] = False,
) -> None:
    """Train a super-resolution CNN on folders of high-resolution images.

    With --resume, the run continues with the settings its checkpoint recorded: --minutes, --stop-after,
    --device, --threads, --log-every, --save-every and --val-every may change (with a warning); any other
    option that differs from the run's is refused.
    """
    with error_boundary():
        given = _given_options(ctx)
        cfg, state = _resume_config(out_dir, given) if resume else (TrainConfig(**given), None)
        if not cfg.data:
            raise UsageError("give at least one --data folder (or --resume a run)")
        try:
            with _Reporter(cfg.steps) as report:
                train(cfg, resume=resume, progress=report, state=state)
        except KeyboardInterrupt:
            note("interrupted: the finished steps are in last.pt; continue with --resume")
            raise typer.Exit(130) from None
        _say_what_next(cfg)


def _say_what_next(cfg: TrainConfig) -> None:
    """Where the model is, whether it beats bicubic on the validation images, and the command that comes next."""
    best = Path(cfg.out) / "best.pt"
    if cfg.val:
        reached = max((r["psnr"] for r in _val_records(Path(cfg.out))), default=float("nan"))
        baseline = bicubic_baseline(cfg)
        if not reached > baseline:
            warning(f"no better than bicubic on the validation images ({reached:.2f} dB against bicubic's "
                    f"{baseline:.2f} dB): train longer (--minutes), with more data, or check the data")
        else:
            note(f"best validation Y-PSNR {reached:.2f} dB, bicubic's {baseline:.2f} dB (+{reached - baseline:.2f})")
    note(f"model: {best}; next: upscale-export {best} model.onnx, then upscale dir photos/ out/ -m model.onnx")


def _val_records(out: Path) -> list[dict]:
    path = out / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [record for record in map(json.loads, lines) if record.get("event") == "val"]


# Command-line parameters whose config field has another name or type.
_FIELD_OF = {"out_dir": "out", "arch_option": "arch_options"}
_NOT_CONFIG = {"resume", "list_archs"}


def _given_options(ctx: typer.Context) -> dict:
    """The options typed on the command line, as config fields (the rest keep the config's values)."""
    given = {}
    for name, value in ctx.params.items():
        if name in _NOT_CONFIG or _source(ctx, name) != "COMMANDLINE":
            continue
        if name == "arch_option":
            value = _arch_options(value)
        elif isinstance(value, Enum):
            value = value.value
        elif isinstance(value, Path):
            value = str(value)
        elif isinstance(value, list):
            value = [str(v) for v in value]
        given[_FIELD_OF.get(name, name)] = value
    return given


def _source(ctx: typer.Context, name: str) -> str:
    """Where a parameter's value came from, by name: Typer vendors its own click, so its enum is not click's."""
    source = ctx.get_parameter_source(name)
    return source.name if source is not None else "DEFAULT"


def _resume_config(out_dir: Path, given: dict) -> tuple[TrainConfig, dict]:
    """The run's settings and its checkpoint, read once (the trainer restores from the same dictionary)."""
    checkpoint = out_dir / "last.pt"
    if not checkpoint.is_file():
        raise UsageError(f"{checkpoint}: nothing to resume")
    state = load_checkpoint(checkpoint)
    cfg, warnings = config_for_resume(state["config"], given)
    cfg.out = str(out_dir)
    for line in warnings:
        warning(line)
    return cfg, state


class _Reporter:
    """A rich progress line (step, loss, it/s, ETA, last validation PSNR) or plain log lines."""

    def __init__(self, total: int) -> None:
        self.val = "-"
        self.bar = Progress(
            TextColumn("step {task.completed}/{task.total}"), BarColumn(), TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]} it/s"), TimeRemainingColumn(), TextColumn("val {task.fields[val]}"),
            console=out,
        ) if out.is_terminal else None
        self.total = total

    def __enter__(self) -> _Reporter:
        if self.bar:
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.total, loss="-", speed="-", val="-")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def __call__(self, record: dict) -> None:
        if record["event"] == "val":
            self.val = f"{record['psnr']:.2f} dB"
            line = f"step {record['step']}: val " + ", ".join(
                f"{k} {v['psnr']:.2f} dB / {v['ssim']:.4f}" for k, v in record["val"].items())
        else:
            line = (f"step {record['step']}: loss {record['loss']:.4f} lr {record['lr']:.2e} "
                    f"{record['it_s']:.2f} it/s data wait {record['data_wait_s'] * 1000:.0f} ms")
        if self.bar:
            self.bar.update(self.task, completed=record["step"], val=self.val,
                            loss=f"{record.get('loss', 0):.4f}" if "loss" in record else "-",
                            speed=f"{record['it_s']:.2f}" if "it_s" in record else "-")
        else:
            print(line, flush=True)


def main() -> None:
    app()
