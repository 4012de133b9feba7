"""Bring onnxruntime-gpu to a lent GPU machine that has no network, in parts.

    python scripts/cuda_wheel_parts.py [--part-mb 38]

The device tool carries at most 64 MiB a call (this repository's tracked files take about 22 of them), and the
onnxruntime-gpu wheel is about 256 MB, nearly all of it the CUDA provider's fat binary, which neither a slimmer
wheel (the TensorRT provider is 1 MB) nor xz makes much smaller. Ignored files stay on the device while it is
warm (about 30 s idle), so successive calls can each carry one part and a last call joins and installs them.

This downloads the wheel for the device's Python (3.12) and the version installed here (built for CUDA 13, as the
device's torch is; its cuDNN 9 and cuBLAS come from the device's nvidia-* packages via onnxruntime.preload_dlls),
splits it into .ortgpu/part-NN (ignored by git), and prints the device calls to make back to back: one `run`
per part carrying only that part, then the check. Each call's own time is seconds; what costs is the machine's
start (once) and the transfers.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / ".ortgpu"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
CHECK = ("cat .ortgpu/part-* > /tmp/ort.whl && sha256sum /tmp/ort.whl && "
         "cp /tmp/ort.whl /tmp/{wheel} && python3 -m pip install -q --no-index --no-deps --no-build-isolation "
         "--target /tmp/site /tmp/{wheel} . && export PYTHONPATH=/tmp/site && cd /tmp && PYTHONUNBUFFERED=1 "
         "python3 $OLDPWD/benchmarks/device_check.py --device cuda --json-out $OUT/device_check.json --count 40")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part-mb", type=int, default=38)
    parser.add_argument("--version", default=importlib.metadata.version("onnxruntime-gpu"))
    args = parser.parse_args()
    FOLDER.mkdir(exist_ok=True)
    (FOLDER / ".gitignore").write_text("*\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(FOLDER), f"onnxruntime-gpu=={args.version}"]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    subprocess.run(command, check=True)
    wheel = next(FOLDER.glob(f"onnxruntime_gpu-{args.version}-cp312-*.whl"))
    data = wheel.read_bytes()
    for old in FOLDER.glob("part-*"):
        old.unlink()
    size = args.part_mb * 2**20
    parts = []
    for i, offset in enumerate(range(0, len(data), size)):
        part = FOLDER / f"part-{i:02d}"
        part.write_bytes(data[offset : offset + size])
        parts.append(part.relative_to(ROOT).as_posix())
    print(f"{wheel.name}: {len(data) / 2**20:.1f} MiB, sha256 {hashlib.sha256(data).hexdigest()}, "
          f"{len(parts)} parts of at most {args.part_mb} MiB in {FOLDER.relative_to(ROOT)}/")
    print("device calls, back to back (each within the 30 s the machine stays warm):")
    for part in parts:
        print(f'  run(command="ls -la .ortgpu", carry=["{part}"], timeout_s=60)')
    print(f'  run(command="{CHECK.format(wheel=wheel.name)}", timeout_s=540)')


if __name__ == "__main__":
    main()
