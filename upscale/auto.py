"""`--model auto`: per file, the clean model or the photo model of the needed scale, from evidence in the file.

The clean models (`repsr-x*`) are the best on clean pictures and sharpen JPEG blocks and noise; the photo
models (`photo-x*`, trained on realistic degradations) remove them at a small cost on clean pictures. The rule
(`decide`), from `upscale.evidence`:

- a JPEG whose quantisation tables say quality below 90 -> photo;
- otherwise, 8x8 blockiness of 1.3 or more (a JPEG saved again as PNG, say) -> photo;
- otherwise, noise in the flattest blocks of at least 2.0 + 6 / sqrt(blocks) levels -> photo (2.05 on a
  megapixel, 2.6 on a 100x100 picture: the fewer 8x8 blocks, the likelier a textured clean picture has no flat
  one, so small pictures must show more), if the colour planes show noise too (`noise_corroborated`);
- else clean.

The thresholds were set on BSDS500's test images at 1/2, 1/4 and 1/6 size and checked on BSD200, Set5, Set14 and T91
(`benchmarks/auto_rates.py`; README: `--model auto`). Gathering the evidence reads at most ~1 MP of luma, a few
milliseconds a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .catalogue import auto_pair, auto_scale
from .device import Device
from .evidence import Evidence, gather
from .images import Picture
from .model import UpscaleModel, load_model
from .registry import bundled_models

JPEG_QUALITY_BELOW = 90
BLOCKINESS_FROM = 1.3
NOISE_FROM = 2.0
NOISE_SMALL_PICTURE = 6.0  # added over sqrt(8x8 blocks measured)
COLOUR_NOISE_FROM = 1.0  # noise in Cb/Cr that corroborates the luma's
NOISE_ALONE_FROM = 6.0  # luma noise that counts without colour noise


def noise_from(blocks: int) -> float:
    """The noise reading that counts as degraded, for a picture of ``blocks`` 8x8 blocks."""
    return NOISE_FROM + NOISE_SMALL_PICTURE / math.sqrt(max(blocks, 1))



def noise_corroborated(evidence: Evidence) -> bool:
    """Whether a luma noise reading is noise, not texture: sensor noise (and added noise) shows in the colour
    planes too, fine texture of a clean picture hardly does (Cb/Cr read below 0.7 on clean pictures, above 1.8
    with noise of sigma 5). Grey pictures, and luma noise strong enough alone, need no colour evidence."""
    if evidence.colour_noise is None or evidence.noise >= NOISE_ALONE_FROM:
        return True
    return evidence.colour_noise >= COLOUR_NOISE_FROM


def decide(evidence: Evidence) -> tuple[bool, str]:
    """(degraded?, why) by the rule in the module docstring."""
    q = evidence.jpeg_quality
    if q is not None and q < JPEG_QUALITY_BELOW:
        return True, f"JPEG quality ~{q}"
    if evidence.blockiness >= BLOCKINESS_FROM:
        return True, f"8x8 blockiness {evidence.blockiness:.2f}"
    if evidence.noise >= noise_from(evidence.blocks) and noise_corroborated(evidence):
        return True, f"noise {evidence.noise:.1f}"
    return False, "clean (" + evidence.describe() + ")"


@dataclass
class AutoModel:
    """Two loaded models and the rule that picks one per picture."""

    clean: UpscaleModel
    photo: UpscaleModel | None  # None when no photo model of this scale ships

    @property
    def scale(self) -> int:
        return self.clean.scale

    @property
    def device(self) -> Device:
        """Where both models run (they are loaded on the same device)."""
        return self.clean.device

    def choose(self, picture: Picture) -> tuple[UpscaleModel, str]:
        """The model for ``picture`` and a short reason (for the report and the progress line)."""
        degraded, why = decide(gather(picture.pixels, picture.jpeg_quality))
        if degraded and self.photo is not None:
            return self.photo, why
        if degraded:
            return self.clean, why + f"; no photo model at x{self.scale}"
        return self.clean, why


def load_auto(factor: float | None, device: str = "auto", threads: int | None = None) -> AutoModel:
    """The pair for ``factor`` (x2 up to 2, else x4), loaded on ``device``."""
    clean_name, photo_name = auto_pair(auto_scale(factor))
    clean = load_model(clean_name, device, threads)
    photo = load_model(photo_name, device, threads) if photo_name in bundled_models() else None  # not shipped
    return AutoModel(clean, photo)


def model_for(model: UpscaleModel | AutoModel, picture: Picture) -> tuple[UpscaleModel, str | None]:
    """The model that runs ``picture``, and why when ``model`` is automatic (else None)."""
    if isinstance(model, AutoModel):
        return model.choose(picture)
    return model, None
