"""Load an ONNX super-resolution model once and run NCHW batches through it.

The loaded model is a plain callable ``ndarray (N,3,H,W) float32 in [0,1] -> ndarray (N,3,sH,sW)``;
tiling, image formats and batching live elsewhere. Size requirements of the model (``multiple_of``,
``min_size``, or one ``fixed_window``) are met here by reflected padding and cropping, so generic code never
special-cases a model.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .contract import ModelInfo
from .device import (
    Device,
    DeviceError,
    candidates,
    check_agreement,
    device_share,
    float32_sibling,
    lacks_float16,
    open_session,
)
from .errors import ModelError, ModelRunError
from .registry import bundled_models, resolve_model_path, siblings
from .untrusted import check_onnx_external_data

_PROBE_SIZE = (17, 23)  # odd and unequal, so a wrong guess of the scale cannot pass by accident
SMALL_BATCH_PIXELS = 1 << 15
"""Batches of at most this many input pixels (16 thumbnails of 32x32 and up to 45x45) run on one thread: split
over the lanes or the session's threads they cost more in hand-offs than they gain (benchmarks/many_files.py)."""
_LANES = 2
"""CPU sessions that share a batch of tiles: each runs its part on half the threads (see `UpscaleModel`)."""


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
    if threads:
        options.intra_op_num_threads = threads
    # Idle onnxruntime threads spin by default, stealing the cores that decode and encode run on
    # between inferences (see upscale/pipeline.py).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The memory pattern pre-plans one block per input shape for every intermediate tensor; for these networks
    # it held 985 MB where 617 MB did at the same speed (6 MP out, default model, benchmarks/memory.py).
    options.enable_mem_pattern = False
    return options


class UpscaleModel:
    """An onnxruntime session plus the model's contract (`info`)."""

    def __init__(self, path: Path, session: ort.InferenceSession, info: ModelInfo, device: Device,
                 lanes: list[ort.InferenceSession] | None = None) -> None:
        self.path = path
        self.session = session
        self.info = info
        self.device = device
        # Batches of several tiles are split over `lanes`, sessions with a share of the threads each, run
        # side by side. One session using every core waits at each operator for its slowest thread, and
        # the image encoders take cores away at random: on 2 cores, two 1-thread sessions did 16 640x480
        # images in 13.8-14.0 s against 15.5-15.9 s (PNG level 6, benchmarks/throughput.py's images).
        # A single tile (a small image) still gets every thread, from `session`.
        self.lanes = lanes or []
        self.blend = ""  # for --strength: which two models, at which strength
        self.note = ""  # where the device needs a word: a float32 file for a float16 one, a share on the CPU
        self.siblings: dict[int, Path] = {}  # the family's models at other scales (`registry.siblings`)
        self.threads: int | None = None
        self._loaded_siblings: dict[int, UpscaleModel] = {}
        self._lane_pool = ThreadPoolExecutor(len(self.lanes), "upscale-lane") if len(self.lanes) > 1 else None
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32

    @property
    def scale(self) -> int:
        return self.info.scale

    @property
    def scales(self) -> list[int]:
        """The scales a chain of passes may use: this model's, and its family's (`picture.chain_for`)."""
        return sorted({self.scale, *self.siblings})

    def at_scale(self, scale: int) -> UpscaleModel:
        """This model, or its family's model of ``scale``, loaded on the same device the first time it is needed."""
        if scale == self.scale:
            return self
        if scale not in self._loaded_siblings:
            self._loaded_siblings[scale] = load_model(self.siblings[scale], str(self.device), self.threads)
        return self._loaded_siblings[scale]

    @property
    def parallelism(self) -> int:
        """How many tiles a batch should hold a multiple of, so that no lane idles (see `tiling.tile_batches`)."""
        return max(1, len(self.lanes))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Upscale ``batch`` (N,3,H,W) float32 in [0,1]; returns (N,3,sH,sW) float32, not clipped."""
        h, w = batch.shape[2:]
        fixed = self.info.fixed_window
        if fixed and (h > fixed or w > fixed):
            raise ValueError(f"a {h}x{w} window for a model that takes {fixed}x{fixed} (the tiler plans smaller)")
        ph = fixed or padded_side(h, self.info.multiple_of, self.info.min_size)
        pw = fixed or padded_side(w, self.info.multiple_of, self.info.min_size)
        if (ph, pw) != (h, w):
            # reflected, as the architectures that need a size multiple pad themselves (SwinIR, HAT, DCTLSA...):
            # then the padded border is what the model expects, and the output near it what PyTorch gives
            batch = np.pad(batch, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode="reflect")
        feed = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if self.lanes and feed.shape[0] * ph * pw <= SMALL_BATCH_PIXELS:
            out = self._run(self.lanes[0], feed)  # one thread: the other cores decode and encode the small files
        elif self._lane_pool is not None and len(feed) >= len(self.lanes):
            parts = np.array_split(feed, len(self.lanes))
            out = np.concatenate(list(self._lane_pool.map(self._run, self.lanes, parts)))
        else:
            out = self._run(self.session, feed)
        s = self.info.scale
        return np.asarray(out[:, :, : h * s, : w * s], dtype=np.float32)


    def _run(self, session: ort.InferenceSession, feed: np.ndarray) -> np.ndarray:
        """One session on a batch; a fixed-window graph (traced for one image) takes its images one by one."""
        if (self.info.fixed_window or self.info.max_batch == 1) and len(feed) > 1:
            return np.concatenate([_run_session(session, self.input_name, feed[i : i + 1]) for i in range(len(feed))])
        return _run_session(session, self.input_name, feed)


def _run_session(session: ort.InferenceSession, input_name: str, feed: np.ndarray) -> np.ndarray:
    """``session.run`` whose failures are one line: onnxruntime's errors (no common public base) become
    MemoryError where it could not allocate (the file's row then says so), else ModelRunError."""
    try:
        return session.run(None, {input_name: feed})[0]
    except MemoryError:
        raise
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        if any(sign in text for sign in ("Failed to allocate memory", "bad_alloc", "out of memory")):
            raise MemoryError(text) from exc
        raise ModelRunError(f"the model failed on this picture: {text}") from exc


def padded_side(size: int, multiple_of: int, min_size: int = 0) -> int:
    """A side as the graph takes it: up to its multiple, and at least its minimum."""
    return max(min_size, math.ceil(size / multiple_of) * multiple_of)


def _probe_scale(session: ort.InferenceSession) -> int:
    inp = session.get_inputs()[0]
    dtype = np.float16 if "float16" in inp.type else np.float32
    h, w = _PROBE_SIZE
    try:
        out = _run_session(session, inp.name, np.zeros((1, 3, h, w), dtype))
    except (ModelRunError, MemoryError) as exc:
        raise ModelError(f"a {w}x{h} probe, run to find the scale of a model without metadata, failed: "
                         f"{str(exc).removeprefix('the model failed on this picture: ')}") from None
    if out.ndim != 4 or out.shape[2] % h or out.shape[3] % w or out.shape[2] // h != out.shape[3] // w:
        raise ModelError(f"output shape {out.shape} for input (1,3,{h},{w}) is not a whole-number upscale")
    return out.shape[2] // h


def _check_signature(session: ort.InferenceSession, path: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(f"{path}: expected one input and one output, got {len(inputs)} and {len(outputs)}")
    shape = inputs[0].shape
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise ModelError(f"{path}: input shape {shape} is not N x 3 x H x W")
    if "float" not in inputs[0].type:
        raise ModelError(f"{path}: input type {inputs[0].type} is not float32/float16")


def load_model(model: str | os.PathLike[str] = "default", device: str = "auto",
               threads: int | None = None, data: bytes | None = None, blend: str = "") -> UpscaleModel:
    """Load a bundled model by name, or an ONNX file by path, on ``--device`` ``device`` (`device.candidates`).

    ``auto`` takes the first GPU whose trial passes, else the CPU, and says why a GPU was passed over in the
    model's `UpscaleModel.note`. ``data``: the model's bytes, made in memory (``--strength``'s blend, named by
    ``blend``) or shipped from the driver to a Ray worker, where ``model`` names a file only the driver has.
    """
    path = resolve_model_path(model) if data is None or str(model) in bundled_models() else Path(model)
    devices, falls_back = candidates(device)
    passed_over = ""
    for chosen in devices:
        try:
            loaded = _load_on(path, chosen, threads, data)
        except DeviceError as exc:
            if not (falls_back and chosen.is_gpu):
                raise
            passed_over = passed_over or str(exc)
            continue
        loaded.blend = blend
        loaded.note = "; ".join(n for n in (loaded.note, passed_over and f"not on a GPU: {passed_over}") if n)
        loaded.threads = threads
        loaded.siblings = {} if blend else siblings(loaded.path)  # a blend has no family at other scales
        return loaded
    raise DeviceError(f"no device could run {path.name}")  # unreachable: the CPU ends every list


def _load_on(path: Path, device: Device, threads: int | None, data: bytes | None) -> UpscaleModel:
    """The model on one device, tried there (`_trial`); a float16 file the device cannot run as its float32
    sibling, with a note."""
    try:
        data = path.read_bytes() if data is None else data
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model: {exc.strerror or exc}") from None
    # onnxruntime resolves (and checks) external weights beside a model loaded by its path, not from bytes
    source: bytes | str = str(path) if check_onnx_external_data(path, data) else data
    try:
        session = open_session(source, device, _session_options(threads))
    except DeviceError as exc:
        sibling = float32_sibling(path)
        if sibling is None or not lacks_float16(exc):
            raise
        loaded = _load_on(sibling, device, threads, None)
        loaded.note = f"{path.stem} needs float16 arithmetic, which {device} lacks: running {sibling.stem} (float32)"
        return loaded
    except Exception as exc:  # onnxruntime's InvalidProtobuf/Fail have no common public base
        raise ModelError(f"{path}: not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
    info = _contract_of(session, path)
    note = _trial(session, source, device, info, threads) if device.is_gpu else ""
    cores = threads or _cpu_count()
    lanes = []
    if not device.is_gpu and cores >= _LANES:
        lanes = [open_session(source, device, _session_options(cores // _LANES)) for _ in range(_LANES)]
    loaded = UpscaleModel(path, session, replace(info), device, lanes)
    loaded.note = note
    return loaded


def _contract_of(session: ort.InferenceSession, path: Path) -> ModelInfo:
    """The model's contract from its metadata, or its scale probed where it has none."""
    _check_signature(session, path)
    try:
        info = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map)
    except ValueError as exc:
        raise ModelError(f"{path}: bad upscale metadata: {exc}") from None
    if info is None:
        return ModelInfo(scale=_probe_scale(session), has_metadata=False)
    if info.channel_order != "RGB" or info.value_range != "0-1":
        raise ModelError(f"{path}: unsupported convention {info.channel_order} {info.value_range}")
    return info


def _trial(session: ort.InferenceSession, source: bytes | str, device: Device, info: ModelInfo,
           threads: int | None) -> str:
    """A GPU's trial (`device.check_agreement` against the CPU); the note where part of the model runs on the
    CPU."""
    cpu = open_session(source, Device("cpu"), _session_options(threads))
    size = info.fixed_window or padded_side(16, info.multiple_of, info.min_size)

    def runner(on: ort.InferenceSession):
        inp = on.get_inputs()[0]
        dtype = np.float16 if "float16" in inp.type else np.float32
        return lambda probe: _run_session(on, inp.name, probe.astype(dtype)).astype(np.float32)

    check_agreement(runner(session), runner(cpu), size, device)
    share = device_share(session, device)
    return "" if share >= 1.0 else f"{share:.0%} of the model's nodes on {device}, the rest on the CPU"


def _cpu_count() -> int:
    """The cores this process may run on (its affinity), as onnxruntime counts them for its default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
