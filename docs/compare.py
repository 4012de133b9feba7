"""Side-by-side crops: bicubic vs one or more models vs the ground truth, for the model card.

    python docs/compare.py --model default --out docs/comparison.png [--image HR.png] [--crop X,Y,SIZE]
    python docs/compare.py --model default --model photo-x2 --degrade jpeg:50 --out docs/comparison-photo.png
    python docs/compare.py --strength 0 --strength 0.5 --strength 1 --degrade jpeg:50 --out docs/strength.png

The ground truth is a high-resolution photograph (by default scikit-image's public-domain "astronaut"
sample, so no dataset image is copied into the repository). It is downscaled with the same MATLAB-style
bicubic as `upscale eval`, upscaled by bicubic interpolation and by the model (through the engine), and
the same crop of each is shown enlarged, with its Y-PSNR over the whole image. ``--degrade`` degrades the
low-resolution input first, by `upscale eval --degrade`'s definitions (e.g. a JPEG at quality 50).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from upscale import load_model
from upscale.bicubic import imresize
from upscale.degrade import apply_spec, image_seed, parse_spec
from upscale.evaluate import model_upscaler
from upscale.metrics import y_psnr_ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="model name or path (repeatable; default: default)")
    parser.add_argument("--strength", action="append", type=float,
                        help="a panel of the clean and photo x2 models blended at this strength (repeatable)")
    parser.add_argument("--degrade", default="clean", help="degradation of the LR input, e.g. jpeg:50")
    parser.add_argument("--image", type=Path, help="HR image (default: scikit-image's astronaut)")
    parser.add_argument("--crop", default="180,60,96", help="X,Y,SIZE of the crop in HR pixels")
    parser.add_argument("--zoom", type=int, default=3, help="nearest-neighbour enlargement of the crops")
    parser.add_argument("--out", type=Path, default=Path("docs/comparison.png"))
    args = parser.parse_args()

    if args.image:
        hr = np.asarray(Image.open(args.image).convert("RGB"))
    else:
        from skimage import data

        hr = data.astronaut()
    if args.strength:
        from upscale.strength import load_blended

        models = [load_blended(None, strength, 2, "cpu") for strength in args.strength]
    else:
        models = [load_model(name, "cpu") for name in args.model or ["default"]]
    s = models[0].scale
    hr = hr[: hr.shape[0] - hr.shape[0] % s, : hr.shape[1] - hr.shape[1] % s]
    lr = apply_spec(imresize(hr, 1 / s), parse_spec(args.degrade), image_seed("compare"))
    degraded = "" if args.degrade == "clean" else f" ({args.degrade} input)"
    panels = {f"bicubic{degraded}": imresize(lr, s)}
    for model in models:
        name = f"strength {model.blend.rsplit(' ', 1)[-1]}" if model.blend else model.path.stem
        panels[name] = model_upscaler(model, s)(lr)
    panels["ground truth"] = hr
    x, y, size = (int(v) for v in args.crop.split(","))
    tiles = []
    for label, image in panels.items():
        crop = Image.fromarray(image[y : y + size, x : x + size]).resize((size * args.zoom,) * 2, Image.NEAREST)
        canvas = Image.new("RGB", (crop.width, crop.height + 22), "white")
        canvas.paste(crop, (0, 22))
        if label != "ground truth":
            psnr, _ = y_psnr_ssim(image, hr, s)
            label = f"{label}: {psnr:.2f} dB"
        ImageDraw.Draw(canvas).text((4, 4), label, fill="black")
        tiles.append(canvas)
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), tiles[0].height), "white")
    offset = 0
    for t in tiles:
        sheet.paste(t, (offset, 0))
        offset += t.width + 8
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
