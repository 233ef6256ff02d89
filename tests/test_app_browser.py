"""``r1track app`` in a real browser: Debian's headless Chromium driven by Playwright (never a browser
download). The app runs as the user starts it, on a free local port; the test uploads a broken file
(a message on the page), then a clip, clicks two corners of the target on the first frame, tracks with
the packaged nano model, and checks that the annotated video plays and that the boxes offered for
download equal ``r1track track``'s on the same clip; then a sample, its box typed, shows its AO plot.

Without Chromium or Playwright the test skips and says why; with ``R1TRACK_REQUIRE_BROWSER=1`` (set
in CI) it fails instead. ``R1TRACK_APP_SCREENSHOT=docs/app.png`` also saves the README's screenshot.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from r1track import datasets, synth
from r1track.cli import main
from r1track.video import write_annotated

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FRAMES = 24


def _playwright():
    """Playwright's sync API, or a skip (a failure where CI requires the browser) saying what is missing."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright)"
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"no headless Chromium at {CHROMIUM} (apt-get install chromium)"
    if reason is None:
        try:
            import gradio  # noqa: F401
        except ImportError:
            reason = "gradio is not installed (pip install 'r1track[app]')"
    if reason is not None:
        if os.environ.get("R1TRACK_REQUIRE_BROWSER") == "1":
            pytest.fail(f"R1TRACK_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    pytest.importorskip("transformers")
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_served(url: str, proc: subprocess.Popen, log: Path, limit: float = 90) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"r1track app exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"r1track app did not answer at {url} within {limit:.0f} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``r1track app`` on a free port (the URL), stopped after the module."""
    sync_playwright = _playwright()
    port = _free_port()
    log = tmp_path_factory.mktemp("app") / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "r1track.cli", "app", "--port", str(port), "--model", "nano", "--device", "cpu"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_served(url, proc, log)
        yield url, sync_playwright
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A synthetic clip as an MP4 file (what a user uploads) and its first ground-truth box."""
    root = tmp_path_factory.mktemp("clip")
    synth.generate(root / "data", 1, FRAMES, 11, split="val", progress=False)
    seq = datasets.load("got10k", root / "data", "val")[0]
    path = write_annotated(seq.iter_frames(), np.full((FRAMES, 4), np.nan), root / "clip.mp4", fps=15)
    return path, seq.gt[0]


def _last_sample_box(tmp_path) -> np.ndarray:
    """The first box of the app's last sample (generated as the app does)."""
    from r1track.app import SAMPLE_FRAMES, SAMPLE_SEED, SAMPLE_SEQUENCES

    synth.generate(tmp_path / "sample", SAMPLE_SEQUENCES, SAMPLE_FRAMES, SAMPLE_SEED, split="val", progress=False)
    return datasets.load("got10k", tmp_path / "sample", "val")[-1].gt[0]


def _text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value()


def _click_corners(page, box) -> None:
    """Click the box's top-left and bottom-right pixels on the first frame as shown (scaled) on the page."""
    image = page.locator("#frame img")
    shown = image.bounding_box()
    natural = image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    for x, y in ((box[0], box[1]), (box[0] + box[2], box[1] + box[3])):
        page.mouse.click(
            shown["x"] + (x + 0.5) * shown["width"] / natural[0], shown["y"] + (y + 0.5) * shown["height"] / natural[1]
        )
        page.wait_for_timeout(300)  # the first corner is drawn before the second click


def _screenshot(page, out: Path, width: int = 760) -> None:
    """The whole page, scaled down to ``width`` px and reduced to 256 colours (small enough for a README)."""
    from PIL import Image

    page.screenshot(path=str(out), full_page=True)
    with Image.open(out) as shot:
        small = shot.convert("RGB").resize((width, round(shot.height * width / shot.width)), Image.LANCZOS)
    small.quantize(256).save(out, optimize=True)


@pytest.mark.slow
def test_track_an_uploaded_clip_in_the_browser(served, clip, tmp_path):
    url, sync_playwright = served
    path, first_box = clip
    sample_box = ",".join(f"{v:g}" for v in _last_sample_box(tmp_path))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 50)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1000})
        elsewhere = []  # requests that leave this machine: the page must work offline
        page.on(
            "request",
            lambda r: (
                elsewhere.append(r.url)
                if r.url.startswith(("http:", "https:", "ws:", "wss:"))
                and not r.url.startswith((url, url.replace("http", "ws", 1)))
                else None
            ),
        )
        page.goto(url)
        upload = page.locator("#upload input[type=file]")

        # a broken file: a message on the page, no traceback
        upload.set_input_files(str(broken))
        error = page.get_by_text("cannot be opened").first
        error.wait_for(timeout=20_000)
        assert "broken.mp4" in page.content() and "Traceback" not in page.content()
        page.locator("#upload button[aria-label='Clear']").first.click()

        # the clip: first frame shown, box from two clicks, tracked with nano
        upload.set_input_files(str(path))
        page.get_by_text(f"{FRAMES} frames of").wait_for(timeout=20_000)
        _click_corners(page, first_box)
        page.wait_for_function("() => document.querySelector('#box textarea, #box input').value !== ''")
        box_text = _text(page, "box")
        assert np.abs(np.array([float(v) for v in box_text.split(",")]) - first_box).max() <= 1
        page.locator("#track").click()
        page.wait_for_function("() => document.querySelector('#tracked video')?.src", timeout=60_000)
        video = page.locator("#tracked video")
        assert (
            video.evaluate(
                "v => new Promise(r => v.readyState >= 1 ? r(v.duration)"
                " : v.addEventListener('loadedmetadata', () => r(v.duration)))"
            )
            > 0
        )
        assert f"{FRAMES} frames" in _text(page, "summary")
        links = page.locator("#downloads a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        boxes_href = next(h for h in hrefs if h.endswith("clip_boxes.txt"))
        assert any(h.endswith("clip_tracked.webm") for h in hrefs)
        served_boxes = page.request.get(boxes_href).text()

        # the last sample, its box typed: the AO against its ground truth and the IoU plot
        page.locator("#sample input").click()
        page.get_by_role("option").last.click()
        page.get_by_text("ground truth known").wait_for(timeout=20_000)
        page.locator("#box textarea, #box input").first.type(sample_box)
        page.locator("#track").click()
        page.wait_for_function(
            "() => document.querySelector('#summary textarea, #summary input').value.includes('AO')", timeout=90_000
        )
        page.locator("#plot img").wait_for(timeout=10_000)  # matplotlib figures arrive as images
        if os.environ.get("R1TRACK_APP_SCREENSHOT"):
            _screenshot(page, Path(os.environ["R1TRACK_APP_SCREENSHOT"]))
        browser.close()
    assert elsewhere == []

    reference = tmp_path / "ref.txt"
    assert (
        main(["track", str(path), "--box", box_text, "--model", "nano", "--device", "cpu", "--out", str(reference)])
        == 0
    )
    assert served_boxes == reference.read_text()
    assert len(served_boxes.splitlines()) == FRAMES
