"""`upscale eval`: quality by the standard super-resolution protocol, through the same engine as `upscale dir`.

For each ground-truth (HR) image: crop to a multiple of the scale, make the low-resolution input with
MATLAB-compatible antialiased bicubic downscaling (`upscale.bicubic.imresize`, rounded to 8 bits as
MATLAB does), optionally degrade that input by a fixed recipe (`upscale.degrade.parse_spec`: JPEG, noise,
blur, applied after the downscale, noise seeded by the image's name), upscale it, and score Y-channel
PSNR and SSIM with ``scale`` pixels shaved from each border.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .auto import AutoModel, model_for
from .bicubic import imresize
from .degrade import apply_spec, image_seed, parse_spec
from .images import Picture, image_extensions
from .metrics import y_psnr_ssim
from .model import UpscaleModel
from .picture import UpscaleOptions, upscale_picture

Upscaler = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ImageScore:
    dataset: str
    image: str
    psnr: float
    ssim: float
    degradation: str = "clean"

    @property
    def group(self) -> str:
        """What means are taken over: the dataset, and the degradation when there is one."""
        return self.dataset if self.degradation == "clean" else f"{self.dataset} {self.degradation}"


def load_ground_truth(path: Path, scale: int) -> np.ndarray:
    """HxWx3 RGB, or HxW for grey images (their own luma), uint8, cropped to a multiple of ``scale``."""
    with Image.open(path) as im:
        im = im.convert("L" if im.mode in ("L", "1", "I;16", "I") else "RGB")
        data = np.asarray(im)
    h, w = data.shape[:2]
    return data[: h - h % scale, : w - w % scale]


def bicubic_upscaler(scale: int) -> Upscaler:
    return lambda lr: imresize(lr, scale)


def model_upscaler(model: UpscaleModel | AutoModel, scale: int, tile: int | None = None) -> Upscaler:
    """Run ``model`` through the engine (tiling included) at ``scale``; for ``auto``, the model `upscale dir`
    would choose for each input (`upscale.auto.model_for`)."""

    def run(lr: np.ndarray) -> np.ndarray:
        picture = Picture(lr[..., None] if lr.ndim == 2 else lr)
        chosen, _ = model_for(model, picture)
        out = upscale_picture(chosen, picture, UpscaleOptions(factor=float(scale), tile=tile)).pixels
        return out[..., 0] if lr.ndim == 2 else out

    return run


def evaluate(folders: Iterable[Path], scale: int, upscaler: Upscaler, degradation: str = "clean") -> list[ImageScore]:
    """Score every image in ``folders`` (sorted by name), its LR input degraded by ``degradation``."""
    steps = parse_spec(degradation)
    scores = []
    known = image_extensions()
    for folder in folders:
        for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in known):
            hr = load_ground_truth(path, scale)
            lr = apply_spec(imresize(hr, 1 / scale), steps, image_seed(path.name))
            sr = upscaler(lr)
            if sr.shape != hr.shape:
                raise ValueError(f"{path}: upscaled to {sr.shape}, expected {hr.shape}")
            p, s = y_psnr_ssim(sr, hr, scale)
            scores.append(ImageScore(Path(folder).name, path.name, p, s, degradation))
    return scores


def summarise(scores: list[ImageScore]) -> dict[str, dict[str, float]]:
    """Mean PSNR/SSIM per dataset (folder name) and degradation."""
    out: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(s.group for s in scores):
        mine = [s for s in scores if s.group == name]
        out[name] = {"psnr": float(np.mean([s.psnr for s in mine])), "ssim": float(np.mean([s.ssim for s in mine])),
                     "images": len(mine)}
    return out


def as_json(scores: list[ImageScore], context: dict[str, object]) -> dict[str, object]:
    return {"context": context, "mean": summarise(scores), "images": [asdict(s) for s in scores]}
