"""Is data loading a bottleneck for `upscale-train`? Times patch batches against training steps.

    python benchmarks/data_loading.py --data ../shared/datasets/train [--scale 2 --patch 96 --batch-size 16]
    python benchmarks/data_loading.py --data ../shared/datasets/train --degradation realistic --copies 8

With ``--degradation realistic`` it also times what the pool of degraded copies saves: degrading every
patch of a batch on the fly (`upscale.degrade.realistic_lr` on each HR patch) instead of slicing the pool.

Prints the time to decode every image and make its whole-image LR once, the median milliseconds to
make one batch (random aligned LR/HR crops, flips, rotations) and one training step (forward, backward,
Adam) of the chosen architecture, and their ratio. The trainer makes batches on a background thread,
so it stalls only when the ratio nears 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from upscale.train.arch import create_model
from upscale.train.data import PatchSampler, load_images, to_unit

from upscale.degrade import realistic_lr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, action="append", required=True)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--arch", default="repsr")
    parser.add_argument("--depth", type=int, default=8, help="repsr body layers")
    parser.add_argument("--degradation", default="bicubic", choices=["bicubic", "realistic"])
    parser.add_argument("--copies", type=int, default=8, help="realistic: degraded copies per image")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    start = time.perf_counter()
    images = load_images(args.data, args.patch)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    sampler = PatchSampler(images.images, args.scale, args.patch, args.batch_size, seed=0,
                           degradation=args.degradation, copies=args.copies)
    lr_once_s = time.perf_counter() - start
    batch_ms = []
    for step in range(args.repeats):
        t = time.perf_counter()
        sampler.batch(step)
        batch_ms.append((time.perf_counter() - t) * 1000)

    fly_ms = []
    if args.degradation == "realistic":
        rng = np.random.default_rng(0)
        for step in range(args.repeats):
            hr_patches = sampler.batch(step)[1].numpy().transpose(0, 2, 3, 1)
            t = time.perf_counter()
            for patch in hr_patches:
                realistic_lr(patch, args.scale, rng)
            fly_ms.append((time.perf_counter() - t) * 1000)

    model = create_model(args.arch, args.scale, **({"depth": args.depth} if args.arch == "repsr" else {}))
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    lr, hr = (to_unit(t, torch.device("cpu")) for t in sampler.batch(0))
    step_ms = []
    for _ in range(max(3, args.repeats // 4)):
        t = time.perf_counter()
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_ms.append((time.perf_counter() - t) * 1000)
    result = {
        "images": len(images.images), "decode_all_s": round(load_s, 2), "whole_image_lr_s": round(lr_once_s, 2),
        "lr_pool_mb": round(sum(c.nbytes for copies in sampler.lr for c in copies) / 2**20, 1),
        "torch_threads": torch.get_num_threads(),
        "batch_ms": round(statistics.median(batch_ms), 1), "train_step_ms": round(statistics.median(step_ms), 1),
    }
    result["batch_to_step_ratio"] = round(result["batch_ms"] / result["train_step_ms"], 3)
    if fly_ms:
        result["degradation"] = f"realistic, {args.copies} copies per image"
        result["on_the_fly_batch_ms"] = round(statistics.median(fly_ms), 1)
        result["on_the_fly_to_step_ratio"] = round(result["on_the_fly_batch_ms"] / result["train_step_ms"], 3)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
