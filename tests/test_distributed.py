"""upscale-train under torchrun: two CPU processes with gloo stay in sync and write one checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from .test_train import image_folder


def test_torchrun_two_cpu_ranks(tmp_path: Path) -> None:
    data = image_folder(tmp_path / "data")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "upscale.train", "--data", str(data), "--val", str(image_folder(tmp_path / "val", n=1, size=32)),
           "--out", str(run), "--steps", "4", "--patch", "16", "--batch-size", "2", "--warmup", "1",
           "--arch-option", "channels=8", "--arch-option", "depth=2", "--threads", "1", "--val-every", "2",
           "--log-every", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["world_size"] == 2 and records[0]["effective_batch"] == 4
    assert records[-1] == {"event": "ddp", "step": 4, "world_size": 2, "ranks_in_sync": True}
    assert (run / "last.pt").is_file() and (run / "best.pt").is_file()
    assert sum(r["event"] == "val" for r in records) == 2  # rank 0 alone validates
    assert result.stdout.count("step 4: loss") == 1  # and logs
