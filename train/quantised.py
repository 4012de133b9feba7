"""Quantisation-aware training: the ReLU networks as onnxruntime's int8 kernels will run them.

A float network quantised after training (onnxruntime's static quantisation of `fast-x2`) kept its mean quality,
but single pixels moved by up to 43 levels: an activation range set from a few calibration pictures clips strong
edges, and the network never learned to live with 8-bit steps. Here the network trains with both: every
convolution sees its weights rounded to int8 per output channel and its output (after the ReLU) rounded to uint8
levels of a range observed on the training batches, so the weights move to where rounding costs least. A range is
the largest value seen in the first half of the run (an activation beyond it would be clipped, and a clipped edge
is the tens-of-levels error static quantisation showed), then it freezes, so the second half trains against
exactly the steps that ship. `clip_ppm` trades the other way: finer steps, the rarest activations clipped (better on
photographs, worse on text; MODEL_CARD.md).

The network is `repsr-relu`'s inference form (plain 3x3 convolutions, no re-parameterised branches): it starts
from a trained float checkpoint (`--init-from`, folded here) and fine-tunes. The last convolution (int8 weights
and input) writes float32: its output is the detail added to the picture, whose range (about +-0.5) in 256 steps
would move pixels by a level or two everywhere and clip the strongest edges. The bicubic branch and the residual
sum stay float32 too: together about 7% of the work. `export.int8_export` writes it as a QDQ ONNX graph whose body
convolutions onnxruntime fuses into integer kernels; the first (3 channels in) and the last run on float kernels,
so rounding their weights buys no speed, and ``float_ends=1`` keeps those two as trained (without it they hold
int8 numbers, as the first twins did). Fine-tune at a small learning rate (1e-5): the network should stay its
float twin and only learn to live with the rounding.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from .arch import ArchSummary, BicubicUpsample, RepSR, SRNet, register

WEIGHT_LEVELS = 127  # int8 weights, symmetric per output channel (zero point 0), -127..127
FREEZE_AT = 0.5  # fraction of the run after which the activation ranges stop following the batches


def weight_scales(weight: torch.Tensor) -> torch.Tensor:
    """One int8 step per output channel: its largest |weight| lands on 127 (no weight is ever clipped)."""
    peak = weight.detach().abs().amax(dim=(1, 2, 3)).clamp_min(1e-8)
    return peak / WEIGHT_LEVELS


def quantised_weight(weight: torch.Tensor) -> torch.Tensor:
    """The weight as its int8 levels times their step, with a straight-through gradient."""
    zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, weight_scales(weight), zero, 0, -WEIGHT_LEVELS,
                                                  WEIGHT_LEVELS)


class ActivationRange(nn.Module):
    """A ReLU's output as uint8 (zero point 0): 256 steps from 0 to the largest value seen until frozen (or, with
    ``clip_ppm``, the largest of each batch's values below which all but that many per million lie)."""

    def __init__(self, clip_ppm: int = 0) -> None:
        super().__init__()
        self.clip_ppm = clip_ppm
        self.register_buffer("range", torch.zeros(()))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    def observed(self, x: torch.Tensor) -> torch.Tensor:
        if not self.clip_ppm:
            return x.amax()
        flat = x.detach().flatten()
        keep = max(int(flat.numel() * self.clip_ppm / 1e6), 1)
        return flat.topk(keep).values[-1]

    def qparams(self) -> tuple[float, int]:
        """(scale, zero point) of the uint8 tensor onnxruntime will hold."""
        return max(float(self.range), 1e-6) / 255, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.frozen):
            with torch.no_grad():
                self.range.copy_(torch.maximum(self.range, self.observed(x)))
        scale, zero = self.qparams()
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


@register("repsr-relu-int8")
class RepSRInt8(SRNet):
    """`repsr-relu` trained for int8 inference: plain 3x3 convolutions with int8 weights and uint8 activations,
    a float32 bicubic residual. Start it from a float checkpoint (`--init-from`); export writes QDQ ONNX."""

    float_twin = "repsr-relu"
    quantised = True

    def __init__(self, scale: int, channels: int = 16, depth: int = 12, headroom: int = 0, clip_ppm: int = 0,
                 float_ends: int = 0) -> None:
        super().__init__()
        self.scale, self.channels, self.depth = scale, channels, depth
        self.headroom = headroom  # percent added to each range when it freezes
        self.clip_ppm = clip_ppm  # activations per million a range may leave above it (0: none)
        self.float_ends = float_ends  # 1: the first and last convolutions keep float32 weights (they run in float32)
        widths = [3] + [channels] * (depth + 1) + [3 * scale * scale]
        self.convs = nn.ModuleList(nn.Conv2d(cin, cout, 3, padding=1) for cin, cout in itertools.pairwise(widths))
        self.ranges = nn.ModuleList(ActivationRange(clip_ppm) for _ in range(depth + 1))  # every conv's but the last
        self.upsample = BicubicUpsample(scale)

    def config(self) -> dict[str, int]:
        options = {"channels": self.channels, "depth": self.depth, "headroom": self.headroom}
        return (options | ({"clip_ppm": self.clip_ppm} if self.clip_ppm else {})
                | ({"float_ends": self.float_ends} if self.float_ends else {}))

    @property
    def receptive_field(self) -> int:
        return max(self.depth + 2, 2)

    @property
    def final_form(self) -> bool:
        """Once every range froze: before, the steps are not yet the ones that ship."""
        return all(bool(observed.frozen) for observed in self.ranges)

    def describe(self) -> ArchSummary:
        """As `SRNet.describe`, counting the convolutions the functional forward hides from module hooks."""
        convs = sum(c.in_channels * c.out_channels * 9 for c in self.convs) / self.scale**2
        bicubic = self.upsample.conv.weight.numel() / self.scale**2  # 5x5 taps per output pixel and channel
        return ArchSummary(self.arch_name, self.scale, sum(p.numel() for p in self.parameters()),
                           convs + bicubic, self.receptive_field)

    def weight(self, index: int) -> torch.Tensor:
        """Convolution ``index``'s weight as the exported graph holds it: int8 levels times their steps, or with
        ``float_ends`` the first and last as they are (both run on float kernels, so rounding them buys no speed)."""
        weight = self.convs[index].weight
        if self.float_ends and index in (0, len(self.convs) - 1):
            return weight
        return quantised_weight(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.fake_quantize_per_tensor_affine(x, 1 / 255, 0, 0, 255)  # the input's own 8-bit levels
        for i, observed in enumerate(self.ranges):
            h = observed(F.relu(F.conv2d(h, self.weight(i), self.convs[i].bias, padding=1)))
        detail = F.conv2d(h, self.weight(len(self.convs) - 1), self.convs[-1].bias, padding=1)  # float32 out
        return F.pixel_shuffle(detail + self.upsample.phases(x), self.scale)

    def training_progress(self, fraction: float) -> None:
        """Freeze the ranges once ``fraction`` of the run is done."""
        if fraction >= FREEZE_AT:
            for observed in self.ranges:
                if not bool(observed.frozen):  # headroom: for pictures unlike the patches (screenshots)
                    observed.range.mul_(1 + self.headroom / 100)
                    observed.frozen.fill_(True)

    @torch.no_grad()
    def adopt(self, float_model: SRNet) -> int:
        """Take the weights of a trained `repsr-relu` of the same shape (folded here); returns tensors copied."""
        if not isinstance(float_model, RepSR) or (float_model.scale, float_model.channels, float_model.depth) != (
                self.scale, self.channels, self.depth):
            raise ValueError(f"needs a repsr-relu x{self.scale} with {self.channels} channels and depth "
                             f"{self.depth} to start from")
        plain = [m for m in float_model.fold().body if isinstance(m, nn.Conv2d)]
        for mine, theirs in zip(self.convs, plain, strict=True):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
        return 2 * len(plain)
