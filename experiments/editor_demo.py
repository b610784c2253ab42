"""The editor's numbers and pictures for any checkpoint: API latency, server memory, the page's fill time, and the
README's screenshot of the editor mid-edit.

    python experiments/editor_demo.py --checkpoint logs/train/runs/<run>/checkpoints/last.ckpt
    python experiments/editor_demo.py --checkpoint C --repeats 10 --screenshot docs/images/editor.png

It starts ``python -m mtmsa.app --checkpoint C --port 0`` (the real command, on a free local port) and:

- sends ``POST /api/inpaint`` for a 512x512 and a 1024x768 photo (scikit-image's astronaut and coffee, resized)
  with a brush-stroke hole of about 12% of the image and a sketch line through it: one request to warm up, then
  ``--repeats`` timed ones; the time is the client's wall time from sending the request to having the whole
  PNG (httpx, one connection per request), median and range;
- reads the server process's resident memory after start-up and its peak (VmHWM) after all requests;
- drives Debian's Chromium (``chromium`` on PATH, through Playwright) on the page: opens the 512x512 example
  photo, paints a hole and draws a sketch line with the mouse, fills ``--page-repeats`` times (the time from the
  click on Fill to the status line saying it is done, as the user sees it), and saves a screenshot of the page
  mid-edit: strokes on the input, the result beside it.

Prints a Markdown table (``--out`` also writes it).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image
from skimage import data as skimage_data

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the helpers the editor's tests use to start it and drive the page

from tests.helpers.app_server import Command, post_inpaint  # noqa: E402
from tests.helpers.editor_page import (  # noqa: E402
    VIEWPORT,
    CanvasView,
    choose_colour,
    choose_layer,
    launch,
    set_brush_size,
    status_text,
    wait_for_editor,
    wait_for_status,
)

SIZES = {"512x512": ("astronaut", 512, 512), "1024x768": ("coffee", 1024, 768)}


def request_files(folder: Path, name: str, photo: str, width: int, height: int) -> dict[str, Path]:
    """A photo, a brush-stroke hole (about 12% of the image) and a sketch line through it, as PNG files."""
    image = cv2.resize(getattr(skimage_data, photo)(), (width, height), interpolation=cv2.INTER_AREA)
    hole = np.zeros((height, width), np.uint8)
    points = (np.array([[0.3, 0.35], [0.45, 0.55], [0.65, 0.5], [0.7, 0.7]]) * [width, height]).astype(
        np.int32
    )
    cv2.polylines(hole, [points], False, 255, thickness=int(0.1 * min(width, height)))
    sketch = np.zeros_like(hole)
    cv2.line(sketch, (int(0.25 * width), int(0.5 * height)), (int(0.75 * width), int(0.55 * height)), 255, 2)
    files = {
        "image": folder / f"{name}.png",
        "mask": folder / f"{name}-hole.png",
        "sketch": folder / f"{name}-sketch.png",
    }
    Image.fromarray(image).save(files["image"])
    Image.fromarray(hole).save(files["mask"])
    Image.fromarray(sketch).save(files["sketch"])
    return files


def memory_mib(pid: int) -> dict[str, float]:
    """Resident memory now (VmRSS) and at its peak (VmHWM) of a process, in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {key: int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM")}


def api_latency(url: str, files: dict[str, Path], repeats: int) -> list[float]:
    hole = np.asarray(Image.open(files["mask"])) > 127
    image = np.asarray(Image.open(files["image"]))
    seconds = []
    for attempt in range(repeats + 1):
        start = time.perf_counter()
        response = post_inpaint(url, files)
        elapsed = time.perf_counter() - start
        response.raise_for_status()
        result = np.asarray(Image.open(io.BytesIO(response.content)))
        assert np.array_equal(result[~hole], image[~hole]), "known pixels changed"
        if attempt:  # the first one warms up
            seconds.append(elapsed)
    return seconds


def page_demo(url: str, screenshot: Path, repeats: int) -> list[float]:
    """Drive the page: the astronaut example (512x512), a hole over the rocket, a sketch line; fill ``repeats``
    times; a screenshot mid-edit. Returns the fill times as the user sees them."""
    from playwright.sync_api import sync_playwright

    size = (512, 512)
    hole = ((0.85 * size[0], 0.08 * size[1]), (0.85 * size[0], 0.55 * size[1]))
    sketch = ((0.74 * size[0], 0.32 * size[1]), (0.97 * size[0], 0.3 * size[1]))
    seconds = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        page.goto(url)
        page.wait_for_selector("#editor")
        page.locator("#examples").get_by_text("astronaut").click()
        wait_for_status(page, "Opened astronaut.png")
        wait_for_editor(page)
        view = CanvasView(page, size)
        set_brush_size(page, 28)
        view.stroke(*hole)
        choose_layer(page, "sketch")
        choose_colour(page, 1)
        set_brush_size(page, 3)
        view.stroke(*sketch)
        for _ in range(repeats):
            before = status_text(page)
            start = time.perf_counter()
            page.click("#fill")
            wait_for_status(page, "Filled", previous=before)
            seconds.append(time.perf_counter() - start)
            page.wait_for_timeout(300)
        page.wait_for_timeout(1000)  # the before/after slider has drawn both images
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=screenshot)
        browser.close()
    return seconds


def describe(seconds: list[float]) -> str:
    return (
        f"{statistics.median(seconds) * 1000:.0f} ms (range {min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f}, "
        f"n={len(seconds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--repeats", type=int, default=10, help="timed API requests per image size")
    parser.add_argument("--page-repeats", type=int, default=5, help="timed fills in the browser")
    parser.add_argument("--screenshot", type=Path, default=REPO / "docs" / "images" / "editor.png")
    parser.add_argument("--no-browser", action="store_true", help="API numbers only")
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    args = parser.parse_args()

    folder = REPO / "logs" / "editor_demo"
    folder.mkdir(parents=True, exist_ok=True)
    server = Command(["--checkpoint", str(args.checkpoint), "--port", "0", "--device", "cpu"])
    try:
        pid = server.process.pid
        started = memory_mib(pid)
        health = httpx.get(f"{server.url}api/health", timeout=30).json()
        rows = []
        for name, (photo, width, height) in SIZES.items():
            files = request_files(folder, name, photo, width, height)
            seconds = api_latency(server.url, files, args.repeats)
            rows.append((f"`POST /api/inpaint`, {name} PNG, hole 12% + sketch", describe(seconds)))
        if not args.no_browser:
            seconds = page_demo(server.url, args.screenshot, args.page_repeats)
            rows.append(
                ("page: click on Fill to result shown, 512x512 (Chromium, software WebGL)", describe(seconds))
            )
        memory = memory_mib(pid)
    finally:
        server.stop()
    rows.append(("server memory after start-up (RSS)", f"{started['VmRSS']:.0f} MiB"))
    rows.append(("server peak memory (VmHWM) after all of the above", f"{memory['VmHWM']:.0f} MiB"))
    table = [
        f"checkpoint `{args.checkpoint}` (trained at {health['trained_size']} px), device {health['device']}",
        "",
        "| what | time / memory |",
        "|---|---|",
        *(f"| {what} | {value} |" for what, value in rows),
    ]
    print("\n".join(table))
    if not args.no_browser:
        print(f"\nscreenshot: {args.screenshot}")
    if args.out:
        args.out.write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
