"""The README's picture of `upscale compare`'s page: a small batch of scikit-image's photographs, run and shown.

    python docs/page_screenshot.py --out docs/compare-page.png

Three crops of public-domain sample photographs (one saved as a JPEG at quality 40, so `auto` sends it to the photo
model) and one broken file go through `upscale dir --report`, then `upscale compare`; headless chromium (Debian's,
driven by Playwright, no download) photographs the page with the first card's slider moved to 35%.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright
from skimage import data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/compare-page.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        inputs, outputs = Path(tmp) / "photos", Path(tmp) / "upscaled"
        inputs.mkdir()
        Image.fromarray(data.astronaut()[40:200, 120:320]).save(inputs / "astronaut.png")
        Image.fromarray(data.coffee()[80:240, 150:350]).save(inputs / "coffee.jpg", quality=40)
        Image.fromarray(data.chelsea()[60:220, 100:300]).save(inputs / "chelsea.png")
        (inputs / "scan-0041.tif").write_bytes(b"II*\x00broken")
        upscale = [sys.executable, "-m", "upscale"]
        subprocess.run([*upscale, "dir", str(inputs), str(outputs), "--report", str(Path(tmp) / "report.json"),
                        "-q"], check=False)  # one file fails, on purpose
        subprocess.run([*upscale, "compare", str(inputs), str(outputs), "--report", str(Path(tmp) / "report.json")],
                       check=True)
        with sync_playwright() as play:
            browser = play.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            # bypass_csp: wait_for_function compiles its predicate with eval, which the page's policy forbids
            page = browser.new_page(viewport={"width": 1020, "height": 620}, bypass_csp=True)
            page.goto((outputs / "compare.html").as_uri())
            page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
            page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
            page.locator(".card input[type=range]").first.fill("35")
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
