"""`upscale-train`: command-line front of `trainer.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from upscale.cli.console import error, note, out

from .arch import architectures, create_model
from .trainer import TrainConfig, train

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


@app.command()
def main_command(
    data: Annotated[list[Path], typer.Option("--data", help="Folder of HR training images (repeatable).")] = [],  # noqa: B006
    val: Annotated[list[Path], typer.Option("--val", help="Folder of HR validation images (repeatable).")] = [],  # noqa: B006
    scale: Annotated[int, typer.Option("--scale", min=2, max=4)] = 2,
    arch: Annotated[str, typer.Option("--arch", help="Architecture (see --list-archs).")] = "repsr",
    arch_option: Annotated[list[str], typer.Option("--arch-option", help="KEY=INT, e.g. channels=32.")] = [],  # noqa: B006
    out_dir: Annotated[Path, typer.Option("--out", help="Run folder.")] = Path("runs/default"),
    steps: Annotated[int, typer.Option("--steps", min=1, help="Total steps (the schedule spans them).")] = 20000,
    minutes: Annotated[float | None, typer.Option("--minutes", help="Time budget; saves and stops.")] = None,
    stop_after: Annotated[int | None, typer.Option("--stop-after", min=1,
                                                   help="Stop (and save) after this many steps; resume later.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue exactly from OUT/last.pt.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[str, typer.Option("--amp", help="off (float32) or bf16 (CUDA autocast).")] = "off",
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 16,
    patch: Annotated[int, typer.Option("--patch", min=8, help="HR patch side (LR = patch/scale).")] = 128,
    lr: Annotated[float, typer.Option("--lr")] = 5e-4,
    optimizer: Annotated[str, typer.Option("--optimizer", help="adam or adamw.")] = "adam",
    warmup: Annotated[int, typer.Option("--warmup", min=0)] = 500,
    weight_decay: Annotated[float, typer.Option("--weight-decay")] = 0.0,
    grad_clip: Annotated[float, typer.Option("--grad-clip", help="Max grad norm; 0 = off.")] = 1.0,
    ema: Annotated[float, typer.Option("--ema", help="EMA decay; 0 = off.")] = 0.999,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Start from this checkpoint's weights where shapes match (e.g. 4x from 2x).")] = None,
    loss: Annotated[str, typer.Option("--loss", help="l1 or mse.")] = "l1",
    fft_weight: Annotated[float, typer.Option("--fft-weight")] = 0.0,
    perceptual_weight: Annotated[float, typer.Option("--perceptual-weight", help="VGG19 feature loss weight.")] = 0.0,
    vgg_weights: Annotated[Path | None, typer.Option("--vgg-weights", help="torchvision VGG19 .pth file.")] = None,
    val_every: Annotated[int, typer.Option("--val-every", min=1)] = 1000,
    log_every: Annotated[int, typer.Option("--log-every", min=1)] = 50,
    save_every: Annotated[int, typer.Option("--save-every", min=1)] = 500,
    threads: Annotated[int | None, typer.Option("--threads", min=1)] = None,
    list_archs: Annotated[bool, typer.Option("--list-archs", callback=_list_archs, is_eager=True,
                                             help="List architectures with their cost, then exit.")] = False,
) -> None:
    """Train a super-resolution CNN on folders of high-resolution images."""
    if not data and not resume:
        raise typer.BadParameter("give at least one --data folder", param_hint="--data")
    cfg = TrainConfig(
        data=[str(d) for d in data], val=[str(v) for v in val], scale=scale, patch=patch, batch_size=batch_size,
        arch=arch, arch_options=_arch_options(arch_option), steps=steps, minutes=minutes, stop_after=stop_after,
        optimizer=optimizer, lr=lr, warmup=warmup, weight_decay=weight_decay, grad_clip=grad_clip, ema=ema,
        init_from=str(init_from) if init_from else None, loss=loss,
        fft_weight=fft_weight, perceptual_weight=perceptual_weight,
        vgg_weights=str(vgg_weights) if vgg_weights else None, out=str(out_dir), seed=seed, device=device, amp=amp,
        val_every=val_every, log_every=log_every, save_every=save_every, threads=threads,
    )
    if resume and not data:
        from .trainer import load_checkpoint

        saved = load_checkpoint(out_dir / "last.pt")["config"] if (out_dir / "last.pt").is_file() else {}
        cfg.data, cfg.val = saved.get("data", []), saved.get("val", []) or cfg.val
    try:
        with _Reporter(steps) as report:
            train(cfg, resume=resume, progress=report)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        error(f"{exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        note("interrupted: the finished steps are in last.pt; continue with --resume")
        raise typer.Exit(130) from None


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
