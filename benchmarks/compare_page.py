"""Is `upscale compare`'s page fast with thousands of files? Load, filter and sort times in headless chromium.

    python benchmarks/compare_page.py [--cards 3000] [--chromium /usr/bin/chromium]

Builds a page of ``--cards`` cards from the page's own template (each card's crops are two real 256-pixel WebP
crops of a 2x upscale, shared by every card: the page's cost is its cards, not the files), loads it in headless
chromium (Playwright, no download) and reads the page's clock: until the cards are built and laid out, a status
filter, a sort by time; and the images the browser decoded at load (lazy loading: those near the window only).
Also times `upscale.compare_page.card_for` (decode both pictures, find the region, write the crops) per file on
photographs of 0.5-2 MP, the cost of making the page for a batch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

from upscale.compare_page import Card, card_for, write_page


def real_card(folder: Path, size: tuple[int, int]) -> tuple[Card, float]:
    """A card for a photograph of ``size`` and its bicubic 2x (stand-in output), and the seconds it took."""
    from skimage import data

    source = folder / f"in-{size[0]}.png"
    output = folder / f"out-{size[0]}.png"
    photo = Image.fromarray(data.astronaut()).resize(size, Image.Resampling.LANCZOS)
    photo.save(source)
    photo.resize((size[0] * 2, size[1] * 2), Image.Resampling.LANCZOS).save(output)
    start = time.perf_counter()
    card = card_for({"input": str(source), "output": str(output), "status": "ok"}, folder, folder, size[0])
    return card, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cards", type=int, default=3000)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    result: dict = {"cards": args.cards}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        timings = [real_card(folder, size) for size in ((800, 600), (1200, 800), (1600, 1200))]
        result["card_for_seconds"] = {f"{c.input_size[0]}x{c.input_size[1]}": round(s, 3) for c, s in timings}
        template = timings[0][0]
        rng = np.random.default_rng(0)
        cards = [Card(**{**template.__dict__, "name": f"{i:05d}.png", "seconds": float(rng.uniform(0.1, 3)),
                         "status": "failed" if i % 50 == 0 else "ok"}) for i in range(args.cards)]
        page = folder / "page.html"
        write_page(cards, page, "benchmark")
        result["page_bytes"] = page.stat().st_size
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            # bypass_csp: wait_for_function compiles its predicate with eval, which the page's policy forbids
            tab = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            start = time.perf_counter()
            tab.goto(page.as_uri())
            tab.wait_for_function(f"document.querySelectorAll('.card').length === {args.cards}")
            tab.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            result["load_to_laid_out_s"] = round(time.perf_counter() - start, 2)
            result["images_loaded_at_start"] = tab.evaluate(
                "[...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
            for label, action in (("filter_failed_s", lambda: tab.select_option("#status", "failed")),
                                  ("filter_all_s", lambda: tab.select_option("#status", "")),
                                  ("sort_by_time_s", lambda: tab.select_option("#sort", "time"))):
                start = time.perf_counter()
                action()
                tab.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                result[label] = round(time.perf_counter() - start, 3)
            browser.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
