"""The model contract: the one place that says what an `upscale` ONNX model looks like.

Every stage agrees on it: `upscale-export` writes it, `upscale` reads it, and the README repeats it.

Tensors
    * one input, NCHW, float32 (or float16), RGB, values in [0, 1], with dynamic N, H and W;
    * one output, N x 3 x (scale*H) x (scale*W), same dtype and range (values outside [0, 1] are clipped
      by the runner, not by the model).

Metadata (ONNX ``metadata_props``, all values strings, keys prefixed with ``upscale.``)
    scale, architecture, tile_overlap (receptive-field radius in input pixels, so tiles that overlap
    by it join exactly), multiple_of and min_size (size needs of the input), value_range, channel_order,
    training_data, validation (e.g. "Set5 x2 Y-PSNR 37.12 dB"), description, tiling (exact, or approximate and
    why), source (converted third-party weights: file name and sha256), fixed_window and shapes (0 and "any
    size" for dynamic graphs; else the one square input side the graph takes, and why), contract_version.

A model without this metadata still runs: the runner finds the scale with a small probe and uses
`FALLBACK_TILE_OVERLAP`, and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from enum import StrEnum

from .untrusted import printable

CONTRACT_VERSION = 1
METADATA_PREFIX = "upscale."
VALUE_RANGE = "0-1"
CHANNEL_ORDER = "RGB"
# Overlap used for third-party models that do not state their receptive field: generous enough for
# typical ESRGAN-like networks to join without visible seams, small enough to keep tiles cheap.
FALLBACK_TILE_OVERLAP = 16
# Bounds on what a model's metadata may claim: models come from strangers, and these numbers size allocations.
MAX_SCALE = 16
MAX_SIZE_NEED = 1024


class TilingKind(StrEnum):
    """Whether tiles reproduce the whole image: the first word of `ModelInfo.tiling`."""

    EXACT = "exact"
    APPROXIMATE = "approximate"


@dataclass(frozen=True)
class ModelInfo:
    """What a runner needs to know about a model, and where the model came from."""

    scale: int
    """Output pixels per input pixel along each axis."""
    architecture: str = "unknown"
    """Registry name of the network (e.g. ``srcnn``), or ``unknown`` for third-party models."""
    tile_overlap: int = FALLBACK_TILE_OVERLAP
    """Receptive-field radius in input pixels: tiles overlapping by this much give whole-image output."""
    multiple_of: int = 1
    """Input height and width must be multiples of this (the runner pads, then crops)."""
    min_size: int = 1
    """Smallest input height/width the model accepts (the runner pads smaller inputs)."""
    value_range: str = VALUE_RANGE
    channel_order: str = CHANNEL_ORDER
    training_data: str = ""
    """Which images trained the weights (empty for non-learned models)."""
    validation: str = ""
    """Measured quality, e.g. ``Set5 x2 Y-PSNR 37.12 dB``."""
    description: str = ""
    tiling: str = "exact"
    """``exact`` when tiles overlapping by ``tile_overlap`` give the whole-image result, else ``approximate: why``
    with the difference tiling made on a test image (global or windowed attention, receptive fields too large)."""
    source: str = ""
    """For converted third-party weights: the source file's name and sha256."""
    fixed_window: int = 0
    """0: the graph takes any input size (dynamic H and W). Else the one square size it takes: the runner tiles
    with windows of at most this side and pads each to it (for graphs whose shape arithmetic or windowed
    attention no exporter could make dynamic)."""
    shapes: str = "any size"
    """Which input sizes the graph takes and, for a fixed window, why (shown by `upscale info`)."""
    max_batch: int = 0
    """0: any batch size. 1: the graph takes one image a run (a traced batch size); the runner feeds them so."""
    has_metadata: bool = True
    """False when the model carried no metadata and the runner had to guess (probe, default overlap)."""

    @property
    def tiling_kind(self) -> TilingKind:
        """`TilingKind.EXACT` when ``tiling`` says tiles reproduce the whole image (within a level), else
        approximate (anything else a model file says counts as approximate: whole images are the safe side)."""
        return TilingKind.EXACT if self.tiling.split(maxsplit=1)[:1] == ["exact"] else TilingKind.APPROXIMATE

    def __post_init__(self) -> None:
        if not 1 <= self.scale <= MAX_SCALE:
            raise ValueError(f"scale must be 1 to {MAX_SCALE}, got {self.scale}")
        if not (0 <= self.tile_overlap <= MAX_SIZE_NEED and 1 <= self.multiple_of <= MAX_SIZE_NEED
                and 1 <= self.min_size <= MAX_SIZE_NEED and 0 <= self.fixed_window <= 4 * MAX_SIZE_NEED
                and self.max_batch >= 0):
            raise ValueError(f"tile_overlap must be 0 to {MAX_SIZE_NEED}, multiple_of and min_size 1 to "
                             f"{MAX_SIZE_NEED}, fixed_window 0 to {4 * MAX_SIZE_NEED}; got {self.tile_overlap}, "
                             f"{self.multiple_of}, {self.min_size}, {self.fixed_window}")

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries that describe this model."""
        props = {k: v for k, v in asdict(self).items() if k != "has_metadata"}
        out = {METADATA_PREFIX + k: str(v) for k, v in props.items()}
        out[METADATA_PREFIX + "contract_version"] = str(CONTRACT_VERSION)
        return out

    @classmethod
    def from_metadata(cls, props: dict[str, str]) -> ModelInfo | None:
        """Read the entries written by `to_metadata`; None when the model has none of them. Text is made
        `printable` (it comes from the model file and ends up on a terminal); ValueError for numbers out of bounds."""
        ours = {k[len(METADATA_PREFIX) :]: v for k, v in props.items() if k.startswith(METADATA_PREFIX)}
        if "scale" not in ours:
            return None
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            if f.name in ours and f.name != "has_metadata":
                raw = ours[f.name]
                kwargs[f.name] = int(raw) if f.type in ("int", int) else printable(raw)
        return cls(**kwargs)  # type: ignore[arg-type]
