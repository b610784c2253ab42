"""``mtmsa-app --checkpoint C`` (= ``python -m mtmsa.app``): the editor page and ``POST /api/inpaint`` from one
local server.

One FastAPI app: the API's route (:mod:`mtmsa.app.api`) first, the Gradio page (:mod:`mtmsa.app.page`)
mounted at ``/`` after it. The generator is loaded once, weights-only, before the server starts (a bad
checkpoint ends the command with one ``error:`` line, as ``mtmsa.inpaint`` does), and every fill, from either
side, runs on the one worker of :class:`~mtmsa.app.engine.Engine`; Gradio's queue orders the page's fills
(one at a time per event, at most ``--queue-size`` waiting), the engine's bounded queue the API's.
Nothing is fetched from the network: no analytics, fonts from the system.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import cv2.utils.logging
from PIL import Image

from mtmsa.app.engine import Engine
from mtmsa.data.io import max_pixels_limit
from mtmsa.data.sample import HOLDOUT_PHOTOS, SAMPLE_PHOTOS
from mtmsa.inference.pretrained import load_pretrained
from mtmsa.utils.cli import exit_on_user_error, program_name, resolve_device
from mtmsa.utils.errors import UserInputError

if TYPE_CHECKING:  # the app extra's packages are imported where they are used: a missing one gets a message
    from fastapi import FastAPI

log = logging.getLogger("mtmsa.app")

DEFAULT_MAX_PIXELS = 25_000_000
"""Images (and masks, sketches) whose header announces more pixels are refused: 25 MP, e.g. 6000x4000."""
DEFAULT_MAX_UPLOAD_MB = 32
DEFAULT_QUEUE_SIZE = 16
EXAMPLE_PHOTOS = {
    "chelsea": SAMPLE_PHOTOS["chelsea"],
    "coffee": SAMPLE_PHOTOS["coffee"],
    "astronaut": SAMPLE_PHOTOS["astronaut"],
    "grace_hopper": HOLDOUT_PHOTOS["grace_hopper"],
}
"""The editor's one-click examples: photographs that ship inside scikit-image's and matplotlib's wheels."""


def require_app_extra() -> None:
    """Import the app extra's packages (Gradio without its analytics); UserInputError naming the fix if missing."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: no calls home
    try:
        import gradio  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UserInputError(
            f"the editor needs the app extra ({error.name} is not installed); pip install 'mtmsa[app]'"
        ) from error


def write_examples(folder: Path) -> list[Path]:
    """The example photos as PNG files in ``folder`` (made once)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, load in EXAMPLE_PHOTOS.items():
        path = folder / f"{name}.png"
        if not path.is_file():
            Image.fromarray(load()).save(path)
        paths.append(path)
    return paths


def build_app(
    engine: Engine,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    workdir: Path | None = None,
) -> FastAPI:
    """The server's app: ``POST /api/inpaint`` and the editor page at ``/``, sharing ``engine``.
    ``workdir``: where the example photos and the page's downloads are written (a new temporary folder)."""
    require_app_extra()
    import gradio as gr
    from fastapi import FastAPI

    from mtmsa.app.api import api_router
    from mtmsa.app.page import build_page

    workdir = Path(workdir or tempfile.mkdtemp(prefix="mtmsa-app-"))
    examples = write_examples(workdir / "examples")
    app = FastAPI(title="mtmsa editor", docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.include_router(api_router(engine, max_pixels, max_bytes))

    @app.get("/api/health", summary="Whether the server is up, and its model")
    def health() -> dict:
        return {
            "status": "ok",
            "trained_size": engine.trained.image_size,
            "device": str(engine.device),
            "waiting": engine.waiting,
        }

    page = build_page(engine, examples, max_pixels, workdir / "downloads")
    page.queue(default_concurrency_limit=1, max_size=queue_size)
    theme = gr.themes.Default(
        font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )  # system fonts: the default theme would fetch web fonts
    return gr.mount_gradio_app(
        app,
        page,
        path="/",
        allowed_paths=[str(workdir)],
        max_file_size=max_bytes,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        theme=theme,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("mtmsa.app"),
        description="Serve the sketch-guided editor (a browser page) and POST /api/inpaint (multipart image, "
        "mask and optional sketch -> PNG) for a trained mtmsa checkpoint, from one local server.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        help="a .ckpt written by mtmsa.train, or a folder written by mtmsa-export --format safetensors",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=7860, help="port to listen on (default 7860; 0: any free port)"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images whose header announces more pixels than this (default {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=int,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"refuse request bodies and uploads larger than this many MiB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    parser.add_argument(
        "--queue-size",
        type=int,
        default=DEFAULT_QUEUE_SIZE,
        help=f"fills that may wait or run at once; more get 503 (default {DEFAULT_QUEUE_SIZE})",
    )
    return parser


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; UserInputError naming the option when it cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        raise UserInputError(
            f"cannot listen on {host}:{port} ({error.strerror or error}); choose another --port or --host"
        ) from error
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # One line on stderr per start-up error: no OpenCV chatter, no second copy from logging's last resort.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if not logging.getLogger("mtmsa").hasHandlers():
        logging.getLogger("mtmsa").addHandler(logging.NullHandler())
    with exit_on_user_error():
        for option, value in (("--max-upload-mb", args.max_upload_mb), ("--queue-size", args.queue_size)):
            if value < 1:
                raise UserInputError(f"{option} must be at least 1, got {value}")
        max_pixels = max_pixels_limit(args.max_pixels)
        device = resolve_device(args.device, "--device")
        trained = load_pretrained(args.checkpoint, device)
        require_app_extra()
        sock = bind(args.host, args.port)
    log.addHandler(logging.StreamHandler())  # requests that fail on the server's side, with their traceback
    engine = Engine(trained, device, max_waiting=args.queue_size)
    app = build_app(engine, max_pixels, args.max_upload_mb << 20, args.queue_size)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(
        f"mtmsa editor: http://{shown}:{port}/  (API: POST http://{shown}:{port}/api/inpaint; "
        f"model {args.checkpoint}, trained at {trained.image_size} px, on {device}; Ctrl+C stops)",
        file=sys.stderr,
        flush=True,
    )
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5))
    try:
        server.run(sockets=[sock])
    finally:
        engine.close()
