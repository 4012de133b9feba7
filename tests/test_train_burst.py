"""scripts/train_burst.py: the rate it reads from a probe, and the commands it writes for the model card."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

_SPEC = importlib.util.spec_from_file_location(
    "train_burst", Path(__file__).resolve().parents[1] / "scripts" / "train_burst.py")
burst = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(burst)


def test_rate_skips_the_first_window(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.jsonl"
    records = [{"event": "start", "step": 0},
               {"event": "train", "step": 25, "elapsed_s": 10.0},  # start-up and cuDNN's search
               {"event": "train", "step": 50, "elapsed_s": 10.5},
               {"event": "train", "step": 75, "elapsed_s": 11.0}]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert burst.steps_per_second(metrics) == pytest.approx(50.0)
    metrics.write_text(json.dumps(records[1]) + "\n")
    with pytest.raises(RuntimeError, match="too few"):
        burst.steps_per_second(metrics)


def test_commands_are_plain_upscale_train_commands(tmp_path: Path) -> None:
    from typer.testing import CliRunner
    from upscale.train.cli import app

    for name in burst.JOBS:
        cmd = burst.command(name, ["d1", "d2"], ["v"], tmp_path, 1000, 6.3, 100, 50, ["--device", "cpu"])
        assert cmd[0] == "upscale-train" and cmd.count("--data") == 2 and "--val" in cmd
        assert cmd[cmd.index("--out") + 1] == str(tmp_path / name)
        assert cmd[cmd.index("--steps") + 1] == "1000" and cmd[cmd.index("--minutes") + 1] == "6.3"
        # Every option is one upscale-train knows: --help parses them all without an error.
        result = CliRunner().invoke(app, [*cmd[1:], "--help"])
        assert result.exit_code == 0, result.output
