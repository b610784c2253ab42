"""The editor in a real browser: Debian's Chromium on PATH driven by Playwright against ``python -m mtmsa.app`` on a
free local port. A photo is uploaded, a hole stroke and a sketch line are drawn with the mouse, the fill is run
and downloaded, and the download is checked against the photo as mtmsa.inpaint decodes it. Screenshots are kept
in ``logs/test-artifacts/`` (or ``$MTMSA_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

from tests.helpers.run_if import RunIf

pytest.importorskip("gradio", reason="the editor needs the app extra: pip install -e '.[app]'")
pytest.importorskip("playwright", reason="the browser tests need playwright: pip install -e '.[dev]'")

from playwright.sync_api import sync_playwright  # noqa: E402

from mtmsa.data.io import read_rgb  # noqa: E402
from tests.helpers.app_server import Command  # noqa: E402
from tests.helpers.editor_page import (  # noqa: E402
    VIEWPORT,
    CanvasView,
    choose_colour,
    choose_layer,
    distance_to_segment,
    fill_and_download,
    launch,
    open_file,
    set_brush_size,
    wait_for_editor,
    wait_for_status,
)
from tests.helpers.runs import CHECKPOINT_V0_1  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("MTMSA_TEST_ARTIFACTS", REPO / "logs" / "test-artifacts"))
WIDTH, HEIGHT = 256, 192
HOLE = ((0.3 * WIDTH, 0.35 * HEIGHT), (0.6 * WIDTH, 0.6 * HEIGHT))
SKETCH = ((0.2 * WIDTH, 0.55 * HEIGHT), (0.75 * WIDTH, 0.4 * HEIGHT))
SECOND_HOLE = ((0.8 * WIDTH, 0.15 * HEIGHT), (0.85 * WIDTH, 0.35 * HEIGHT))
BAND = 0.15 * WIDTH
"""Farther than this from a stroke's line no pixel may change (the brush's radius is about 25 image pixels)."""


@pytest.fixture(scope="module")
def editor():
    """``python -m mtmsa.app`` on a free port with the 0.1.0 fixture checkpoint; yields its URL."""
    server = Command(["--checkpoint", str(CHECKPOINT_V0_1), "--port", "0", "--device", "cpu"])
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """A JPEG photo: the download must hold its pixels as mtmsa.inpaint decodes them."""
    path = tmp_path_factory.mktemp("photo") / "astronaut.jpg"
    Image.fromarray(skimage_data.astronaut()).resize((WIDTH, HEIGHT)).save(path, quality=90)
    return path


def changed_band(result: np.ndarray, before: np.ndarray, stroke) -> tuple[np.ndarray, float]:
    """Pixels that differ, and the farthest of them from the stroke's line."""
    changed = (result != before).any(axis=-1)
    distance = distance_to_segment(changed.shape, *stroke)
    return changed, float(distance[changed].max()) if changed.any() else 0.0


@RunIf(browser=True)
def test_paint_sketch_fill_download_keep_editing_in_chromium(editor, photo, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    decoded = read_rgb(photo)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        page.goto(editor)
        page.wait_for_selector("#editor")
        assert (
            open_file(page, photo)
            == f"Opened astronaut.jpg, {WIDTH}x{HEIGHT}. Paint the hole on the layer hole."
        )
        view = CanvasView(page, (WIDTH, HEIGHT))
        view.stroke(*HOLE)  # the layer 'hole' and the hole colour are chosen at the start
        choose_layer(page, "sketch")
        choose_colour(page, 1)  # white lines
        set_brush_size(page, 3)  # thin ones
        view.stroke(*SKETCH)
        page.screenshot(path=ARTIFACTS / "editor_mid_edit.png")
        status = fill_and_download(page, tmp_path / "result.png")
        assert "hole pixels with your sketch" in status

        result = Image.open(tmp_path / "result.png")
        assert result.format == "PNG" and result.mode == "RGB" and result.size == (WIDTH, HEIGHT)
        result = np.asarray(result)
        changed, farthest = changed_band(result, decoded, HOLE)
        filled = int(status.split("Filled ")[1].split(" hole")[0].replace(",", ""))
        assert 0 < changed.sum() <= filled  # the hole changed, nothing else did ...
        assert farthest < BAND  # ... every changed pixel lies along the painted stroke
        distance = distance_to_segment(changed.shape, *HOLE)
        assert changed[distance < 2].mean() > 0.9  # the stroke's middle was filled
        far = distance > BAND
        assert np.array_equal(result[far], decoded[far])  # known pixels: the JPEG as decoded, byte for byte

        page.get_by_text("Temperature maps of the last fill").click()
        page.click("#show-temperature")
        assert "Temperatures of the last fill" in wait_for_status(page, "Temperatures")
        assert page.locator("#temperature img").get_attribute("src")
        page.screenshot(path=ARTIFACTS / "editor_result.png", full_page=True)

        page.click("#keep")
        wait_for_status(page, "Editing the result")
        wait_for_editor(page)
        choose_layer(page, "hole")
        CanvasView(page, (WIDTH, HEIGHT)).stroke(*SECOND_HOLE)
        fill_and_download(page, tmp_path / "second.png")
        second = np.asarray(Image.open(tmp_path / "second.png"))
        changed, farthest = changed_band(second, result, SECOND_HOLE)
        assert (
            changed.sum() > 0 and farthest < 0.1 * WIDTH
        )  # only the new hole changed: the first fill is kept
        assert not (second[changed] == decoded[changed]).all()

        page.locator("#examples").get_by_text("chelsea").click()
        assert wait_for_status(page, "Opened chelsea.png").startswith("Opened chelsea.png, 451x300.")
        wait_for_editor(page)
        assert CanvasView(page, (451, 300)).zoom > 0
        browser.close()
