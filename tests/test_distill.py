"""Distillation: the teacher's term pulls the student toward the teacher's output for the student's very input
(not the ground truth), carries a gradient, and the teacher runs with its EMA weights (what its validation scored)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from upscale.train.arch import create_model  # noqa: E402
from upscale.train.checkpoint import checkpoint_state, model_from_checkpoint, save_checkpoint  # noqa: E402
from upscale.train.config import TrainConfig  # noqa: E402
from upscale.train.losses import SRLoss  # noqa: E402
from upscale.train.trainer import Run, _step, load_teacher, torch_upscaler  # noqa: E402

from .conftest import photo  # noqa: E402

TINY = {"channels": 8, "depth": 2}


def network(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model("repsr", 2, **TINY).fold().requires_grad_(False)


def student_run(weight: float, teacher: torch.nn.Module | None, **options) -> Run:
    torch.manual_seed(0)
    model = create_model("repsr", 2, **TINY)
    cfg = TrainConfig(arch="repsr", arch_options=dict(TINY), distill_weight=weight, warmup=0, grad_clip=0, **options)
    return Run(cfg, torch.device("cpu"), 1, 0, model, model, None, torch.optim.SGD(model.parameters(), lr=0.1),
               teacher=teacher)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    lr = torch.from_numpy(rng.integers(0, 256, (2, 3, 8, 8), dtype=np.uint8))
    hr = torch.from_numpy(rng.integers(0, 256, (2, 3, 16, 16), dtype=np.uint8))
    return lr, hr


def taught(teacher: torch.nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """What the teacher makes of the student's own input: the target."""
    return teacher(lr.float() / 255).clamp(0, 1)


def gradients(run: Run) -> list[torch.Tensor]:
    return [p.grad.clone() for p in run.model.parameters() if p.grad is not None]


def test_the_teachers_term_is_the_distance_to_the_teachers_output_with_its_gradient() -> None:
    lr, hr = batch(1)
    teacher = network(5)
    run = student_run(0.7, teacher)
    loss, parts, _ = _step(run, 10, (lr, hr), SRLoss(), contextlib.nullcontext())
    got = gradients(run)

    reference = student_run(0.7, None)  # the same student, the loss written out by hand
    sr = reference.model(lr.float() / 255)
    distance = torch.nn.functional.l1_loss(sr, taught(teacher, lr))
    expected = torch.nn.functional.l1_loss(sr, hr.float() / 255) + 0.7 * distance
    expected.backward()
    assert parts["distill"] == pytest.approx(float(distance.detach()), rel=1e-6)
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    for a, b in zip(got, gradients(reference), strict=True):
        torch.testing.assert_close(a, b)
    # toward the teacher, not the ground truth: another teacher gives another gradient
    other = student_run(0.7, network(6))
    _step(other, 10, (lr, hr), SRLoss(), contextlib.nullcontext())
    assert any(not torch.allclose(a, b) for a, b in zip(got, gradients(other), strict=True))
    # and the term carries a gradient of its own: weight 0 gives another one
    plain = student_run(0.0, teacher)
    _step(plain, 10, (lr, hr), SRLoss(), contextlib.nullcontext())
    assert any(not torch.allclose(a, b) for a, b in zip(got, gradients(plain), strict=True))


def test_a_twin_can_learn_the_teacher_alone_by_squared_distance() -> None:
    """--pixel-weight 0 --distill-loss mse: the int8 twins' loss, the ground truth out of it (swapping HR for
    anything changes nothing) and large differences to the teacher costing more than small ones."""
    lr, hr = batch(2)
    teacher = network(5)
    run = student_run(2.0, teacher, pixel_weight=0.0, distill_loss="mse")
    loss, parts, _ = _step(run, 10, (lr, hr), SRLoss(), contextlib.nullcontext())
    got = gradients(run)

    reference = student_run(2.0, None)
    sr = reference.model(lr.float() / 255)
    expected = 2.0 * torch.nn.functional.mse_loss(sr, taught(teacher, lr))
    expected.backward()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert parts["distill"] == pytest.approx(float(expected.detach()) / 2, rel=1e-6)
    for a, b in zip(got, gradients(reference), strict=True):
        torch.testing.assert_close(a, b)
    other_truth = student_run(2.0, teacher, pixel_weight=0.0, distill_loss="mse")
    _step(other_truth, 10, (lr, hr.flip(-1)), SRLoss(), contextlib.nullcontext())
    for a, b in zip(got, gradients(other_truth), strict=True):
        torch.testing.assert_close(a, b)


def test_the_teacher_runs_with_its_ema_weights(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model, ema = create_model("repsr", 2, **TINY), create_model("repsr", 2, **TINY)
    with torch.no_grad():
        for p in ema.parameters():
            p.add_(0.05)
    path = tmp_path / "teacher.pt"
    cfg = TrainConfig(arch="repsr", arch_options=dict(TINY))
    save_checkpoint(path, checkpoint_state(model, ema, torch.optim.Adam(model.parameters()), 5, 1.0, cfg))

    teacher = load_teacher(TrainConfig(scale=2, teacher=str(path), distill_weight=1.0), torch.device("cpu"))
    lr = photo(12, 16)
    state = torch.load(path, weights_only=True)
    with_ema = torch_upscaler(model_from_checkpoint(state, use_ema=True).eval(), torch.device("cpu"))(lr)
    raw = torch_upscaler(model_from_checkpoint(state, use_ema=False).eval(), torch.device("cpu"))(lr)
    assert not np.array_equal(with_ema, raw)
    mine = torch_upscaler(teacher, torch.device("cpu"))(lr)
    assert np.abs(mine.astype(int) - with_ema.astype(int)).max() <= 1  # folded branches round


def test_the_teacher_sees_the_students_own_input_rotated_and_mirrored_as_it_is() -> None:
    """The target is the teacher's output for exactly the patch the student upscales: a network is not
    rotation-equivariant, so the teacher's output for the upright picture, turned, would be another target."""
    seen: list[torch.Tensor] = []

    class Spy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(x.clone())
            return torch.nn.functional.interpolate(x, scale_factor=2)

    lr, hr = batch(3)
    turned = torch.rot90(lr, 1, (2, 3)).flip(-1)
    _step(student_run(1.0, Spy()), 10, (turned, torch.rot90(hr, 1, (2, 3)).flip(-1)), SRLoss(),
          contextlib.nullcontext())
    assert len(seen) == 1 and torch.equal(seen[0], turned.float() / 255)
