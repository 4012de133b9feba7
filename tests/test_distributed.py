"""upscale-train under torchrun: two CPU processes with gloo stay in sync and write one checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from .test_train import image_folder

# Runs upscale-train in each rank with two observers: which ranks validate, and what batch 0 each rank drew.
# Only rank 0 writes metrics.jsonl, so the log alone cannot show what the other ranks do.
OBSERVED_TRAIN = """
import hashlib, os, sys
from pathlib import Path

from upscale.train import data, trainer
from upscale.train.cli import main

notes = Path(sys.argv.pop(1))
rank = os.environ["RANK"]
real_validate, real_batch = trainer.validate, data.PatchSampler.batch


def validate(*args, **kwargs):
    with open(notes / f"validated-{rank}", "a") as f:
        f.write("1\\n")
    return real_validate(*args, **kwargs)


def batch(self, step):
    lr, hr = real_batch(self, step)
    if step == 0:
        (notes / f"batch0-{rank}").write_text(hashlib.sha256(hr.numpy().tobytes()).hexdigest())
    return lr, hr


trainer.validate, data.PatchSampler.batch = validate, batch
sys.argv[0] = "upscale-train"
main()
"""


def test_torchrun_two_cpu_ranks(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    notes = tmp_path / "notes"
    notes.mkdir()
    script = tmp_path / "observed_train.py"
    script.write_text(OBSERVED_TRAIN)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(script), str(notes), "--data", str(data), "--val", str(image_folder(tmp_path / "val", n=1, size=32)),
           "--out", str(run), "--steps", "4", "--patch", "16", "--batch-size", "2", "--warmup", "1",
           "--arch-option", "channels=8", "--arch-option", "depth=2", "--threads", "1", "--val-every", "2",
           "--log-every", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["world_size"] == 2 and records[0]["effective_batch"] == 4
    assert records[-1] == {"event": "ddp", "step": 4, "world_size": 2, "ranks_in_sync": True}
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert sum(r["event"] == "val" for r in records) == 2
    assert (notes / "validated-0").read_text() == "1\n1\n" and not (notes / "validated-1").exists()  # rank 0 alone
    assert result.stdout.count("step 4: loss") == 1  # and logs
    # each rank draws its own batches (the data seed includes the rank)
    assert (notes / "batch0-0").read_text() != (notes / "batch0-1").read_text()
