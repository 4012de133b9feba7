"""Training losses: pixel (L1 or MSE), an optional Fourier term, and the VGG perceptual loss.

The perceptual loss is the known fix for the blur a pure pixel loss gives (SRCNN's weakness): compare
VGG19 features of output and target. VGG19 is torchvision's architecture, written out here (torchvision
is not a dependency), so torchvision's ImageNet weight file loads as it is. Nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from upscale.errors import TrainingError

from .checkpoint import read_weights

VGG19_FILE = "vgg19-dcbb9e9d.pth"
"""torchvision's file name for ImageNet VGG19 weights, looked for in torch's hub cache."""
_VGG19_LAYERS = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                 512, 512, 512, 512, "M"]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features``: same layers, same indices, so its state dict loads."""
    layers: list[nn.Module] = []
    cin = 3
    for v in _VGG19_LAYERS:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, int(v), 3, padding=1), nn.ReLU(inplace=True)]
            cin = int(v)
    return nn.Sequential(*layers)


def find_vgg_weights(explicit: Path | None) -> Path:
    """The weight file to use: ``explicit``, else torchvision's cached download; never downloads."""
    if explicit is not None:
        if not explicit.is_file():
            raise TrainingError(f"{explicit}: VGG19 weight file not found")
        return explicit
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE
    if cached.is_file():
        return cached
    raise TrainingError(
        f"the perceptual loss needs ImageNet VGG19 weights: pass --vgg-weights PATH (torchvision's {VGG19_FILE}) "
        f"or place the file at {cached}; nothing is downloaded"
    )


class PerceptualLoss(nn.Module):
    """L1 distance of VGG19 features (conv5_4 before its ReLU, as ESRGAN), frozen weights."""

    def __init__(self, weights: Path, layer: int = 34) -> None:
        super().__init__()
        features = vgg19_features()
        state = read_weights(weights)  # a downloaded file: weights only, size-checked
        if not isinstance(state, dict):
            raise TrainingError(f"{weights}: holds a {type(state).__name__}, not VGG19 weights")
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        features.load_state_dict(state)
        self.features = features[: layer + 1].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        f_sr = self.features((sr - self.mean) / self.std)
        f_hr = self.features((hr - self.mean) / self.std)
        return F.l1_loss(f_sr, f_hr)


PIXEL_LOSSES = ("l1", "mse")


def pixel_distance(name: str, option: str = "--loss"):
    """``F.l1_loss`` or ``F.mse_loss`` by name (the pixel loss and the distance to a teacher choose alike);
    TrainingError naming ``option`` for any other name."""
    if name not in PIXEL_LOSSES:
        raise TrainingError(f"{option} must be l1 or mse, got {name!r}")
    return F.l1_loss if name == "l1" else F.mse_loss


class SRLoss(nn.Module):
    """pixel + fft_weight * Fourier L1 + perceptual_weight * VGG; returns the total and its parts."""

    def __init__(self, pixel: str = "l1", fft_weight: float = 0.0, perceptual_weight: float = 0.0,
                 vgg_weights: Path | None = None) -> None:
        super().__init__()
        self.pixel = pixel_distance(pixel)
        self.fft_weight = fft_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual = PerceptualLoss(find_vgg_weights(vgg_weights)) if perceptual_weight > 0 else None

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.pixel(sr, hr)
        parts = {"pixel": float(loss.detach())}
        if self.fft_weight > 0:
            fft = (torch.fft.rfft2(sr.float()) - torch.fft.rfft2(hr.float())).abs().mean()
            loss = loss + self.fft_weight * fft
            parts["fft"] = float(fft.detach())
        if self.perceptual is not None:
            perceptual = self.perceptual(sr, hr)
            loss = loss + self.perceptual_weight * perceptual
            parts["perceptual"] = float(perceptual.detach())
        return loss, parts
