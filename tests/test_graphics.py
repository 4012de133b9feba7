"""`--graphics N`: procedural pictures (text, shapes, star fields) beside the training photographs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from upscale.train.graphics import SIZE, graphics_pictures
from upscale.train.trainer import train

from .test_train import tiny_config


def test_pictures_are_a_function_of_the_seed_alone() -> None:
    first, again, other = graphics_pictures(6, seed=3), graphics_pictures(6, seed=3), graphics_pictures(6, seed=4)
    assert all(a.shape == (SIZE[1], SIZE[0], 3) and a.dtype == np.uint8 for a in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
    assert np.array_equal(graphics_pictures(2, seed=3)[1], first[1])  # picture i does not depend on the count


def hard_edge_share(picture: np.ndarray) -> float:
    """The share of horizontally neighbouring pixels that differ by more than 64 levels in some channel."""
    step = np.abs(np.diff(picture.astype(int), axis=1)).max(axis=2)
    return float((step > 64).mean())


def test_each_kind_is_what_photographs_lack() -> None:
    text, shapes, stars = graphics_pictures(3, seed=0)
    # text and shapes: flat colours meeting at hard edges (a photograph's edges spread over pixels)
    for picture in (text, shapes):
        _, counts = np.unique(picture.reshape(-1, 3), axis=0, return_counts=True)
        assert counts.max() > 0.05 * counts.sum()  # a flat background or panel
        assert hard_edge_share(picture) > 0.002
    assert len(np.unique(text.reshape(-1, 3), axis=0)) > 20  # antialiased letters, not only flat fills
    # star field: a dark sky with some points of light, a few of them saturated
    luma = stars.mean(axis=2)
    assert np.median(luma) < 30 and (luma > 200).sum() > 10 and (luma > 100).mean() < 0.05


def test_training_adds_the_pictures_to_the_data(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, steps=2, val_every=2, save_every=2, graphics=3)
    train(cfg)
    start = json.loads((Path(cfg.out) / "metrics.jsonl").read_text().splitlines()[0])
    assert start["train_images"] == 4 + 3 and start["config"]["graphics"] == 3
