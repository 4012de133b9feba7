"""The training degradation pipeline's order and probabilities, traced through stand-ins for its primitives, and
`upscale eval --degrade noise:S` giving the same noise in separate processes."""

from __future__ import annotations

import hashlib
import linecache
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from upscale.train.degradations import REALISTIC, realistic_lr

from upscale import bicubic, degrade

DRAWS = 6000


def _label(name: str) -> str:
    """The step's name, and where `realistic_lr` took it: ``final`` for the last resize, sinc and JPEG; ``simple``
    for the simple branch; plain for the second-order branch's rounds."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_name not in ("realistic_lr", "_simple_lr"):
        frame = frame.f_back
    if frame.f_code.co_name == "_simple_lr":
        return f"simple-{name}"
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    if "1 / scale" in line:
        return "clean-downscale"
    final = any(mark in line for mark in ("(x, rng, h, w)", "(x, sinc)", "(x, quality)"))
    return f"final-{name}" if final else name


@pytest.fixture
def traces(monkeypatch) -> list[list[str]]:
    """Every `realistic_lr` call's steps, in order, with the primitives replaced by recorders (shapes kept)."""
    calls: list[str] = []

    def record(name, result):
        def step(x, *args, **kwargs):
            calls.append(_label(name))
            return result(x, *args)
        return step

    monkeypatch.setattr(bicubic, "imresize", record("downscale", lambda x, f: np.zeros(
        (round(x.shape[0] * f), round(x.shape[1] * f), 3), np.float32)))
    monkeypatch.setattr(degrade, "resize", record("resize", lambda x, h, w, *a: np.zeros((h, w, 3), np.float32)))
    for name in ("blur", "convolve", "gaussian_noise", "poisson_noise", "jpeg"):
        monkeypatch.setattr(degrade, name, record(name, lambda x, *a: x))
    hr = np.zeros((16, 16, 3), np.uint8)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(DRAWS):
        calls.clear()
        realistic_lr(hr, 2, rng)
        out.append(list(calls))
    return out


def near(count: int, total: int, p: float) -> bool:
    """Within 4 standard errors of a binomial's mean."""
    return abs(count - total * p) <= 4 * math.sqrt(total * p * (1 - p)) + 1


def branch(trace: list[str]) -> str:
    if trace == ["clean-downscale"]:
        return "clean"
    return "simple" if trace[0] == "simple-downscale" else "second-order"


def test_branches_come_as_often_as_set(traces) -> None:
    kinds = [branch(t) for t in traces]
    assert near(kinds.count("clean"), DRAWS, REALISTIC.p_clean)
    assert near(kinds.count("simple"), DRAWS, REALISTIC.p_simple)


def test_the_simple_branch_blurs_then_adds_noise_then_compresses(traces) -> None:
    simple = [t for t in traces if branch(t) == "simple"]
    order = ["simple-downscale", "simple-blur", "simple-gaussian_noise", "simple-jpeg"]
    for trace in simple:
        assert trace == sorted(trace, key=order.index), trace  # noise always before JPEG
    for name, p in [("simple-blur", REALISTIC.simple_blur[0]), ("simple-gaussian_noise", REALISTIC.simple_noise[0]),
                    ("simple-jpeg", REALISTIC.simple_jpeg[0])]:
        assert near(sum(name in t for t in simple), len(simple), p), name


NOISE = "(?:gaussian_noise|poisson_noise) "
SECOND_ORDER = re.compile(
    f"(?P<blur>convolve )?(?P<resize>resize )?(?P<noise>{NOISE})?(?P<jpeg>jpeg )?"  # round 1, noise before JPEG
    f"(?:(?P<blur2>convolve )?(?P<noise2>{NOISE})?)"  # round 2 (maybe)
    "(?:final-resize (?:final-convolve )?(?P<last>final-jpeg )?"  # the final steps, in one order
    "|(?P<first>final-jpeg )?final-resize (?:final-convolve )?)")  # or the other


def test_the_second_order_branch_runs_in_order_and_ends_with_the_final_jpeg(traces) -> None:
    second = [" ".join(t) + " " for t in traces if branch(t) == "second-order"]
    matches = [SECOND_ORDER.fullmatch(t) for t in second]
    assert all(matches), [t for t, m in zip(second, matches, strict=True) if not m][:3]
    n = len(second)
    for group, p in [("blur", REALISTIC.p_blur), ("jpeg", REALISTIC.p_jpeg), ("noise", REALISTIC.p_noise)]:
        assert near(sum(bool(m[group]) for m in matches), n, p), group
    final = sum(bool(m["last"] or m["first"]) for m in matches)
    assert near(final, n, REALISTIC.p_final_jpeg)
    assert near(sum(bool(m["last"]) for m in matches), final, 0.5)  # after the resize half of the time
    assert near(sum("final-convolve" in t for t in second), n, REALISTIC.p_final_sinc)


def test_eval_noise_is_the_same_in_separate_processes(tmp_path) -> None:
    """The noise of `--degrade noise:S` is seeded by the image's name, so two runs (with different hash seeds)
    score the same pixels."""
    code = ("import hashlib, numpy as np; from upscale.degrade import apply_spec, image_seed, parse_spec; "
            "lr = (np.arange(48 * 40 * 3) % 251).astype(np.uint8).reshape(48, 40, 3); "
            "print(hashlib.sha256(apply_spec(lr, parse_spec('noise:7+jpeg:60'), image_seed('baby.png'))"
            ".tobytes()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2", "random")}
    assert len(digests) == 1
    lr = (np.arange(48 * 40 * 3) % 251).astype(np.uint8).reshape(48, 40, 3)
    other = degrade.apply_spec(lr, degrade.parse_spec("noise:7+jpeg:60"), degrade.image_seed("bird.png"))
    assert hashlib.sha256(other.tobytes()).hexdigest() + "\n" not in digests  # another name, other noise
