"""The page in a real headless Chromium: upload through the file input (and by keyboard), see
the verdict and the heatmap appear, see a bad file's message; no request leaves the server, no
console error (a CSP violation would be one); usable at phone width; a screenshot.

Debian's /usr/bin/chromium is driven through Playwright (its own browser download does not work
here). Set FAKESCOPE_SCREENSHOT=docs/serve-page.png to also write the page's screenshot there.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from fakescope.detector import Detector
from tests.conftest import CIFAKE_TEST
from tests.hostile import invalid_files, valid_files
from tests.serve_util import running_server

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin"),
]


def _samples() -> list[tuple[str, bytes, str]]:
    """One real and one fake CIFAKE test image when the data is here, else two synthetic."""
    if CIFAKE_TEST.exists():
        found: dict[str, tuple[str, bytes, str]] = {}
        with tarfile.open(CIFAKE_TEST) as tf:
            for m in tf:
                cls = "REAL" if "/REAL/" in m.name else "FAKE" if "/FAKE/" in m.name else ""
                if m.isfile() and cls and cls not in found:
                    name = f"cifake-{cls.lower()}-{Path(m.name).name.replace(' ', '')}"
                    found[cls] = (name, tf.extractfile(m).read(), "image/jpeg")
                if len(found) == 2:
                    return [found["REAL"], found["FAKE"]]
    v = valid_files()
    return [("photo.jpg", v["photo.jpg"], "image/jpeg"), ("plain.png", v["plain.png"], "image/png")]


def _file(name: str, data: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def test_page_end_to_end(tmp_path):
    pytest.importorskip("pytorch_grad_cam")
    with running_server("--no-access-log") as server, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 760})
            page.set_default_timeout(90_000)  # generous: CI machines can be busy
            sync_api.expect.set_options(timeout=90_000)
            requests, problems = [], []
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server.url + "/")
            sync_api.expect(page.locator("#model")).to_contain_text("auto")  # the default

            # 1. upload through the file input
            good = _samples()
            page.set_input_files("#chooser", files=[_file(*good[0])])
            card = page.locator(".card", has_text=good[0][0])
            sync_api.expect(card).to_have_attribute("data-state", "done")
            sync_api.expect(card).to_contain_text("cifake-resnet10s")  # auto's pick, per image
            verdict = card.locator(".verdict").inner_text()
            assert verdict.split(":")[0] in ("Real", "Fake", "Uncertain"), verdict
            assert card.locator(".prob").inner_text().startswith("prob_fake ")
            width = card.locator(".fill").evaluate("e => e.style.width")
            assert width.endswith("%") and 0 <= float(width[:-1]) <= 100
            heat = card.locator("img.heatmap.ready")
            sync_api.expect(heat).to_be_visible()
            assert heat.evaluate("img => img.naturalWidth") > 0

            # 2. the keyboard: focus the drop zone, Enter opens the chooser
            page.focus("#drop")
            assert page.evaluate("document.activeElement.id") == "drop"  # focusable
            for attempt in range(3):  # a busy CI machine once dropped the first key press
                try:
                    with page.expect_file_chooser(timeout=20_000) as chooser:
                        page.keyboard.press("Enter")
                    break
                except sync_api.TimeoutError:
                    if attempt == 2:
                        raise
                    page.focus("#drop")
            chooser.value.set_files([_file(*good[1])])
            card2 = page.locator(".card", has_text=good[1][0])
            sync_api.expect(card2).to_have_attribute("data-state", "done")
            sync_api.expect(card2.locator("img.heatmap.ready")).to_be_visible()

            # 3. several files at once: cards in the order chosen, each with the threshold of
            # the model that scored it (auto: a photo goes to its photo model, 0.75)
            big = Image.radial_gradient("L").convert("RGB").resize((320, 240))
            buf = io.BytesIO()
            big.save(buf, "PNG")
            page.set_input_files(
                "#chooser",
                files=[_file("zz-photo.png", buf.getvalue(), "image/png"), _file(*good[0])],
            )
            page.locator("#status").filter(has_text="Done: 2").wait_for()
            names = page.locator(".card .name").all_inner_texts()
            assert names[-2:] == ["zz-photo.png", good[0][0]], names
            assert names[0] == good[0][0] and names[1] == good[1][0], names  # drop order
            photo = page.locator(".card", has_text="zz-photo.png")
            sync_api.expect(photo).to_have_attribute("data-state", "done")
            member = Detector.load(device="cpu").routes[-1][1]  # auto's photo model
            t = member.threshold
            sync_api.expect(photo).to_contain_text(member.name)
            # a smooth gradient is no photo: the card says why it is uncertain
            sync_api.expect(photo).to_contain_text("out of scope: no texture")
            sync_api.expect(photo.locator(".prob")).to_contain_text(
                f"(threshold {t:.2f}, uncertain"
            )
            left = f"{float(f'{100 * t:.1f}'):g}%"  # as the page writes it, as CSS reads it back
            assert photo.locator(".mark").evaluate("e => e.style.left") == left
            thumb = page.locator(".card", has_text=good[0][0]).first
            sync_api.expect(thumb.locator(".prob")).to_contain_text("(threshold 0.50)")

            # 4. a bad file gets its message
            page.set_input_files(
                "#chooser", files=[_file("notes.jpg", invalid_files()["text.jpg"], "image/jpeg")]
            )
            bad = page.locator(".card", has_text="notes.jpg")
            sync_api.expect(bad).to_have_attribute("data-state", "error")
            sync_api.expect(bad.locator(".message")).to_contain_text(
                "This file was rejected: not an image Pillow can read"
            )
            page.locator("#status").filter(has_text="Done").wait_for()
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert Image.open(shot).size[0] == 1000

            # 5. phone width: one column, nothing wider than the screen
            page.set_viewport_size({"width": 375, "height": 740})
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.screenshot(path=str(tmp_path / "phone.png"))

            assert not problems, problems
            outside = [u for u in requests if not u.startswith((server.url, "blob:", "data:"))]
            assert not outside, outside
        finally:
            browser.close()
    target = os.environ.get("FAKESCOPE_SCREENSHOT")
    if target:  # docs copy: a 256-colour PNG is a fraction of the size and looks the same
        img = Image.open(shot).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
        buf = io.BytesIO()
        img.save(buf, "PNG", optimize=True)
        Path(target).write_bytes(buf.getvalue())
