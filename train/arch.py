"""Super-resolution networks, in one small registry (in the manner of timm's ``register_model``).

Every network takes N x 3 x H x W RGB in [0, 1] and returns N x 3 x sH x sW, is fully convolutional, and
declares its receptive-field radius in input pixels (`receptive_field`), so tiles that overlap by it
join exactly. `fold()` returns the inference form (re-parameterised branches merged), which is what
`upscale-export` writes. `describe()` gives the numbers the registry promises: parameters, MACs per
output pixel and receptive field.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from upscale.bicubic import phase_taps

_REGISTRY: dict[str, Callable[..., SRNet]] = {}


def register(name: str) -> Callable[[type[SRNet]], type[SRNet]]:
    """Class decorator: make an architecture available to ``create_model(name, ...)``."""

    def add(cls: type[SRNet]) -> type[SRNet]:
        if name in _REGISTRY:
            raise ValueError(f"architecture {name!r} registered twice")
        _REGISTRY[name] = cls
        cls.arch_name = name
        return cls

    return add


def _load_all() -> None:
    """The registry's other modules register on import (the int8 form lives in its own module)."""
    from . import quantised  # noqa: F401


def architectures() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def create_model(name: str, scale: int, **kwargs: int) -> SRNet:
    """Build a registered architecture; ``kwargs`` are its own options (channels, depth...)."""
    _load_all()
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; known: {', '.join(architectures())}")
    return _REGISTRY[name](scale=scale, **kwargs)


@dataclass(frozen=True)
class ArchSummary:
    name: str
    scale: int
    params: int
    macs_per_output_pixel: float
    receptive_field: int


class SRNet(nn.Module):
    """Base class: the registry's contract for a network."""

    arch_name = "abstract"
    scale: int
    quantised = False  # trained for int8 inference: exported as a QDQ graph (`export.int8_export`)
    float_twin: str | None = None  # the architecture whose trained weights `adopt` starts from (--init-from)

    def config(self) -> dict[str, int]:
        """Constructor arguments that rebuild this network (stored in checkpoints)."""
        raise NotImplementedError

    @property
    def receptive_field(self) -> int:
        """Radius, in input pixels, of the input region that one output pixel depends on."""
        raise NotImplementedError

    def training_progress(self, fraction: float) -> None:
        """Called by the trainer after each step with the share of the run done; plain networks keep no schedule."""

    @property
    def final_form(self) -> bool:
        """Whether the network now computes what it will ship as (the trainer keeps a best checkpoint only then)."""
        return True

    def adopt(self, twin: SRNet) -> int:
        """Take the weights of a trained ``float_twin``; returns the tensors copied."""
        raise NotImplementedError

    def fold(self) -> SRNet:
        """The inference form of this network (a copy); plain networks return a copy of themselves."""
        return copy.deepcopy(self).eval()

    def describe(self) -> ArchSummary:
        """Numbers of the inference form (what ships): parameters, MACs per output pixel, receptive field."""
        folded = self.fold()
        return ArchSummary(self.arch_name, self.scale, sum(p.numel() for p in folded.parameters()),
                           macs_per_output_pixel(folded), self.receptive_field)


def macs_per_output_pixel(model: nn.Module, size: int = 16) -> float:
    """Multiply-adds of every convolution, per output pixel, counted with forward hooks."""
    total = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total += output.numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total / (out.shape[2] * out.shape[3])


class BicubicUpsample(nn.Module):
    """Fixed bicubic upscaling (the project's one kernel, `upscale.bicubic.phase_taps`): edge padding,
    a grouped 5x5 convolution to the scale*scale phases, pixel shuffle. Radius 2 input pixels."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        taps = torch.tensor(phase_taps(scale), dtype=torch.float32)
        kernels = torch.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.conv = nn.Conv2d(3, 3 * scale * scale, 5, groups=3, bias=False)
        self.conv.weight.data.copy_(kernels.repeat(3, 1, 1, 1))
        self.conv.requires_grad_(False)  # fixed: this is interpolation, not a learned layer
        self.scale = scale

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """The scale*scale phases of each channel before the shuffle: a network adds its detail here and shuffles
        once (a shuffle is a permutation, so the sum is the same to the bit, and it moves half the data)."""
        return self.conv(F.pad(x, (2, 2, 2, 2), mode="replicate"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.phases(x), self.scale)


@register("srcnn")
class SRCNN(SRNet):
    """SRCNN (Dong et al. 2014/2016), the 9-5-5 variant: bicubic pre-upsampling, then three
    convolutions in high-resolution space (64 and 32 channels), ReLU, no residual. A baseline."""

    def __init__(self, scale: int, channels: int = 64, hidden: int = 32) -> None:
        super().__init__()
        self.scale, self.channels, self.hidden = scale, channels, hidden
        self.upsample = BicubicUpsample(scale)
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 9, padding=4), nn.ReLU(inplace=True),
            nn.Conv2d(channels, hidden, 5, padding=2), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 3, 5, padding=2),
        )

    def config(self) -> dict[str, int]:
        return {"channels": self.channels, "hidden": self.hidden}

    @property
    def receptive_field(self) -> int:
        return 2 + math.ceil((4 + 2 + 2) / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.upsample(x))


class RepConv(nn.Module):
    """A 3x3 convolution trained with parallel 1x1 and identity branches (RepVGG-style).

    The branches add optimisation paths while training; `fold()` merges them into the one 3x3
    convolution they are mathematically equal to, so inference pays for a plain 3x3 convolution.
    With ``weight_noise`` (levels, 127 for int8) training runs the merged kernel with uniform noise of
    one rounding step per output channel added: see `RoundingNoise`. ``identity=False`` leaves the identity
    branch out: folded, it is each output channel's largest weight (the centre tap, 1 + a little), which sets
    the channel's int8 step and leaves the other weights a few steps each.
    """

    def __init__(self, cin: int, cout: int, weight_noise: int = 0, identity: bool = True) -> None:
        super().__init__()
        self.conv3 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv1 = nn.Conv2d(cin, cout, 1)
        self.identity = identity and cin == cout
        self.weight_noise = weight_noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.weight_noise:
            weight, bias = self.kernel()
            step = weight.detach().abs().amax(dim=(1, 2, 3), keepdim=True) / self.weight_noise
            return F.conv2d(x, weight + (torch.rand_like(weight) - 0.5) * step, bias, padding=1)
        y = self.conv3(x) + self.conv1(x)
        return y + x if self.identity else y

    def kernel(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The one 3x3 kernel and bias the branches add up to (differentiable)."""
        weight = self.conv3.weight + F.pad(self.conv1.weight, (1, 1, 1, 1))
        if self.identity:
            eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
            weight = weight + F.pad(eye[:, :, None, None], (1, 1, 1, 1))
        return weight, self.conv3.bias + self.conv1.bias

    @torch.no_grad()
    def folded(self) -> nn.Conv2d:
        weight, bias = self.kernel()
        conv = nn.Conv2d(self.conv3.in_channels, self.conv3.out_channels, 3, padding=1, device=weight.device)
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
        return conv


class RoundingNoise(nn.Module):
    """ReLU that, while training, adds uniform noise of one step of ``levels`` steps from 0 to the largest
    output seen, as rounding to uint8 (levels 255) would, to the outputs above 0 (0 is exact in uint8).

    A network trained so stays its own float self but learns to shrug off the rounding an int8 twin adds:
    its twin then departs from it less (docs/MODEL_CARD.md). At inference it is a plain ReLU.
    """

    def __init__(self, levels: int) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("range", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(x)
        if not self.training:
            return y
        with torch.no_grad():
            self.range.copy_(torch.maximum(self.range, y.detach().amax()))
        step = self.range / self.levels
        return y + (torch.rand_like(y) - 0.5) * step * (y > 0)


@register("repsr")
class RepSR(SRNet):
    """The project's default design, built for CPU speed under onnxruntime.

    At inference it is a plain stack of 3x3 convolutions in low-resolution space with PReLU, a final 3x3
    convolution to 3*s*s channels and a pixel shuffle, plus a global residual: the bicubic upscale of the
    input, so the network only learns the missing detail. While training, every 3x3 convolution carries
    1x1 and identity branches (`RepConv`) that fold away at export. Low-resolution features keep the
    cost near (depth * 9 * channels^2) / scale^2 multiply-adds per output pixel. ``identity=0`` trains
    without the identity branches (`RepConv`), for an int8 twin with finer weight steps.
    """

    def __init__(self, scale: int, channels: int = 32, depth: int = 8, weight_noise: int = 0,
                 identity: int = 1) -> None:
        super().__init__()
        self.scale, self.channels, self.depth = scale, channels, depth
        self.weight_noise, self.identity = weight_noise, identity
        layers: list[nn.Module] = [RepConv(3, channels, weight_noise), self.activation(channels)]
        for _ in range(depth):
            layers += [RepConv(channels, channels, weight_noise, bool(identity)), self.activation(channels)]
        layers += [RepConv(channels, 3 * scale * scale, weight_noise)]
        self.body = nn.Sequential(*layers)
        self.upsample = BicubicUpsample(scale)
        with torch.no_grad():  # start as bicubic: the last layer begins at zero
            last = self.body[-1]
            for conv in (last.conv3, last.conv1):
                conv.weight.mul_(0.01)
                conv.bias.zero_()

    def activation(self, channels: int) -> nn.Module:
        return nn.PReLU(channels)

    def config(self) -> dict[str, int]:
        noise = {"weight_noise": self.weight_noise} if self.weight_noise else {}
        no_identity = {} if self.identity else {"identity": 0}
        return {"channels": self.channels, "depth": self.depth} | noise | no_identity

    @property
    def receptive_field(self) -> int:
        return max(self.depth + 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.body(x) + self.upsample.phases(x), self.scale)

    def fold(self) -> RepSR:
        folded = copy.deepcopy(self).eval()
        for i, layer in enumerate(folded.body):
            if isinstance(layer, RepConv):
                folded.body[i] = layer.folded()
            elif isinstance(layer, RoundingNoise):
                folded.body[i] = nn.ReLU(inplace=True)
        return folded


@register("repsr-relu")
class RepSRReLU(RepSR):
    """`repsr` with ReLU in place of PReLU, for the cheapest models (`fast-x2`).

    onnxruntime's CPU convolution applies ReLU in the same pass (its NCHWc kernels fuse Relu, not PReLU),
    while each PReLU is a pass of its own over the feature maps: with 16 channels, 12 layers, whole
    tiles ran at 11.5 MP/s out with ReLU against 7.4 with PReLU on a 2-core EPYC. ReLU is also what
    int8 kernels fuse. Defaults: 16 channels, 12 layers, 7,527 multiply-adds per output pixel at 2x.
    ``activation_noise`` / ``weight_noise`` (levels; 0: off) train it with rounding noise (`RoundingNoise`,
    `RepConv`) before its int8 twin is fine-tuned from it: the twin then follows it more closely.
    """

    def __init__(self, scale: int, channels: int = 16, depth: int = 12, weight_noise: int = 0,
                 activation_noise: int = 0, identity: int = 1) -> None:
        self.activation_noise = activation_noise  # read by `activation` while the layers are built
        super().__init__(scale, channels, depth, weight_noise, identity)

    def activation(self, channels: int) -> nn.Module:
        return RoundingNoise(self.activation_noise) if self.activation_noise else nn.ReLU(inplace=True)

    def config(self) -> dict[str, int]:
        noise = {"activation_noise": self.activation_noise} if self.activation_noise else {}
        return super().config() | noise
