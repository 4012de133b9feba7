"""Well-known community models, fetched by name: ``upscale models get realesrgan-x4plus``, then
``--model realesrgan-x4plus``.

Each entry is the official release file's address, its sha256 (as published alongside it by the projects that
pin it), its licence and what it is good for. A download goes to a temporary file in the user's cache
(`convert.cache_dir`), is checked against the sha256 and only then renamed: a file that differs is refused and
nothing is kept. The weights are PyTorch files: the first use converts them to ONNX once (`convert`), checked
against PyTorch, and caches that too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .convert import cache_dir
from .files import download_checked, sha256_of

_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"


@dataclass(frozen=True)
class CommunityModel:
    name: str
    file: str
    url: str
    sha256: str
    scale: int
    licence: str
    use_for: str


COMMUNITY = (
    CommunityModel("realesrgan-x4plus", "RealESRGAN_x4plus.pth", f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
                   "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1", 4, "BSD-3-Clause",
                   "real photos at 4x: sharp (a GAN), removes JPEG artefacts and noise; slow"),
    CommunityModel("realesrgan-x2plus", "RealESRGAN_x2plus.pth", f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
                   "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb", 2, "BSD-3-Clause",
                   "real photos at 2x, the same network as x4plus"),
    CommunityModel("realesrgan-x4plus-anime", "RealESRGAN_x4plus_anime_6B.pth",
                   f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
                   "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da", 4, "BSD-3-Clause",
                   "anime and illustrations at 4x (a smaller network)"),
    CommunityModel("realesr-general-x4v3", "realesr-general-x4v3.pth",
                   f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
                   "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292", 4, "BSD-3-Clause",
                   "real photos at 4x, fast (a compact network)"),
    CommunityModel("realesr-general-wdn-x4v3", "realesr-general-wdn-x4v3.pth",
                   f"{_RELEASES}/v0.2.5.0/realesr-general-wdn-x4v3.pth",
                   "1641f8c4464b9f097c9fdda5589273713f67cf59f3d909e0bd688f0cee269dca", 4, "BSD-3-Clause",
                   "like realesr-general-x4v3, removing more noise"),
)
BY_NAME = {m.name: m for m in COMMUNITY}


def cached(model: CommunityModel) -> Path:
    """Where a fetched model lives."""
    return cache_dir() / "community" / model.file


def is_fetched(model: CommunityModel) -> bool:
    path = cached(model)
    return path.is_file() and sha256_of(path) == model.sha256


def fetch(model: CommunityModel, mirror: str | None = None) -> Path:
    """Download ``model`` (from ``mirror``/FILE instead of its release, where given) into the cache and check it;
    ValueError where the bytes differ (nothing kept), OSError where they cannot be had."""
    url = f"{mirror.rstrip('/')}/{model.file}" if mirror else model.url
    if not download_checked(url, cached(model), model.sha256):
        raise ValueError(f"{url}: sha256 differs from the release's {model.sha256[:16]}...; not kept")
    return cached(model)
