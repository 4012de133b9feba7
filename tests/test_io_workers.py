"""The decode/encode pools around inference: sized by device and cores, same results whatever their size;
CUDA libraries preloaded from pip packages before the first CUDA session."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
from PIL import Image

from upscale import load_model
from upscale.device import preload_cuda_libraries
from upscale.job import OutputOptions
from upscale.picture import UpscaleOptions
from upscale.pipeline import IOWorkers, run_pipelined
from upscale.planning import plan_directory

from .conftest import photo


def test_pools_are_sized_by_device_and_cores() -> None:
    assert IOWorkers.for_device("cpu", 16) == IOWorkers(1, 2)  # inference owns the cores
    assert IOWorkers.for_device("cuda", 16) == IOWorkers(4, 11)  # the GPU computes: the cores do I/O
    assert IOWorkers.for_device("cuda", 2) == IOWorkers(1, 2)


def test_results_are_the_same_and_in_order_whatever_the_pools(tmp_path: Path, tiny_model: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        Image.fromarray(photo(20 + i, 30, seed=i)).save(folder / f"{i}.png")
    model = load_model(tiny_model, "cpu")
    outputs = {}
    for workers in (IOWorkers(1, 1), IOWorkers(3, 5)):
        out = tmp_path / f"out-{workers.decoders}x{workers.encoders}"
        jobs, _ = plan_directory(folder, out, OutputOptions())
        results: list = []
        run_pipelined(model, jobs, UpscaleOptions(), OutputOptions(), lambda job, r, into=results: into.append(r),
                      workers=workers)
        assert [Path(r.input).name for r in results] == [f"{i}.png" for i in range(7)]
        outputs[workers] = {p.name: p.read_bytes() for p in out.iterdir()}
    first, second = outputs.values()
    assert first == second and len(first) == 7


def test_cuda_libraries_are_preloaded_once(monkeypatch) -> None:
    calls = []
    preload_cuda_libraries.cache_clear()
    monkeypatch.setattr(ort, "preload_dlls", lambda: calls.append(1), raising=False)
    assert preload_cuda_libraries() is None and preload_cuda_libraries() is None and calls == [1]

    def missing() -> None:
        raise OSError("libcudnn.so.9: cannot open shared object file")

    preload_cuda_libraries.cache_clear()
    monkeypatch.setattr(ort, "preload_dlls", missing, raising=False)
    assert "libcudnn" in preload_cuda_libraries()
    preload_cuda_libraries.cache_clear()


def test_at_most_decoders_plus_one_pictures_are_decoded_ahead(tmp_path: Path, tiny_model: Path,
                                                                monkeypatch) -> None:
    """On a long folder of pictures above the small-picture size, and with memory to spare, decoding runs at most
    ``decoders + 1`` pictures ahead of the upscale (the pipeline's docstring), not as far as memory allows."""
    from upscale import pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(14):
        Image.fromarray(photo(260, 260, seed=i)).save(folder / f"{i:02d}.png", compress_level=0)
    started, upscaling, worst = [0], [0], [0]
    real_decode, real_upscale = pipeline._decode, pipeline.upscale_jobs

    def counting_decode(*args):
        started[0] += 1
        worst[0] = max(worst[0], started[0] - upscaling[0])
        return real_decode(*args)

    def counting_upscale(model, pictures, *rest):
        upscaling[0] += len(pictures)
        return real_upscale(model, pictures, *rest)

    monkeypatch.setattr(pipeline, "_decode", counting_decode)
    monkeypatch.setattr(pipeline, "upscale_jobs", counting_upscale)
    jobs, _ = plan_directory(folder, tmp_path / "out", OutputOptions(format="png"))
    workers = IOWorkers(2, 2)
    run_pipelined(load_model(tiny_model, "cpu"), jobs, UpscaleOptions(), OutputOptions(format="png"),
                  lambda job, result: None, workers=workers)
    # decoded ahead: at most decoders + 1 waiting, beside the one just taken for upscaling (its count comes when
    # its upscale starts, which may be after the next decode has begun)
    assert started[0] == 14 and 1 < worst[0] <= workers.decoders + 2
