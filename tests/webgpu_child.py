"""Run in a child process by test_gpu_providers.py, with SwiftShader (a complete software Vulkan) as the WebGPU
adapter: the plugin reads its environment once, when it is registered, so each check gets a fresh process.

    python tests/webgpu_child.py agreement MODEL...   every bundled model, whole and tiled, WebGPU against CPU
    python tests/webgpu_child.py load MODEL DEVICE    which device and note load_model ends with (JSON)
    python tests/webgpu_child.py cli ARGS...          `upscale ARGS` (sys.exit with its code)
Set UPSCALE_TEST_BREAK_TRIAL=1 to make every trial disagree (a GPU that computes wrong).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

import upscale.device
from upscale.images import Picture
from upscale.model import load_model
from upscale.picture import UpscaleOptions, upscale_picture

if os.environ.get("UPSCALE_TEST_BREAK_TRIAL") == "1":
    upscale.device.AGREEMENT = -1.0  # no output can be that close: the trial fails


def agreement(models: list[str]) -> dict[str, dict[str, float]]:
    """For each model, the largest difference (in 8-bit steps) between WebGPU's and the CPU's output."""
    rng = np.random.default_rng(1)
    picture = Picture((rng.random((20, 28, 3)) * 255).astype(np.uint8))
    out = {}
    for name in models:
        gpu, cpu = load_model(name, "webgpu"), load_model(name, "cpu")
        out[name] = {"device": str(gpu.device), "note": gpu.note}
        for label, tile in (("whole", 0), ("tiled", 12)):
            results = [upscale_picture(m, picture, UpscaleOptions(tile=tile)).pixels.astype(int) for m in (gpu, cpu)]
            out[name][label] = float(np.abs(results[0] - results[1]).max())
    return out


def main() -> None:
    command, args = sys.argv[1], sys.argv[2:]
    if command == "agreement":
        print(json.dumps(agreement(args)))
    elif command == "load":
        loaded = load_model(args[0], args[1])
        print(json.dumps({"device": str(loaded.device), "note": loaded.note, "file": loaded.path.name}))
    elif command == "cli":
        from upscale.cli.app import app

        sys.argv = ["upscale", *args]
        app()


if __name__ == "__main__":
    main()
