"""Train several models side by side on one lent GPU inside a fixed time, then collect them.

    python scripts/train_burst.py --data DIR --val DIR [--val DIR] --minutes 7 --out RUNS [--only NAME]

A GPU is lent to this project in short bursts (minutes, not hours), and our networks are small enough
that one of them alone leaves most of the GPU idle (each step launches a few hundred small kernels). So
the shipped models and their SRCNN baselines train at the same time, one `upscale-train` process each,
and each one's cosine schedule has to end when the burst does. The script:

1. probes: starts every job for about a minute with an open-ended schedule and reads its steps per
   second from its metrics.jsonl, all jobs running at once (they share the GPU the same way later);
2. sizes each job's `--steps` to fill ``--minutes`` at that rate (less a margin for validation), with
   `--minutes` as a safety stop that saves and validates if the estimate was too hopeful;
3. trains, writing RUNS/NAME/{best.pt,last.pt,metrics.jsonl,train.log} and RUNS/commands.txt, the
   exact command of each job (what the model card quotes).

The jobs are the ones in `JOBS`; they are plain `upscale-train` commands and run the same anywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

JOBS: dict[str, list[str]] = {
    # The 2x model: 32 channels, 10 layers = 24,195 MACs per output pixel (budget: 25,000).
    "repsr-x2-d10": ["--scale", "2", "--arch", "repsr", "--arch-option", "depth=10", "--patch", "96",
                     "--batch-size", "64", "--lr", "1e-3", "--warmup", "500"],
    # The first shipped 32x8 network (19,587 MACs, trained on CPU), continued at a low rate with large batches.
    "repsr-x2-ft": ["--scale", "2", "--arch", "repsr", "--init-from", "checkpoints/repsr-x2-d8/best.pt",
                    "--patch", "96", "--batch-size", "64", "--lr", "2e-4", "--warmup", "200"],
    # Second stage of the 2x model: repsr-x2-d10's weights, a new cosine cycle at a lower peak rate.
    "repsr-x2-d10-ft": ["--scale", "2", "--arch", "repsr", "--arch-option", "depth=10",
                        "--init-from", "checkpoints/repsr-x2-d10/best.pt", "--patch", "96", "--batch-size", "64",
                        "--lr", "3e-4", "--warmup", "200"],
    # The 4x model: 64 channels, 10 layers in 1/16 of the output pixels = 24,951 MACs per output pixel.
    "repsr-x4": ["--scale", "4", "--arch", "repsr", "--arch-option", "channels=64", "--arch-option", "depth=10",
                 "--patch", "128", "--batch-size", "64", "--lr", "1e-3", "--warmup", "500"],
    # The SRCNN baselines (9-5-5, 69,227 MACs per output pixel), same data, trainer and loss.
    "srcnn-x2": ["--scale", "2", "--arch", "srcnn", "--patch", "96", "--batch-size", "64", "--lr", "5e-4",
                 "--warmup", "500"],
    "srcnn-x4": ["--scale", "4", "--arch", "srcnn", "--patch", "96", "--batch-size", "64", "--lr", "5e-4",
                 "--warmup", "500"],
}


def command(name: str, data: list[str], val: list[str], out: Path, steps: int, minutes: float,
            val_every: int, log_every: int, extra: list[str]) -> list[str]:
    cmd = ["upscale-train", *JOBS[name]]
    for d in data:
        cmd += ["--data", d]
    for v in val:
        cmd += ["--val", v]
    return [*cmd, "--out", str(out / name), "--steps", str(steps), "--minutes", f"{minutes:g}",
            "--val-every", str(val_every), "--log-every", str(log_every), "--save-every", str(val_every), *extra]


def launch(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "upscale.train", *cmd[1:]]  # the same as the console script
    # Run from the repository root, `-m` would put the root first on sys.path, and the source folder
    # `upscale/` (which holds no `train`) would shadow an installed package: keep the root off the path.
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    return subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)


def steps_per_second(metrics: Path) -> float:
    """Steps per second after the first log record (which includes start-up and cuDNN's search)."""
    train = [r for r in map(json.loads, metrics.read_text().splitlines()) if r.get("event") == "train"]
    if len(train) < 2:
        raise RuntimeError(f"{metrics}: too few training records to measure a rate ({len(train)})")
    return (train[-1]["step"] - train[0]["step"]) / (train[-1]["elapsed_s"] - train[0]["elapsed_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--val", action="append", default=[])
    parser.add_argument("--minutes", type=float, required=True, help="Training time of every job.")
    parser.add_argument("--probe-minutes", type=float, default=0.75)
    parser.add_argument("--probe-log-every", type=int, default=25)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--only", action="append", help="Run only these jobs (repeatable).")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--validations", type=int, default=8, help="Validations per job.")
    args = parser.parse_args()
    names = args.only or list(JOBS)
    extra = ["--device", args.device]

    probe_dir = args.out / "probe"
    probes = {n: launch(command(n, args.data, [], probe_dir, 10**7, args.probe_minutes, 10**7,
                                args.probe_log_every, extra),
                        probe_dir / n / "train.log") for n in names}
    rates = {}
    for name, proc in probes.items():
        if proc.wait() != 0:
            raise SystemExit(f"probe of {name} failed:\n{(probe_dir / name / 'train.log').read_text()[-3000:]}")
        rates[name] = steps_per_second(probe_dir / name / "metrics.jsonl")
    print("probe it/s:", json.dumps({n: round(r, 2) for n, r in rates.items()}), flush=True)

    commands, procs = {}, {}
    for name in names:
        steps = max(100, int(rates[name] * args.minutes * 60 * 0.9) // 100 * 100)
        val_every = max(50, steps // args.validations // 50 * 50)
        commands[name] = command(name, args.data, args.val, args.out, steps, args.minutes * 1.05, val_every, 50,
                                 extra)
    (args.out / "commands.txt").write_text("".join(shlex.join(c) + "\n" for c in commands.values()))
    began = time.time()
    for name, cmd in commands.items():
        print(shlex.join(cmd), flush=True)
        procs[name] = launch(cmd, args.out / name / "train.log")
    failed = [name for name, proc in procs.items() if proc.wait() != 0]
    print(f"trained in {time.time() - began:.0f} s", flush=True)
    for name in names:
        metrics = args.out / name / "metrics.jsonl"
        lines = metrics.read_text().splitlines() if metrics.is_file() else []
        vals = [r for r in map(json.loads, lines) if r.get("event") == "val"]
        if vals:
            best = max(vals, key=lambda r: r["psnr"])
            print(name, "best step", best["step"], {k: round(v["psnr"], 3) for k, v in best["val"].items()},
                  "last", {k: round(v["psnr"], 3) for k, v in vals[-1]["val"].items()}, flush=True)
    if failed:
        for name in failed:
            print(f"--- {name} failed:\n" + (args.out / name / "train.log").read_text()[-3000:], flush=True)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
