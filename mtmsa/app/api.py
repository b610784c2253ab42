"""``POST /api/inpaint``: multipart ``image``, ``mask`` and optional ``sketch`` files in, a PNG of the image's size
out, computed as ``mtmsa.inpaint`` computes it.

Form fields: ``image``, ``mask`` (white = hole) and optional ``sketch`` are files; ``mask_convention``
(``hole-white``, default, or ``hole-black``) and ``sketch_convention`` (``auto``, default, ``black-on-white``
or ``white-on-black``) are text, as the command's options. The uploads are written to a private temporary
folder under their own file names and read by :func:`mtmsa.inference.jobs.load_inputs`, the command's reader,
so the pixels of the result and every message are the command's: a bad input gets a 4xx answer
``{"error": "<the line mtmsa.inpaint prints after 'error: '>"}``, the folder left out of the file names.

Bounds: a request body above ``max_bytes`` gets 413 (from its Content-Length, or as soon as that many bytes
have arrived), an image above ``max_pixels`` gets 400 from its header before any pixel is decoded, a
request that is not multipart/form-data gets 415, and when the engine's queue is full the answer is 503
with Retry-After (:class:`~mtmsa.app.engine.Engine`): decoding, filling and encoding all run on its single
worker, one request at a time.
"""

from __future__ import annotations

import asyncio
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from mtmsa.app.engine import Engine, ServerBusy, png_bytes
from mtmsa.inference.jobs import MASK_CONVENTIONS, SKETCH_CONVENTIONS, Job, load_inputs
from mtmsa.utils.cli import USER_ERRORS, user_error_message

log = logging.getLogger("mtmsa.app")

FILE_FIELDS = ("image", "mask", "sketch")
TEXT_FIELDS = {"mask_convention": MASK_CONVENTIONS, "sketch_convention": SKETCH_CONVENTIONS}
USAGE = "send multipart/form-data with the files image and mask (white = hole) and optionally sketch"
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._ +()-]")


class RequestError(Exception):
    """A request the API refuses: HTTP ``status`` and the one-line ``message`` of its JSON answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Upload:
    field: str
    name: str
    data: bytes


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def safe_file_name(name: str | None, field: str) -> str:
    """A client's file name usable inside our folder (no folders, no odd characters), else the field's name."""
    name = _UNSAFE_NAME_CHARACTERS.sub("_", Path((name or "").replace("\\", "/")).name)[:100].strip()
    return name if name.strip(".") else field


def _limited(receive: Callable[[], Awaitable[dict]], max_bytes: int) -> Callable[[], Awaitable[dict]]:
    """An ASGI receive that raises _BodyTooLarge once more than ``max_bytes`` of body have arrived."""
    received = 0

    async def limited_receive() -> dict:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > max_bytes:
            raise _BodyTooLarge
        return message

    return limited_receive


async def read_form(request: Request, max_bytes: int) -> tuple[dict[str, Upload], dict[str, str]]:
    """The request's files by field and its text options, checked; RequestError for anything else."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise RequestError(415, f"content type {content_type or '(none)'!r} is not accepted; {USAGE}")
    too_large = RequestError(
        413, f"the request is larger than the limit of {max_bytes:,} bytes; send smaller files"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    limited = Request(request.scope, _limited(request.receive, max_bytes))
    try:
        form = await limited.form(max_files=len(FILE_FIELDS), max_fields=len(TEXT_FIELDS), max_part_size=1024)
    except _BodyTooLarge:
        raise too_large from None
    except Exception as error:  # starlette's HTTPException / MultiPartException, python-multipart's errors
        detail = getattr(error, "detail", None) or getattr(error, "message", None) or str(error)
        raise RequestError(400, f"the multipart body cannot be read ({detail}); {USAGE}") from error
    try:
        files: dict[str, Upload] = {}
        options: dict[str, str] = {}
        for field, value in form.multi_items():
            if field in files or field in options:
                raise RequestError(400, f"field {field!r} is given twice; give it once")
            if field in FILE_FIELDS:
                if not isinstance(value, UploadFile):
                    raise RequestError(400, f"field {field!r} must be a file upload, not text; {USAGE}")
                files[field] = Upload(field, safe_file_name(value.filename, field), await value.read())
            elif field in TEXT_FIELDS:
                if not isinstance(value, str) or value not in TEXT_FIELDS[field]:
                    raise RequestError(
                        400,
                        f"{field} {value!r} is not one of {', '.join(TEXT_FIELDS[field])}; give one of them",
                    )
                options[field] = value
            else:
                known = ", ".join((*FILE_FIELDS, *TEXT_FIELDS))
                raise RequestError(400, f"unknown field {field!r}; the fields are {known}")
    finally:
        await form.close()
    for field in ("image", "mask"):
        if field not in files:
            raise RequestError(400, f"the request has no {field} file; {USAGE}")
    return files, options


def inpaint_uploads(
    engine: Engine, files: dict[str, Upload], options: dict[str, str], max_pixels: int
) -> bytes:
    """The PNG of ``mtmsa.inpaint`` for uploaded files (run on the engine's worker). RequestError(400) for a
    file the command would refuse, with the command's message."""
    with tempfile.TemporaryDirectory(prefix="mtmsa-api-") as folder:
        paths: dict[str, Path] = {}
        for field, upload in files.items():
            paths[field] = Path(folder, field, upload.name)
            paths[field].parent.mkdir()
            paths[field].write_bytes(upload.data)
        job = Job(paths["image"], paths["mask"], paths.get("sketch"), Path(folder, "result.png"))
        try:
            image, hole, strokes = load_inputs(
                job,
                mask_convention=options.get("mask_convention", "hole-white"),
                sketch_convention=options.get("sketch_convention", "auto"),
                max_pixels=max_pixels,
            )
        except USER_ERRORS as error:
            message = user_error_message(error)
            for field in files:
                message = message.replace(f"{Path(folder, field)}/", "")
            raise RequestError(400, message) from None
        return png_bytes(engine.fill(image, hole, strokes).pixels)


def api_router(engine: Engine, max_pixels: int, max_bytes: int) -> APIRouter:
    """The API's routes, for an app that already holds ``engine``."""
    router = APIRouter()

    @router.post("/api/inpaint", response_class=Response, summary="Fill the hole of an image")
    async def inpaint(request: Request) -> Response:
        try:
            files, options = await read_form(request, max_bytes)
            future = engine.submit(inpaint_uploads, engine, files, options, max_pixels)
            png = await asyncio.wrap_future(future)
        except RequestError as error:
            return error_response(error.status, error.message)
        except ServerBusy as error:
            return error_response(503, str(error), {"Retry-After": "2"})
        except (
            Exception
        ) as error:  # a bug or a broken model, not the request: one line, the traceback in the log
            log.exception("POST /api/inpaint failed")
            return error_response(
                500, f"internal error ({type(error).__name__}: {error}); see the server's log"
            )
        name = Path(files["image"].name).stem or "image"
        return Response(
            png,
            media_type="image/png",
            headers={"Content-Disposition": f'inline; filename="{name}-inpainted.png"'},
        )

    return router
