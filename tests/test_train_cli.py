"""`upscale-train` through its command line: resume takes the run's settings from the checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from upscale.train.checkpoint import load_checkpoint  # noqa: E402
from upscale.train.cli import app  # noqa: E402

from .conftest import photo  # noqa: E402
from .test_train import assert_same_state  # noqa: E402

# The run of the report: every setting off its default, so a resume that fell back to the
# command line's defaults (lr 5e-4, warmup 500, patch 128, batch 16) could not pass.
RUN = ["--steps", "8", "--lr", "3e-3", "--warmup", "2", "--patch", "16", "--batch-size", "4", "--device", "cpu",
       "--arch-option", "channels=8", "--arch-option", "depth=2", "--threads", "1", "--log-every", "1",
       "--save-every", "100"]


def data_folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        Image.fromarray(photo(40, 48, seed=i)).save(root / f"{i}.png")
    return root


def invoke(*args: str | Path) -> object:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_resume_from_the_command_line_continues_the_same_run(tmp_path: Path, monkeypatch) -> None:
    from upscale.train import cli, trainer

    data = data_folder(tmp_path / "data")
    invoke("--data", data, "--out", tmp_path / "straight", *RUN)
    invoke("--data", data, "--out", tmp_path / "split", *RUN, "--stop-after", "4")
    assert load_checkpoint(tmp_path / "split" / "last.pt")["step"] == 4
    reads: list[Path] = []

    def counted(path, *args, **kwargs):
        reads.append(Path(path))
        return load_checkpoint(path, *args, **kwargs)

    monkeypatch.setattr(cli, "load_checkpoint", counted)
    monkeypatch.setattr(trainer, "load_checkpoint", counted)
    invoke("--out", tmp_path / "split", "--resume", "--device", "cpu", "--log-every", "1")  # the README's command
    assert reads.count(tmp_path / "split" / "last.pt") == 1  # read once: settings and state from one dictionary

    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    assert a["step"] == 8
    assert_same_state(a, load_checkpoint(tmp_path / "split" / "last.pt"))
    resumed = [r for r in records(tmp_path / "split") if r["event"] == "start"][-1]
    assert resumed["step"] == 4 and resumed["effective_batch"] == 4
    assert resumed["config"]["lr"] == 3e-3 and resumed["config"]["patch"] == 16
    step5 = next(r for r in records(tmp_path / "split") if r["event"] == "train" and r["step"] == 5)
    straight5 = next(r for r in records(tmp_path / "straight") if r["event"] == "train" and r["step"] == 5)
    assert step5["lr"] == straight5["lr"] and step5["loss"] == straight5["loss"]


def test_resume_refuses_options_that_change_the_run_and_warns_on_safe_ones(tmp_path: Path) -> None:
    data = data_folder(tmp_path / "data")
    run = tmp_path / "run"
    invoke("--data", data, "--out", run, *RUN, "--stop-after", "2")
    before = (run / "last.pt").read_bytes()
    refused = CliRunner().invoke(app, ["--out", str(run), "--resume", "--lr", "1e-2", "--patch", "32"])
    assert refused.exit_code == 2
    assert "--lr 0.01 (the run has 0.003)" in refused.output and "--patch 32 (the run has 16)" in refused.output
    assert (run / "last.pt").read_bytes() == before  # nothing ran
    # The run's own values again are fine; a safe change is applied with a warning.
    same = invoke("--out", run, "--resume", "--lr", "3e-3", "--data", data, "--stop-after", "1", "--log-every", "2")
    assert "--log-every 2 on resume (the run had 1)" in same.output
    assert load_checkpoint(run / "last.pt")["step"] == 3


def test_resume_without_a_checkpoint_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--out", str(tmp_path / "none"), "--resume"])
    assert result.exit_code == 2 and "nothing to resume" in result.output and "Traceback" not in result.output


def test_help_shows_the_config_defaults() -> None:
    from upscale.train.config import TrainConfig

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert f"[default: {TrainConfig().steps}]" in result.output


def test_expected_errors_are_one_line_and_choices_are_checked(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")])
    assert missing.exit_code == 1 and "nope: not a folder" in missing.output and "Traceback" not in missing.output
    typo = CliRunner().invoke(app, ["--data", str(tmp_path), "--optimizer", "sgd"])
    assert typo.exit_code == 2 and "adamw" in typo.output  # Typer lists the choices
    nothing = CliRunner().invoke(app, ["--out", str(tmp_path / "r")])
    assert nothing.exit_code == 2 and "--data" in nothing.output
    help_text = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "realistic" in help_text and "bf16" in help_text


def test_resume_rules_without_the_command_line() -> None:
    from upscale.train.config import TrainConfig, config_for_resume

    from upscale.errors import UsageError

    saved = {**TrainConfig(lr=3e-3, patch=16, data=["d"]).__dict__, "retired_option": 1}  # an older field: dropped
    cfg, warnings = config_for_resume(saved, {"threads": 2, "lr": 3e-3, "out": "elsewhere"})
    assert cfg.lr == 3e-3 and cfg.patch == 16 and cfg.threads == 2 and cfg.out == "elsewhere"
    assert warnings == ["--threads 2 on resume (the run had None)"]  # out is where the run lives: no warning
    with pytest.raises(UsageError, match=r"--batch-size 8 \(the run has 16\).*--arch-option"):
        config_for_resume(saved, {"batch_size": 8, "arch_options": {"depth": 3}})


def test_resume_refuses_another_teacher_or_distillation_weight(tmp_path: Path) -> None:
    data = data_folder(tmp_path / "data")
    invoke("--data", data, "--out", tmp_path / "teacher", *RUN, "--stop-after", "1")
    teacher = tmp_path / "teacher" / "last.pt"
    other = tmp_path / "other.pt"
    other.write_bytes(teacher.read_bytes())
    run = tmp_path / "student"
    invoke("--data", data, "--out", run, *RUN, "--stop-after", "1", "--teacher", teacher, "--distill-weight", "0.5")
    before = (run / "last.pt").read_bytes()
    for option, value, said in [("--teacher", other, f"--teacher {other} (the run has {teacher})"),
                                ("--distill-weight", "0.9", "--distill-weight 0.9 (the run has 0.5)")]:
        refused = CliRunner().invoke(app, ["--out", str(run), "--resume", option, str(value)])
        assert refused.exit_code == 2 and said in refused.output.replace("\n", ""), refused.output
        assert (run / "last.pt").read_bytes() == before


@pytest.mark.parametrize("bicubic_db", [-1.0, 99.0])
def test_the_end_says_where_the_model_is_what_comes_next_and_whether_it_beats_bicubic(
        tmp_path: Path, monkeypatch, bicubic_db: float) -> None:
    """Bicubic's score is fixed here (the real one is `upscale eval`'s protocol, run on the validation folders)."""
    from upscale.train import cli

    monkeypatch.setattr(cli, "bicubic_baseline", lambda cfg: bicubic_db)
    data = data_folder(tmp_path / "data")
    result = invoke("--data", data, "--val", data_folder(tmp_path / "val"), "--val-every", "4", "--out",
                    tmp_path / "run", *RUN)
    said = " ".join(result.output.split())
    assert f"next: upscale-export {tmp_path / 'run' / 'best.pt'} model.onnx" in said
    beaten = "no better than bicubic on the validation images" in said
    assert beaten == (bicubic_db == 99.0) and ("bicubic's -1.00 dB" in said) == (bicubic_db == -1.0)


def test_the_bicubic_baseline_is_upscale_evals_score(tmp_path: Path) -> None:
    from upscale.train.config import TrainConfig
    from upscale.train.trainer import bicubic_baseline, mean_psnr

    from upscale.evaluate import bicubic_upscaler, evaluate, summarise

    val = data_folder(tmp_path / "val")
    cfg = TrainConfig(data=[str(val)], val=[str(val)], scale=2)
    assert bicubic_baseline(cfg) == mean_psnr(summarise(evaluate([val], 2, bicubic_upscaler(2))))


def test_ctrl_c_says_how_to_continue_not_that_something_broke(tmp_path: Path, monkeypatch) -> None:
    """An interrupt (Ctrl-C, or SIGTERM, raised as one) is exit 130 with the way to continue: not reported as an
    unexpected error (typer's Exit is not click's, and the error boundary took it for a bug)."""
    from upscale.train import cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train", interrupted)
    result = CliRunner().invoke(app, ["--data", str(data_folder(tmp_path / "d")), "--out", str(tmp_path / "run"),
                                      *RUN])
    assert result.exit_code == 130, result.output
    assert "--resume" in result.output and "unexpected" not in result.output
