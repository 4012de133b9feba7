"""Random weights in the layouts the world's upscalers are released in (no downloads): state-dict keys, shapes and
wrapping (``params_ema`` / ``params``) as in the released files, at small sizes so tests stay fast."""

from __future__ import annotations

import torch


def esrgan_x4plus(nf: int = 16, blocks: int = 1, gc: int = 32, seed: int = 0) -> dict:
    """Real-ESRGAN's RealESRGAN_x4plus.pth layout (BasicSR RRDBNet, keys under ``params_ema``); released: nf=64,
    23 blocks, growth 32 (spandrel assumes growth 32, as every released ESRGAN has)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(name: str, cout: int, cin: int, std: float = 0.05) -> None:
        sd[f"{name}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * std
        sd[f"{name}.bias"] = torch.randn(cout, generator=g) * 0.01

    conv("conv_first", nf, 3, 0.1)
    for b in range(blocks):
        for r in (1, 2, 3):
            for c in range(1, 6):
                conv(f"body.{b}.rdb{r}.conv{c}", gc if c < 5 else nf, nf + (c - 1) * gc)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        conv(name, nf, nf)
    conv("conv_last", 3, nf)
    return {"params_ema": sd}


def compact_general_x4v3(nf: int = 16, convs: int = 4, scale: int = 4, in_ch: int = 3, seed: int = 0) -> dict:
    """realesr-general-x4v3.pth's layout (SRVGGNetCompact under ``params``): body = conv, PReLU, (conv, PReLU) x
    convs, conv to 3*scale^2, pixel shuffle; released: nf=64, 32 convs."""
    g = torch.Generator().manual_seed(seed)
    sd = {"body.0.weight": torch.randn(nf, in_ch, 3, 3, generator=g) * 0.1, "body.0.bias": torch.zeros(nf),
          "body.1.weight": torch.full((nf,), 0.25)}
    for i in range(convs):
        sd[f"body.{2 + 2 * i}.weight"] = torch.randn(nf, nf, 3, 3, generator=g) * 0.05
        sd[f"body.{2 + 2 * i}.bias"] = torch.zeros(nf)
        sd[f"body.{3 + 2 * i}.weight"] = torch.full((nf,), 0.25)
    last = 2 + 2 * convs
    sd[f"body.{last}.weight"] = torch.randn(3 * scale * scale, nf, 3, 3, generator=g) * 0.05
    sd[f"body.{last}.bias"] = torch.zeros(3 * scale * scale)
    return {"params": sd}


def vendored(architecture: str, seed: int = 0) -> dict:
    """Architectures spandrel carries in their authors' own code, so their state dicts are the released layout."""
    torch.manual_seed(seed)
    if architecture == "SPAN":
        from spandrel.architectures.SPAN import SPAN

        return SPAN(num_in_ch=3, num_out_ch=3, feature_channels=16, upscale=2).state_dict()
    if architecture == "SwinIR":
        from spandrel.architectures.SwinIR import SwinIR

        return SwinIR(upscale=2, img_size=32, window_size=8, embed_dim=24, depths=[2, 2], num_heads=[2, 2],
                      mlp_ratio=2, upsampler="pixelshuffledirect").state_dict()
    if architecture == "OmniSR":
        from spandrel.architectures.OmniSR import OmniSR

        return OmniSR(num_in_ch=3, num_out_ch=3, num_feat=16, window_size=8, res_num=1, up_scale=2,
                      block_num=1).state_dict()
    if architecture == "PLKSR":
        from spandrel.architectures.PLKSR import PLKSR

        return PLKSR(dim=16, n_blocks=2, upscaling_factor=2).state_dict()
    if architecture == "DnCNN":
        from spandrel.architectures.DnCNN import DnCNN

        return DnCNN(in_nc=3, out_nc=3, nc=16, nb=4).state_dict()
    raise ValueError(architecture)
