"""`upscale compare`: the before/after page, loaded in a real browser (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from upscale.cli.app import app
from upscale.compare_page import changed_region, crops, display_pixels

runner = CliRunner()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def browser_or_skip():
    """Playwright's sync API with the system chromium; in CI a missing piece is a failure, not a skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    missing = [name for name, ok in (("playwright", sync_playwright), ("chromium", CHROMIUM)) if not ok]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {', '.join(missing)} missing (.ci/run installs them)")
        pytest.skip(f"{', '.join(missing)} not installed")
    return sync_playwright


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """Edges and texture: a model's output differs from bicubic there."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = 120 + 80 * np.sin(xx / 3.0 + seed) * np.cos(yy / 5.0) + rng.normal(0, 4, (height, width))
    return np.clip(np.dstack([base, base * 0.8 + 30, 255 - base]), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small run with `--model auto`: two clean PNGs, a JPEG at quality 40 (auto picks the photo model) and a
    broken file (failed); its report; and the page made from them."""
    root = tmp_path_factory.mktemp("compare")
    inputs = root / "in"
    inputs.mkdir()
    Image.fromarray(photo(72, 90, 1)).save(inputs / "a.png")
    Image.fromarray(photo(64, 64, 2)).save(inputs / "b.png")
    buffer = io.BytesIO()
    Image.fromarray(photo(80, 96, 3)).save(buffer, "JPEG", quality=40)
    (inputs / "c.jpg").write_bytes(buffer.getvalue())
    (inputs / "d.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = runner.invoke(app, ["dir", str(inputs), str(root / "out"), "--device", "cpu", "--report",
                                 str(root / "report.json"), "-q"])
    assert result.exit_code == 1, result.output  # one file failed
    result = runner.invoke(app, ["compare", str(inputs), str(root / "out"), "--report", str(root / "report.json")])
    assert result.exit_code == 0, result.output
    assert "4 files, 3 with crops" in result.output
    return root


def open_page(play, page_file: Path, offline: bool = False):
    """(browser, page, problems): console errors, page errors and any request that is not a local file."""
    browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    context = browser.new_context(offline=offline, viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                  else (problems.append(f"network: {route.request.url}"), route.abort()))
    page = context.new_page()
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning")
            else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(page_file.as_uri())
    page.wait_for_load_state("load")
    return browser, page, problems


IMAGES_SETTLED = """() => new Promise(settled => {
    const check = () => [...document.images].every(i => i.complete) ? settled(true) : setTimeout(check, 50);
    setTimeout(() => settled(false), 15000);
    check();
})"""


def wait_for_images(page) -> None:
    """Wait until every image has loaded or failed. Playwright's `wait_for_function` compiles its predicate with
    `eval` in the page, which the page's Content-Security-Policy forbids (as it should); a function passed to
    `evaluate` runs through the debugger protocol instead, outside the page's policy."""
    assert page.evaluate(IMAGES_SETTLED), "images still loading after 15 s"


def test_the_page_in_a_browser(batch: Path) -> None:
    sync_playwright = browser_or_skip()
    with sync_playwright() as play:
        browser, page, problems = open_page(play, batch / "out" / "compare.html")
        assert page.locator(".card").count() == 4
        assert page.inner_text("#shown") == "4 of 4 files"
        failed = page.locator(".card[data-status=failed]")
        reason = next(f["error"] for f in json.loads((batch / "report.json").read_text())["files"]
                      if f["input"].endswith("d.png"))
        assert failed.count() == 1 and "d.png" in failed.inner_text() and reason in failed.inner_text()
        jpeg = page.locator(".card", has_text="c.jpg")
        assert "photo-x2" in jpeg.inner_text() and "JPEG quality" in jpeg.inner_text()  # auto's choice and why

        # the slider shows more of the output as it moves: the pixels on screen change
        viewer = page.locator(".card", has_text="a.png").locator(".viewer")
        viewer.scroll_into_view_if_needed()
        wait_for_images(page)
        assert page.evaluate("[...document.images].every(i => i.naturalWidth > 0)")
        slider = viewer.locator("input[type=range]")
        slider.fill("0")
        at_zero = viewer.screenshot()
        slider.fill("100")
        at_hundred = viewer.screenshot()
        assert at_zero != at_hundred
        left = np.asarray(Image.open(io.BytesIO(at_zero)).convert("RGB"), np.int16)
        right = np.asarray(Image.open(io.BytesIO(at_hundred)).convert("RGB"), np.int16)
        assert np.abs(left - right)[:-24].mean() > 0.5  # the picture itself, above the slider's track

        # keyboard: j focuses the next card, the arrow keys move its slider, t toggles
        page.locator(".card").first.focus()
        page.keyboard.press("j")
        assert page.evaluate("document.activeElement.dataset.index") is not None
        focused = page.locator(".card:focus")
        before = focused.locator("input[type=range]").input_value()
        page.keyboard.press("ArrowLeft")
        assert focused.locator("input[type=range]").input_value() == str(int(before) - 10)

        # filters: status hides the failed card; model shows only auto's photo choice
        page.select_option("#status", "ok")
        assert page.locator(".card[data-status=failed]").is_hidden()
        assert page.inner_text("#shown") == "3 of 4 files"
        page.select_option("#status", "")
        page.select_option("#model", "photo-x2")
        assert page.inner_text("#shown") == "1 of 4 files"
        page.select_option("#model", "")
        page.select_option("#sort", "time")
        assert page.locator(".card").count() == 4
        assert problems == []
        browser.close()


def test_the_page_works_from_a_copied_folder_offline(batch: Path, tmp_path: Path) -> None:
    sync_playwright = browser_or_skip()
    copy = tmp_path / "elsewhere"
    shutil.copytree(batch / "out", copy)
    with sync_playwright() as play:
        browser, page, problems = open_page(play, copy / "compare.html", offline=True)
        page.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        wait_for_images(page)
        loaded = page.evaluate("[...document.images].map(i => i.naturalWidth)")
        assert len(loaded) == 6 and all(width > 0 for width in loaded)  # two crops for each of the three outputs
        link = page.locator(".card", has_text="a.png").locator("a", has_text="full output").get_attribute("href")
        assert (copy / link).is_file()  # the link is relative: it follows the folder
        assert problems == []
        browser.close()


def test_crops_are_small_and_show_the_region_the_model_changed(batch: Path) -> None:
    report = json.loads((batch / "report.json").read_text())
    assert {Path(f["input"]).name: f["status"] for f in report["files"]}["d.png"] == "failed"
    crops_dir = batch / "out" / "compare-crops"
    sizes = [p.stat().st_size for p in crops_dir.iterdir()]
    assert len(sizes) == 6 and max(sizes) < 40_000
    assert not any(p.suffix == ".png" for p in crops_dir.iterdir())  # crops, not copies of whole outputs

    # the region: where the output differs most from bicubic, found exactly on a planted change
    source = np.full((60, 80, 3), 128, np.uint8)
    output = np.asarray(Image.fromarray(source).resize((160, 120), Image.Resampling.BICUBIC)).copy()
    output[72:96, 100:124] = 0  # 24 pixels square: a 32-pixel window in steps of 8 can hold it whole
    left, top, width, height = changed_region(source, output, side=32)
    assert (width, height) == (32, 32) and left <= 100 and left + 32 >= 124 and top <= 72 and top + 32 >= 96
    before, after = crops(source, output, (left, top, width, height))
    assert np.asarray(after).min() == 0 and np.asarray(before).min() == 128  # before is the plain enlargement


def test_sixteen_bit_and_alpha_are_shown_as_the_pipeline_decodes_them(tmp_path: Path) -> None:
    deep = (np.arange(16 * 16 * 3, dtype=np.uint16).reshape(16, 16, 3) * 40)
    path = tmp_path / "deep.png"
    Image.fromarray(np.ascontiguousarray(deep[..., 0])).save(path)  # 16-bit grey
    shown = display_pixels(path)
    assert shown.dtype == np.uint8 and shown.shape == (16, 16, 3)
    assert np.array_equal(shown[..., 0], (deep[..., 0] >> 8).astype(np.uint8))
    rgba = np.dstack([photo(8, 8, 4), np.full((8, 8), 100, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    assert display_pixels(tmp_path / "alpha.png").shape == (8, 8, 4)


def test_without_a_report_the_files_are_paired_by_name(batch: Path, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    result = runner.invoke(app, ["compare", str(batch / "in"), str(batch / "out"), "-o", str(page)])
    assert result.exit_code == 0, result.output
    cards = json.loads(page.read_text().split("const CARDS = ")[1].split(";\n")[0])
    assert {c["name"]: c["status"] for c in cards} == {"a.png": "ok", "b.png": "ok", "c.jpg": "ok",
                                                       "d.png": "no output"}
    assert (tmp_path / "page-crops").is_dir()
    missing = runner.invoke(app, ["compare", str(tmp_path / "nowhere"), str(batch / "out")])
    assert missing.exit_code == 2 and "not a local folder" in missing.output
