"""Where an int8 twin's pixel differences come from: the float model's own weights, rounded one way at a time.

    python benchmarks/int8_error_sources.py checkpoints/fast-x2-stage1/best.pt ../shared/datasets/val/Set5 \
        ../shared/datasets/val/Set14 [--calibrate DIR]

Takes a float `repsr-relu` checkpoint (folded to its plain 3x3 form, as the int8 network starts) and, with no
training, rounds (1) only its weights to int8 per output channel, (2) only its activations to uint8 steps of a range
(the largest value seen on ``--calibrate``'s first 12 pictures, halved by bicubic), (3) both. Prints, against the
float output on each folder's pictures (halved by bicubic), the 99.99th percentile, 99.9th percentile and maximum
difference in 8-bit levels over every pixel and channel, and per layer how far the largest weight of an output
channel stands above its mean magnitude: the int8 step is the largest weight / 127, so a ratio of 12 leaves the
typical weight about 10 steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from upscale.train.checkpoint import load_checkpoint, model_from_checkpoint
from upscale.train.quantised import quantised_weight

from upscale.evaluate import load_ground_truth

CALIBRATION_PICTURES = 12


def halved(pixels: np.ndarray, scale: int) -> torch.Tensor:
    """The picture reduced by ``scale`` (Pillow's bicubic), as a 1x3xHxW tensor in [0, 1]."""
    rgb = np.repeat(pixels[..., None], 3, 2) if pixels.ndim == 2 else pixels
    small = Image.fromarray(rgb).resize((rgb.shape[1] // scale, rgb.shape[0] // scale), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(small).copy()).permute(2, 0, 1)[None].float() / 255


class Rounded:
    """The folded network run with its weights and/or its activations rounded as the int8 graph rounds them."""

    def __init__(self, network: torch.nn.Module) -> None:
        self.network = network
        self.convs = [m for m in network.body if isinstance(m, torch.nn.Conv2d)]
        self.ranges: list[float] = [0.0] * (len(self.convs) - 1)

    def __call__(self, x: torch.Tensor, weights: bool = False, activations: bool = False,
                 observe: bool = False) -> torch.Tensor:
        h = x
        for i, conv in enumerate(self.convs[:-1]):
            h = F.relu(F.conv2d(h, quantised_weight(conv.weight) if weights else conv.weight, conv.bias, padding=1))
            if observe:
                self.ranges[i] = max(self.ranges[i], float(h.max()))
            if activations:
                h = torch.fake_quantize_per_tensor_affine(h, self.ranges[i] / 255, 0, 0, 255)
        last = self.convs[-1]
        detail = F.conv2d(h, quantised_weight(last.weight) if weights else last.weight, last.bias, padding=1)
        return F.pixel_shuffle(detail, self.network.scale) + self.network.upsample(x)


def levels(t: torch.Tensor) -> torch.Tensor:
    return (t.clamp(0, 1) * 255).round()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a float repsr-relu checkpoint")
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--calibrate", type=Path, default=Path("../shared/datasets/train/BSD200"))
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    network = model_from_checkpoint(load_checkpoint(args.checkpoint)).fold().eval()
    scale, rounded = network.scale, Rounded(network)
    for path in sorted(args.calibrate.iterdir())[:CALIBRATION_PICTURES]:
        with Image.open(path) as im:
            rounded(halved(np.asarray(im.convert("RGB")), scale), observe=True)
    kinds = {"weights": (True, False), "activations": (False, True), "both": (True, True)}
    diffs: dict[str, list[torch.Tensor]] = {kind: [] for kind in kinds}
    for folder in args.folders:
        for path in sorted(folder.glob("*.png")):
            x = halved(load_ground_truth(path, scale), scale)
            reference = levels(rounded(x))
            for kind, (weights, activations) in kinds.items():
                diffs[kind].append((levels(rounded(x, weights, activations)) - reference).abs().flatten())
    print(f"{args.checkpoint} x{scale}, rounded without training, against its float output:")
    print("| rounded | 99.99th pct. | 99.9th pct. | max |")
    print("| --- | --- | --- | --- |")
    for kind, parts in diffs.items():
        every = torch.cat(parts).numpy()
        print(f"| {kind} | {np.percentile(every, 99.99):g} | {np.percentile(every, 99.9):g} | {every.max():g} |")
    ratios = [float((c.weight.abs().amax(dim=(1, 2, 3)) / c.weight.abs().mean(dim=(1, 2, 3))).mean())
              for c in rounded.convs]
    print("largest / mean |weight| per output channel, by layer:", " ".join(f"{r:.1f}" for r in ratios))


if __name__ == "__main__":
    main()
