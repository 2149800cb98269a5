"""The demo page (local_stack/demo_page.py) in a real browser: headless Chromium driven by Playwright.

The worker's outputs for a clip whose pixels carry the frame number, the page written beside them
and served over loopback HTTP. Hovering the scrub bar at three places must show the storyboard tile
of the cue holding that time (read back from the rendered pixels, and the crop from the VTT), and
the poster, stills and animated preview must load.
"""

from __future__ import annotations

import functools
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from local_stack.demo_page import write_page
from local_stack.page_screenshot import CHROMIUM_ARGS
from tests.unit.worker.storyboard_checks import parse_vtt
from tests.unit.worker.synthetic import Clip, make_clip, read_barcode
from thumbnailer.__main__ import main as cli_main

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"


def chromium_or_skip() -> Path:
    if not CHROMIUM.is_file() and not shutil.which("chromium"):
        pytest.skip(f"Chromium is not installed at {CHROMIUM}: install it with `{INSTALL}`")
    pytest.importorskip("playwright.sync_api", reason="pip install -r requirements-dev.txt (playwright)")
    return CHROMIUM if CHROMIUM.is_file() else Path(shutil.which("chromium") or CHROMIUM)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, Clip, dict[str, Any]]]:
    """The page for a 60 s barcode clip with every extra output, on http://127.0.0.1:<port>/."""
    clip = make_clip(tmp_path / "clip in dir.mp4", frames=600, fps=10, gop=20)
    out = tmp_path / "site"
    flags = ["--storyboard", "--count", "4", "--preview", "start=20,duration=2"]
    assert cli_main([str(clip.path), "--out", str(out / "thumbs"), "--at", "30", *flags]) == 0
    manifest = json.loads((out / "thumbs" / f"{clip.path.name}.json").read_text())
    write_page(out, manifest, Path, clip.path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(out)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html", out, clip, manifest
    finally:
        server.shutdown()
        server.server_close()


def _loaded(page: Any, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def test_demo_page_in_chromium(served: tuple[str, Path, Clip, dict[str, Any]], tmp_path: Path) -> None:
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    url, out, clip, manifest = served
    cues = parse_vtt((out / "thumbs" / f"{clip.path.name}.storyboard.vtt").read_text())
    duration = manifest["source"]["duration"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-cues]")
            assert int(page.get_attribute("body", "data-cues") or 0) == len(cues)
            box = page.locator("#scrub").bounding_box()
            assert box is not None
            for cue in (cues[3], cues[len(cues) // 2], cues[-2]):
                time = (cue.start + cue.end) / 2
                page.mouse.move(box["x"] + box["width"] * time / duration, box["y"] + box["height"] / 2)
                preview = page.locator("#hover-preview")
                shown_start = float(preview.get_attribute("data-cue-start") or "nan")
                assert shown_start == cue.start, (time, shown_start)
                x, y, w, h = cue.box
                style = preview.evaluate("e => [e.style.backgroundPosition, e.style.width, e.style.height]")
                assert style == [f"{-x}px {-y}px" if x or y else "0px 0px", f"{w}px", f"{h}px"]
                shot = tmp_path / f"hover-{cue.start}.png"
                preview.screenshot(path=str(shot))
                tile = Image.open(shot)  # a pixel more where the layout puts it at a fractional y
                assert abs(tile.width - w) <= 1 and abs(tile.height - h) <= 1, tile.size
                tile = tile.convert("RGB").resize((w, h))
                assert read_barcode(tile, coded_width=clip.width) == clip.expected_index(cue.start), cue
            poster = page.evaluate(
                """() => new Promise((done) => { const i = new Image();
                   i.onload = () => done(i.naturalWidth); i.onerror = () => done(0);
                   i.src = document.getElementById('video').poster; })"""
            )
            assert poster == clip.width
            page.wait_for_load_state("load")
            stills = page.locator("#stills img")
            assert stills.count() == 4
            for i in range(4):
                assert _loaded(page, f"#stills figure:nth-child({i + 1}) img")
            assert _loaded(page, "#animated-preview")
        finally:
            browser.close()
