"""`python -m local_stack.page_screenshot [DIR] [PNG]`: docs/demo-page.png from `make demo`'s page.

Serves DIR (demo-output) on loopback, opens index.html in headless Chromium (the system's, driven
by Playwright; nothing downloaded), hovers the scrub bar at 40% so the storyboard preview shows,
and saves a screenshot of the page.
"""

from __future__ import annotations

import functools
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from devkit.paths import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def screenshot(site: Path, png: Path, hover_at: float = 0.4) -> None:
    from playwright.sync_api import sync_playwright

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 1080})
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            page.wait_for_selector("body[data-cues]")
            page.wait_for_load_state("networkidle")
            box = page.locator("#scrub").bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] * hover_at, box["y"] + box["height"] / 2, steps=5)
            page.wait_for_timeout(300)
            page.screenshot(path=str(png))  # full_page resizes the view: the hover would end
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    site = Path(argv[0]) if argv else REPO_ROOT / "demo-output"
    png = Path(argv[1]) if len(argv) > 1 else REPO_ROOT / "docs" / "demo-page.png"
    screenshot(site, png)
    print(f"screenshot: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
