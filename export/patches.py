"""Export-friendly forms of third-party layers whose Python shape arithmetic does not trace.

An exporter that traces (TorchScript) records what Python computed from a shape as a constant: a layer that
pads its features to a window only when ``h % window != 0`` is baked into the graph with the branch and the
amounts of the example's size, and the graph fails or is wrong at every other size. Where the padding is the
layer's own (DCTLSA pads each transformer layer's features, not the image), no input padding by the engine can
stand in for it. Here such a layer gets a forward computing the same thing from shape *tensors*, which the
tracer records as graph operations, so the ONNX graph pads as PyTorch does at every size.

Each form computes exactly what the original computes (the conversion's parity check compares the exported
graph with the untouched spandrel module); they replace bound methods of a copy that only the exporter sees, and
module-level helpers only while that copy runs.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
import types
from collections.abc import Callable, Iterator

import torch
from torch import nn

Patch = Callable[[nn.Module, types.ModuleType], contextlib.AbstractContextManager[None]]
"""Rebinds layers of the copy given (in the architecture's Python module given) and returns what to hold open
while exporting."""


def _reflect_indices(size: torch.Tensor, multiple: int) -> torch.Tensor:
    """Indices that reflect-pad an axis of ``size`` up to a multiple (``F.pad(..., "reflect")`` on one side),
    computed from a shape tensor so that a tracer records them as graph operations."""
    padded = size + (multiple - size % multiple) % multiple
    index = torch.arange(padded)
    return torch.where(index < size, index, 2 * (size - 1) - index)


def _dctlsa_layer_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """DCTLSA's ``BasicLayer.forward``: reflect-pad the features to the window, run the blocks, crop back."""
    h, w = x.shape[2], x.shape[3]
    shape = torch._shape_as_tensor(x)
    x = x.index_select(2, _reflect_indices(shape[2], self.window_size))
    x = x.index_select(3, _reflect_indices(shape[3], self.window_size))
    size = (x.shape[2], x.shape[3])
    x = self.patch_embed(x)
    for block in self.blocks:
        x = block(x, size)
    return self.patch_unembed(x, size)[:, :, :h, :w]


def _windows2img(windows: torch.Tensor, window_h: int, window_w: int, h: int, w: int) -> torch.Tensor:
    """Window attention's windows merged back into a (B, h, w, C) image with the batch left to ``view``: the
    originals (RGT's and CRAFT's ``windows2img``, Swin's ``window_reverse``) compute it in Python floats, which a
    tracer bakes in (a graph for one image only)."""
    x = windows.view(-1, h // window_h, w // window_w, window_h, window_w, windows.shape[-1])
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, h, w, windows.shape[-1])


def _window_reverse(windows: torch.Tensor, window_size: int, h: int, w: int) -> torch.Tensor:
    """Swin's ``window_reverse``: square windows."""
    return _windows2img(windows, window_size, window_size, h, w)


def _dctlsa_layers(module: nn.Module, namespace: types.ModuleType) -> contextlib.AbstractContextManager[None]:
    for layer in module.modules():
        if isinstance(layer, namespace.BasicLayer):
            layer.forward = types.MethodType(_dctlsa_layer_forward, layer)
    return contextlib.nullcontext()


def _swap(name: str, value: object, module: nn.Module,
          namespace: types.ModuleType) -> contextlib.AbstractContextManager[None]:
    return _swapped(namespace, name, value)


def _swapping(name: str, value: object) -> Patch:
    """A patch that replaces the architecture module's helper ``name`` with ``value`` while held (a partial:
    ``args`` say what it swaps)."""
    return functools.partial(_swap, name, value)


def _namespace(module: nn.Module) -> types.ModuleType:
    """The Python module defining the architecture's network (found on the instance: spandrel's private package
    paths are not ours to import by name)."""
    network = getattr(module, "model", module)  # the conversion's wrapper holds spandrel's network as `model`
    return sys.modules[type(network).__module__]


@contextlib.contextmanager
def _swapped(namespace: types.ModuleType, name: str, value: object) -> Iterator[None]:
    original = getattr(namespace, name)
    setattr(namespace, name, value)
    try:
        yield
    finally:
        setattr(namespace, name, original)


_SWIN = (_swapping("window_reverse", _window_reverse),)
PATCHES: dict[str, tuple[Patch, ...]] = {
    "DCTLSA": (_dctlsa_layers, *_SWIN),
    # Swin-style window attention: `window_reverse` computes the batch in Python
    "SwinIR": _SWIN, "Swin2SR": _SWIN, "HAT": _SWIN, "DRCT": _SWIN, "ATD": _SWIN,
    # rectangular windows, the same batch arithmetic
    "RGT": (_swapping("windows2img", _windows2img),), "CRAFT": (_swapping("windows2img", _windows2img),),
}
"""spandrel architecture name -> the patches its network needs to trace at every size and batch."""


class _Friendly(nn.Module):
    """The patched copy, with the architecture's helpers swapped only while it runs (while it is traced): the
    untouched module, run beside it for the parity checks, keeps the originals."""

    def __init__(self, network: nn.Module, needed: tuple[Patch, ...]) -> None:
        super().__init__()
        self.network = network
        self.needed = needed
        self.namespace = _namespace(network)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with contextlib.ExitStack() as held:
            for patch in self.needed:
                held.enter_context(patch(self.network, self.namespace))
            return self.network(x)


def export_friendly(module: nn.Module, architecture: str) -> nn.Module:
    """A copy of ``module`` whose layers trace at every size and batch (the module itself when none need it)."""
    needed = PATCHES.get(architecture, ())
    return _Friendly(copy.deepcopy(module), needed).eval() if needed else module
