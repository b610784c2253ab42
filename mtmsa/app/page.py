"""The editor page: a Gradio Blocks app around ``gr.ImageEditor`` with two fixed layers.

The user opens an image (upload, drag and drop, or one of the bundled example photos), paints the hole on
the layer ``hole`` and draws guiding lines on the layer ``sketch`` (both over the photo, with the editor's
brush size slider, eraser and undo), fills, compares before and after, downloads the PNG, and may keep
editing the result or look at the temperature maps of the last fill.

The pixels that are filled are never the editor's: the opened file is decoded on the server by
:func:`mtmsa.data.io.read_rgb` (as ``mtmsa.inpaint`` decodes it) and kept in the session; the editor only
shows it and sends back its two layers, whose painted (opaque) pixels are the hole and the strokes. The
download is that image with its hole filled, written as PNG on the server, so its known pixels are the
file's, byte for byte, whatever the browser does when it draws or exports the canvas.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import gradio as gr
import numpy as np

from mtmsa.app.engine import Engine, Fill, ServerBusy, png_bytes
from mtmsa.data.io import read_rgb
from mtmsa.utils.cli import USER_ERRORS, user_error_message
from mtmsa.visualization.attention_maps import temperature_plot
from mtmsa.visualization.figures import figure_image

LAYERS = ("hole", "sketch")
"""The editor's layers, in order: paint the hole on the first, draw sketch lines on the second."""
HOLE_COLOUR = "#ff3366"
SKETCH_COLOUR = "#ffffff"
CANVAS_SIZE = (540, 480)
"""The editor's view (width, height) in screen pixels; the canvas itself has the image's size."""
PAINTED_ALPHA = 128
"""A layer pixel counts as painted when its alpha is at least this (strokes are opaque; their anti-aliased
rims are not)."""

INSTRUCTIONS = """\
### mtmsa: sketch-guided inpainting
1. **Open** an image (drop a file, or click an example).
2. On the layer **hole** (layer menu at the bottom of the editor), **paint over what should go**.
3. Optionally switch to the layer **sketch**, pick white and a small brush size, and **draw lines of what
   should appear** (white on black, as the model takes them). Eraser and undo are in the editor's toolbar.
4. **Fill**, compare before and after with the slider, **download** the PNG, or **keep editing** the result.
"""


KEEP_FILES_SECONDS = 3600
"""The page's PNG files (images shown, results) older than this are deleted when an image is opened."""


@dataclass(frozen=True, eq=False)
class Session:
    """What the server keeps for one browser tab: the image being edited (its pixels, and a PNG of them that the
    page shows), and the last fill with its PNG."""

    image: np.ndarray
    name: str
    picture: Path
    fill: Fill | None = None
    result: Path | None = None
    fills: int = 0


class PageError(Exception):
    """A problem with what the page sent (shown to the user as one message)."""


def painted(layer: np.ndarray | None, shape: tuple[int, int], name: str) -> np.ndarray:
    """(H, W) bool: where a layer (RGBA from the editor) is painted; all False for a missing layer."""
    if layer is None:
        return np.zeros(shape, bool)
    if layer.shape[:2] != shape:
        raise PageError(
            f"the {name} layer is {layer.shape[1]}x{layer.shape[0]} but the image is {shape[1]}x{shape[0]}; "
            "open the image again"
        )
    alpha = layer[..., 3] if layer.ndim == 3 and layer.shape[2] == 4 else np.full(shape, 255, np.uint8)
    return alpha >= PAINTED_ALPHA


def editor_layers(value: dict | None, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(hole, strokes) from the editor's value: the painted pixels of its ``hole`` and ``sketch`` layers."""
    layers = list((value or {}).get("layers") or [])
    layers += [None] * (len(LAYERS) - len(layers))
    hole, strokes = (painted(layer, shape, name) for layer, name in zip(layers, LAYERS, strict=False))
    return hole, strokes


def editor_value(picture: Path) -> dict:
    """The editor showing the image file ``picture`` with empty layers."""
    return {"background": str(picture), "layers": [], "composite": None}


def write_png(pixels: np.ndarray, folder: Path, name: str) -> Path:
    """``pixels`` as ``folder/<new sub-folder>/name.png`` (a folder each, so the name the user downloads is kept)."""
    path = folder / uuid.uuid4().hex / f"{name}.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(png_bytes(pixels))
    return path


def remove_old_files(folder: Path, seconds: float = KEEP_FILES_SECONDS) -> None:
    """Delete the sub-folders of ``folder`` not modified for ``seconds``."""
    limit = time.time() - seconds
    for child in folder.glob("*"):
        with contextlib.suppress(OSError):
            if child.stat().st_mtime < limit:
                shutil.rmtree(child, ignore_errors=True)


def build_page(
    engine: Engine, examples: list[Path], max_pixels: int, downloads: Path | None = None
) -> gr.Blocks:
    """The Blocks of the editor page. ``downloads``: where result PNGs are written (a temporary folder)."""
    downloads = Path(downloads or tempfile.mkdtemp(prefix="mtmsa-app-"))
    trained_size = engine.trained.image_size

    def open_image(path: str | None, shown: int):
        if not path:
            return None, shown + 1, None, gr.update(value=None, interactive=False), None, "Open an image."
        try:
            image = read_rgb(path, max_pixels)
        except USER_ERRORS as error:
            raise gr.Error(user_error_message(error), print_exception=False) from None
        height, width = image.shape[:2]
        remove_old_files(downloads)
        session = Session(image, Path(path).stem, write_png(image, downloads, Path(path).stem))
        status = f"Opened {Path(path).name}, {width}x{height}. Paint the hole on the layer **hole**."
        return session, shown + 1, None, gr.update(value=None, interactive=False), None, status

    def fill(value: dict | None, session: Session | None):
        if session is None:
            raise gr.Error("Open an image first (drop a file, or click an example).", print_exception=False)
        try:
            hole, strokes = editor_layers(value, session.image.shape[:2])
        except PageError as error:
            raise gr.Error(str(error), print_exception=False) from None
        if not hole.any():
            raise gr.Error(
                "The layer 'hole' is empty: choose it in the layer menu and paint over what should go.",
                print_exception=False,
            )
        try:
            result = engine.run(engine.fill, session.image, hole, strokes if strokes.any() else None)
        except ServerBusy as error:
            raise gr.Error(str(error), print_exception=False) from None
        path = write_png(result.pixels, downloads, f"{session.name}-inpainted")
        session = replace(session, fill=result, result=path, fills=session.fills + 1)
        status = (
            f"Filled {int(hole.sum()):,} hole pixels{' with your sketch' if strokes.any() else ''} in "
            f"{result.seconds * 1000:.0f} ms (model at {trained_size} px; fill {session.fills} of this image). "
            "Download the PNG, or keep editing."
        )
        download = gr.update(value=str(path), interactive=True)
        return session, (str(session.picture), str(path)), download, None, status

    def keep_editing(session: Session | None, shown: int):
        if session is None or session.fill is None:
            raise gr.Error("Fill first: there is no result to keep editing.", print_exception=False)
        session = Session(session.fill.pixels, f"{session.name}-edited", session.result)
        return session, shown + 1, "Editing the result: paint the next hole."

    def clear_layers(session: Session | None, shown: int):
        return shown + 1, "Open an image." if session is None else "Layers cleared."

    def show_temperatures(session: Session | None):
        if session is None or session.fill is None:
            raise gr.Error("Fill first: the maps are those of the last fill.", print_exception=False)
        result = session.fill
        if result.temperature is None or result.seen is None:
            raise gr.Error(
                "This model's attention has no temperatures (model.attention is not mtmsa).",
                print_exception=False,
            )
        figure = temperature_plot(result.seen[None], result.temperature[None], result.temperature_range)
        picture = figure_image(figure).permute(1, 2, 0).mul(255).round().byte().numpy()
        low, high = result.temperature.min().item(), result.temperature.max().item()
        return picture, f"Temperatures of the last fill: {low:.3g} to {high:.3g}, per head and position."

    def new_editor(value: dict | None) -> gr.ImageEditor:
        return gr.ImageEditor(
            value=value,
            label="Input: paint the hole (layer 'hole'), draw lines (layer 'sketch')",
            sources=(),
            type="numpy",
            image_mode="RGBA",
            format="png",
            layers=gr.LayerOptions(allow_additional_layers=False, layers=list(LAYERS)),
            brush=gr.Brush(
                colors=[HOLE_COLOUR, SKETCH_COLOUR], default_color=HOLE_COLOUR, color_mode="fixed"
            ),
            eraser=gr.Eraser(),
            transforms=(),
            canvas_size=CANVAS_SIZE,
            height=CANVAS_SIZE[1] + 80,
            interactive=True,
            buttons=["fullscreen"],
            elem_id="editor",
        )

    # Gradio's copies of uploads and results older than an hour are deleted every hour.
    with gr.Blocks(title="mtmsa editor", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        session = gr.State(None)
        shown = gr.State(0)  # counts the images sent to the editor: each one re-makes it
        gr.Markdown(INSTRUCTIONS)
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=240):
                opener = gr.File(
                    label="Open an image", file_types=["image"], type="filepath", elem_id="opener"
                )
                gr.Examples(
                    examples=[[str(p)] for p in examples],
                    inputs=opener,
                    example_labels=[p.stem for p in examples],
                    label="Examples (one click)",
                    elem_id="examples",
                )
                fill_button = gr.Button("Fill", variant="primary", elem_id="fill")
                clear_button = gr.Button("Clear layers", size="sm", elem_id="clear")
                keep_button = gr.Button("Keep editing the result", size="sm", elem_id="keep")
                download = gr.DownloadButton("Download PNG", interactive=False, size="sm", elem_id="download")
                status = gr.Markdown("Open an image.", elem_id="status")
            with gr.Column(scale=2, min_width=400):  # a column each: the editor's canvas keeps its width

                @gr.render(inputs=[session], triggers=[page.load, shown.change])
                def show_editor(current: Session | None):
                    # A new editor for each image shown: Gradio 6.31's editor can hang when its image is
                    # replaced after strokes on a second layer, and one made with its image never does.
                    editor = new_editor(None if current is None else editor_value(current.picture))
                    fill_button.click(fill, [editor, session], filled, concurrency_limit=1)

            with gr.Column(scale=2, min_width=400):
                result = gr.ImageSlider(
                    label="Result: before | after (drag the slider)",
                    type="filepath",
                    format="png",
                    interactive=False,
                    height=CANVAS_SIZE[1] + 80,
                    max_height=CANVAS_SIZE[1] + 80,
                    elem_id="result",
                )
        with gr.Accordion("Temperature maps of the last fill", open=False):
            temperature_button = gr.Button("Show temperature maps", size="sm", elem_id="show-temperature")
            temperatures = gr.Image(label="temperature per head", interactive=False, elem_id="temperature")

        opener.change(open_image, [opener, shown], [session, shown, result, download, temperatures, status])
        filled = [session, result, download, temperatures, status]
        keep_button.click(keep_editing, [session, shown], [session, shown, status])
        clear_button.click(clear_layers, [session, shown], [shown, status])
        temperature_button.click(show_temperatures, session, [temperatures, status], concurrency_limit=1)
    return page
