"""Driving the editor page in a real Chromium with Playwright (the browser on PATH, never a downloaded one): open an
image, choose a layer and a colour, draw strokes with the mouse, fill, download. Used by the browser tests and
by ``experiments/editor_demo.py``."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.helpers.run_if import find_browser

VIEWPORT = {"width": 1400, "height": 900}


def launch(playwright, browser: str | None = None):
    """Headless Chromium from PATH (Debian's ``chromium``), through Playwright's ``executable_path``."""
    executable = browser or find_browser()
    if executable is None:
        raise RuntimeError("no Chromium on PATH; apt-get install chromium")
    return playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])


STATUS = '#status [data-testid="markdown"]'
"""The status line's text (the element #status also holds the progress display of the event that writes it)."""


def status_text(page) -> str:
    return page.inner_text(STATUS).strip()


def wait_for_status(page, text: str, timeout_ms: int = 60_000, previous: str | None = None) -> str:
    """The status line once the event writing it is done and it contains ``text`` (and differs from
    ``previous``, the line before an action)."""
    try:
        page.wait_for_function(
            """([selector, text, previous]) => {
                const status = document.querySelector(selector).innerText.trim();
                const tracker = document.querySelector('#status [data-testid="status-tracker"]');
                return status.includes(text) && status !== previous && tracker.classList.contains('hide');
            }""",
            arg=[STATUS, text, previous],
            timeout=timeout_ms,
        )
    except PlaywrightTimeoutError:
        toasts = page.locator('[data-testid="toast-text"]').all_inner_texts()
        raise AssertionError(
            f"the status never said {text!r}; it says {status_text(page)!r}, messages: {toasts}"
        ) from None
    return status_text(page)


EDITOR_BUSY = """busy => {
    const tracker = document.querySelector('#editor [data-testid="status-tracker"]');
    return tracker !== null && tracker.classList.contains('hide') !== busy;
}"""


def wait_for_editor(page, timeout_ms: int = 60_000) -> None:
    """Until the editor has drawn the image an event sent it: its progress display, shown while the event runs
    and the image loads (seconds, in software WebGL on a busy machine), is hidden again."""
    with contextlib.suppress(PlaywrightTimeoutError):  # it may have come and gone already
        page.wait_for_function(EDITOR_BUSY, arg=True, timeout=3_000)
    page.wait_for_function(EDITOR_BUSY, arg=False, timeout=timeout_ms)
    page.wait_for_timeout(300)  # the editor fits the image to its view


def open_file(page, path: Path) -> str:
    """Upload ``path`` with the page's file input (what a drop or the file dialog does); the status line after,
    once the editor shows the image."""
    page.set_input_files("#opener input[type=file]", str(path))
    status = wait_for_status(page, f"Opened {path.name}")
    wait_for_editor(page)
    return status


def choose_layer(page, name: str) -> None:
    page.get_by_role("button", name="Show Layers").click()
    page.locator(f'#editor button:text-is("{name}")').click()


def choose_colour(page, index: int) -> None:
    """The brush's ``index``-th colour (0: the hole colour, 1: white for sketch lines)."""
    page.get_by_role("button", name="Color", exact=True).click()
    page.locator("#editor menu.swatch button.color").nth(index).click()


def set_brush_size(page, size: int) -> None:
    """Move the editor's brush size slider (1 to 100) to ``size``."""
    page.get_by_role("button", name="Brush Size", exact=True).click()
    page.locator("#editor .size_picker input[type=range]").evaluate(
        """(slider, size) => {
            slider.value = String(size);
            slider.dispatchEvent(new Event('input', {bubbles: true}));
            slider.dispatchEvent(new Event('change', {bubbles: true}));
        }""",
        size,
    )
    page.get_by_role("button", name="Brush Size", exact=True).click()


class CanvasView:
    """Where the editor shows an image of ``size`` (width, height): the canvas's box, the image centred in it at
    the zoom the editor displays."""

    def __init__(self, page, size: tuple[int, int]):
        self.page = page
        self.box = page.locator("#editor canvas").first.bounding_box()
        self.zoom = int(re.sub(r"\D", "", page.inner_text("#editor .zoom-number"))) / 100
        self.size = size

    def screen(self, x: float, y: float) -> tuple[float, float]:
        """Screen position of image pixel (x, y)."""
        width, height = self.size
        centre_x, centre_y = self.box["x"] + self.box["width"] / 2, self.box["y"] + self.box["height"] / 2
        return centre_x + (x - width / 2) * self.zoom, centre_y + (y - height / 2) * self.zoom

    def stroke(self, start: tuple[float, float], end: tuple[float, float], steps: int = 4) -> None:
        """Drag the mouse from image pixel ``start`` to ``end``."""
        mouse = self.page.mouse
        mouse.move(*self.screen(*start))
        mouse.down()
        for step in range(1, steps + 1):
            t = step / steps
            mouse.move(*self.screen(start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t))
        mouse.up()


def distance_to_segment(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float]
) -> np.ndarray:
    """(H, W) distance of every pixel centre to the segment from ``start`` to ``end`` (x, y)."""
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    return np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))


def fill_and_download(page, target: Path, timeout_ms: int = 60_000) -> str:
    """Press Fill, wait for the result, download it to ``target``; returns the status line."""
    before = status_text(page)
    page.click("#fill")
    status = wait_for_status(page, "Filled", timeout_ms, previous=before)
    with page.expect_download(timeout=timeout_ms) as download:
        page.click("#download")
    download.value.save_as(target)
    return status
