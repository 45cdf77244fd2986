"""Retake `docs/serve-page.png`: today's page from `fakescope serve` on 127.0.0.1, with the
three example images (two thumbnails and a photo, each scored by its own model) and a file that
is not an image, in Debian's headless Chromium driven by Playwright.

    python scripts/serve_screenshot.py [--out docs/serve-page.png]

Needs the `serve` and `explain` extras, `dev`'s Playwright and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import io
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
FILES = ["cifake-fake.jpg", "cifake-real.jpg", "sd-fake-256.jpg"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "serve-page.png")
    args = ap.parse_args()
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "fakescope", "serve", "--host", "127.0.0.1", "--port", str(port)]
    )
    try:
        for _ in range(600):  # the models load before the server listens
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.set_default_timeout(300_000)
            expect.set_options(timeout=300_000)
            page.goto(url + "/")
            files = [str(ROOT / "examples" / f) for f in FILES]
            notes = Path(tmp) / "notes.txt"
            notes.write_text("not an image")
            page.set_input_files("#chooser", files=[*files, str(notes)])
            page.locator("#status").filter(has_text="Done").wait_for()
            for card in page.locator(".card").all():
                if card.get_attribute("data-state") == "done":
                    expect(card.locator("img.heatmap.ready")).to_be_visible()
            shot = Path(tmp) / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
            # a 256-colour PNG is a fraction of the size and looks the same
            img = Image.open(shot).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
            buf = io.BytesIO()
            img.save(buf, "PNG", optimize=True)
            args.out.write_bytes(buf.getvalue())
        print(f"wrote {args.out} ({len(buf.getvalue()):,} bytes)")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
