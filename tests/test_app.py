"""The editor's server without a browser: POST /api/inpaint gives mtmsa.inpaint's result and messages, refuses
hostile requests with a 4xx and one line, queues concurrent requests; the engine, the page's layer reading, and
the mtmsa.app command. The browser tests are in test_editor_browser.py."""

from __future__ import annotations

import io
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data as skimage_data

pytest.importorskip("gradio", reason="the editor needs the app extra: pip install -e '.[app]'")

from mtmsa.app.engine import Engine, ServerBusy, png_bytes  # noqa: E402
from mtmsa.app.page import PageError, editor_layers  # noqa: E402
from mtmsa.app.server import build_app  # noqa: E402
from mtmsa.app.server import main as app_main  # noqa: E402
from mtmsa.data.io import read_rgb  # noqa: E402
from mtmsa.inference.checkpoints import load_generator  # noqa: E402
from mtmsa.inference.jobs import read_mask  # noqa: E402
from tests.helpers.app_server import Command, post_inpaint, serve_in_thread  # noqa: E402
from tests.helpers.bad_files import png_claiming_size  # noqa: E402
from tests.helpers.runs import CHECKPOINT_V0_1, inpaint_in_process  # noqa: E402

MAX_PIXELS = 1_000_000
MAX_BYTES = 1 << 20
HEIGHT, WIDTH = 48, 64  # larger than the checkpoint's 32 px: filled in a window around the hole


@pytest.fixture(scope="module")
def engine():
    engine = Engine(load_generator(CHECKPOINT_V0_1), "cpu", max_waiting=16)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory) -> str:
    app = build_app(engine, MAX_PIXELS, MAX_BYTES, queue_size=16, workdir=tmp_path_factory.mktemp("app"))
    with serve_in_thread(app) as url:
        yield url


def photo(seed: int = 0) -> np.ndarray:
    """A (HEIGHT, WIDTH) crop of the astronaut photo, different for each seed."""
    top, left = divmod(seed * 37, 400)
    return np.ascontiguousarray(skimage_data.astronaut()[top : top + HEIGHT, left : left + WIDTH])


def box(shape: tuple[int, int], top: int, left: int, height: int, width: int) -> np.ndarray:
    hole = np.zeros(shape, np.uint8)
    hole[top : top + height, left : left + width] = 255
    return hole


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("api_files")
    rng = np.random.default_rng(0)
    Image.fromarray(photo()).save(folder / "image.png")
    Image.fromarray(photo()).save(folder / "image.jpg", quality=90)
    Image.fromarray(box((HEIGHT, WIDTH), 10, 20, 16, 14)).save(folder / "hole.png")
    Image.fromarray(255 - box((HEIGHT, WIDTH), 10, 20, 16, 14)).save(folder / "hole_black.png")
    lines = np.zeros((HEIGHT, WIDTH), np.uint8)
    lines[18, 15:40] = 255
    Image.fromarray(lines).save(folder / "sketch.png")
    Image.fromarray(box((HEIGHT // 2, WIDTH), 5, 5, 8, 8)).save(folder / "hole_small.png")
    Image.fromarray(lines[: HEIGHT // 2]).save(folder / "sketch_small.png")
    Image.fromarray(np.zeros((HEIGHT, WIDTH), np.uint8)).save(folder / "hole_empty.png")
    Image.fromarray(np.full((HEIGHT, WIDTH), 255, np.uint8)).save(folder / "all_white.png")
    (folder / "noise.png").write_bytes(rng.bytes(3000))
    (folder / "claims_20000px.png").write_bytes(png_claiming_size(20000, 20000))
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.png").write_text("a note saved with the wrong name\n")
    data = (folder / "image.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    return folder


def command_args(
    files: Path, image: str, mask: str, sketch: str | None, fields: dict, out: Path
) -> list[str]:
    args = ["--checkpoint", str(CHECKPOINT_V0_1), "--device", "cpu", "--max-pixels", str(MAX_PIXELS)]
    args += ["--image", str(files / image), "--mask", str(files / mask), "--out", str(out)]
    if sketch:
        args += ["--sketch", str(files / sketch)]
    for field, value in fields.items():
        args += [f"--{field.replace('_', '-')}", value]
    return args


def upload(files: Path, image: str, mask: str, sketch: str | None) -> dict[str, Path]:
    return {"image": files / image, "mask": files / mask, **({"sketch": files / sketch} if sketch else {})}


def assert_one_line_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert "\n" not in message and "Traceback" not in message and message
    return message


GOOD_CASES = {
    "hole": ("image.png", "hole.png", None, {}),
    "hole and sketch": ("image.png", "hole.png", "sketch.png", {}),
    "hole-black mask": ("image.png", "hole_black.png", None, {"mask_convention": "hole-black"}),
    "JPEG image, sketch black-on-white read as white-on-black": (
        "image.jpg",
        "hole.png",
        "sketch.png",
        {"sketch_convention": "white-on-black"},
    ),
}


@pytest.mark.parametrize("case", GOOD_CASES)
def test_api_answers_the_commands_result_pixel_for_pixel(case, server, files, tmp_path, capsys):
    image, mask, sketch, fields = GOOD_CASES[case]
    out = tmp_path / "command.png"
    code, stderr = inpaint_in_process(command_args(files, image, mask, sketch, fields, out), capsys)
    assert code == 0, stderr
    response = post_inpaint(server, upload(files, image, mask, sketch), fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    result, written = Image.open(io.BytesIO(response.content)), Image.open(out)
    assert result.format == "PNG" and result.mode == written.mode == "RGB" and result.size == (WIDTH, HEIGHT)
    pixels, decoded = np.asarray(result), read_rgb(files / image)
    assert np.array_equal(pixels, np.asarray(written))  # the command's result, pixel for pixel
    hole = read_mask(files / mask, fields.get("mask_convention", "hole-white"))
    assert hole.sum() == 16 * 14
    assert np.array_equal(pixels[~hole], decoded[~hole])  # known pixels: the input's, byte for byte
    assert (pixels[hole] != decoded[hole]).any(axis=-1).mean() > 0.5  # the hole was filled


def test_a_sketch_changes_the_fill(server, files):
    plain = post_inpaint(server, upload(files, "image.png", "hole.png", None))
    guided = post_inpaint(server, upload(files, "image.png", "hole.png", "sketch.png"))
    assert plain.status_code == guided.status_code == 200
    assert plain.content != guided.content


# fmt: off
BAD_FILE_CASES = {
    "random bytes as image": ("noise.png", "hole.png", None, {}, "not a recognised image file"),
    "text as image": ("notes.png", "hole.png", None, {}, "not a recognised image file"),
    "0-byte image": ("empty.png", "hole.png", None, {}, "the file is empty (0 bytes)"),
    "truncated image": ("truncated.png", "hole.png", None, {}, "corrupt or truncated"),
    "huge dimensions": ("claims_20000px.png", "hole.png", None, {}, "if the file is trusted, raise the limit"),
    "random bytes as mask": ("image.png", "noise.png", None, {}, "cannot read image noise.png"),
    "mask of another size": ("image.png", "hole_small.png", None, {}, "is 64x24 but image image.png is 64x48"),
    "sketch of another size": ("image.png", "hole.png", "sketch_small.png", {}, "sketch sketch_small.png is 64x24"),
    "empty mask": ("image.png", "hole_empty.png", None, {}, "marks no hole pixel (hole-white: white is the hole)"),
    "empty mask, hole-black": ("image.png", "all_white.png", None, {"mask_convention": "hole-black"},
                               "marks no hole pixel (hole-black: black is the hole)"),
}
# fmt: on


@pytest.mark.parametrize("case", BAD_FILE_CASES)
def test_bad_files_get_400_with_the_commands_message(case, server, files, tmp_path, capsys):
    image, mask, sketch, fields, expected = BAD_FILE_CASES[case]
    code, stderr = inpaint_in_process(
        command_args(files, image, mask, sketch, fields, tmp_path / "out.png"), capsys
    )
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    message = assert_one_line_error(post_inpaint(server, upload(files, image, mask, sketch), fields), 400)
    assert expected in message
    assert f"error: {message}" == lines[0].replace(f"{files}/", "")  # the command's line, without our folder
    assert not (tmp_path / "out.png").exists()


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, file name or None for text, content) parts, and its content type."""
    boundary = "mtmsa-test-boundary"
    body = b""
    for field, name, content in parts:
        filename = f'; filename="{name}"' if name is not None else ""
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"{filename}\r\n\r\n'.encode()
        body += content + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def refused_requests(files: Path) -> dict[str, tuple[dict, int, str]]:
    """httpx.post keyword arguments of requests the API refuses: (kwargs, status, part of the message)."""
    image, hole = (files / "image.png").read_bytes(), (files / "hole.png").read_bytes()
    big = np.random.default_rng(1).integers(0, 256, (700, 700, 3), np.uint8)  # a 1.4 MB PNG: over 1 MiB
    big_png = png_bytes(big)

    def chunks(data: bytes):
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    body, content_type = multipart([("image", "big.png", big_png), ("mask", "hole.png", hole)])
    return {
        "JSON body": ({"json": {"image": "x"}}, 415, "content type 'application/json' is not accepted"),
        "form-urlencoded": ({"data": {"image": "x"}}, 415, "not accepted; send multipart/form-data"),
        "no content type": ({"content": b"\x89PNG"}, 415, "content type '(none)' is not accepted"),
        "no mask": ({"files": {"image": ("a.png", image)}}, 400, "the request has no mask file"),
        "no image": ({"files": {"mask": ("a.png", hole)}}, 400, "the request has no image file"),
        "image as text": (
            {"files": {"mask": ("m.png", hole)}, "data": {"image": "photo.png"}},
            400,
            "field 'image' must be a file upload",
        ),
        "unknown field": (
            {"files": {"image": ("a.png", image), "masks": ("m.png", hole)}},
            400,
            "unknown field 'masks'",
        ),
        "a field twice": (
            {"files": [("image", ("a.png", image)), ("image", ("b.png", image)), ("mask", ("m.png", hole))]},
            400,
            "field 'image' is given twice",
        ),
        "unknown convention": (
            {
                "files": {"image": ("a.png", image), "mask": ("m.png", hole)},
                "data": {"mask_convention": "white"},
            },
            400,
            "mask_convention 'white' is not one of hole-white, hole-black",
        ),
        "multipart without boundary": (
            {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
            400,
            "the multipart body cannot be read",
        ),
        "garbage multipart": (
            {"content": b"\x00\xff" * 100, "headers": {"content-type": "multipart/form-data; boundary=zz"}},
            400,
            "the multipart body cannot be read (Invalid multipart data.)",
        ),
        "too many files": (
            {
                "files": [("image", ("a.png", image)), ("mask", ("m.png", hole))] * 2
                + [("sketch", ("s", hole))]
            },
            400,
            "the multipart body cannot be read (Too many files",
        ),
        "body over the byte limit": (
            {"files": {"image": ("big.png", big_png), "mask": ("m.png", hole)}},
            413,
            "larger than the limit of 1,048,576 bytes",
        ),
        "body over the byte limit, chunked without a length": (
            {"content": chunks(body), "headers": {"content-type": content_type}},
            413,
            "larger than the limit of 1,048,576 bytes",
        ),
    }


def test_hostile_requests_get_a_4xx_and_one_line(server, files):
    cases = refused_requests(files)
    for case, (kwargs, status, expected) in cases.items():
        response = httpx.post(f"{server}api/inpaint", timeout=60, **kwargs)
        message = assert_one_line_error(response, status)
        assert expected in message, (case, message)
    assert len(cases) == 14
    assert httpx.get(f"{server}api/health").json()["status"] == "ok"  # still serving


def test_uploaded_file_names_cannot_leave_the_private_folder(server, files):
    noise = (files / "noise.png").read_bytes()
    hole = (files / "hole.png").read_bytes()
    for name, shown in [("../../../tmp/evil.png", "evil.png"), ("..", "image"), ("a\x00b.png", "a_00b.png")]:
        response = post_inpaint(server, {"image": (name, noise), "mask": ("hole.png", hole)})
        message = assert_one_line_error(response, 400)
        assert message.startswith(f"cannot read image {shown}: not a recognised image file")
    assert not Path("/tmp/evil.png").exists()


class CountingInpainter:
    """Wraps an Inpainter and records the most calls that ran at the same time."""

    def __init__(self, inpainter):
        self.inpainter = inpainter
        self.running = self.most = self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, *args):
        with self.lock:
            self.running += 1
            self.calls += 1
            self.most = max(self.most, self.running)
        try:
            return self.inpainter(*args)
        finally:
            with self.lock:
                self.running -= 1


def test_eight_concurrent_requests_are_queued_and_all_answered(server, engine, tmp_path):
    requests = []
    for seed in range(8):
        image, hole = tmp_path / f"image{seed}.png", tmp_path / f"hole{seed}.png"
        Image.fromarray(photo(seed)).save(image)
        Image.fromarray(box((HEIGHT, WIDTH), 4 + seed, 6 + 3 * seed, 12, 10)).save(hole)
        requests.append({"image": image, "mask": hole})
    expected = [post_inpaint(server, files).content for files in requests]  # one at a time
    counting = CountingInpainter(engine.inpainter)
    engine.inpainter = counting
    try:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda files: post_inpaint(server, files), requests))
    finally:
        engine.inpainter = counting.inpainter
    assert [r.status_code for r in responses] == [200] * 8
    assert [r.content for r in responses] == expected  # each request got its own image's result
    assert len(set(expected)) == 8
    assert counting.calls == 8 and counting.most == 1  # queued: never two fills at once
    for files, response in zip(requests, responses, strict=True):
        hole = read_mask(files["mask"])
        result = np.asarray(Image.open(io.BytesIO(response.content)))
        assert np.array_equal(result[~hole], read_rgb(files["image"])[~hole])


def test_a_full_queue_answers_503_and_the_next_request_gets_through(server, engine, files):
    release = threading.Event()
    limit = engine.max_waiting
    engine.max_waiting = 2
    blocker = engine.submit(release.wait, 60)  # occupies the worker
    try:
        with ThreadPoolExecutor(1) as pool:
            queued = pool.submit(post_inpaint, server, upload(files, "image.png", "hole.png", None))
            while engine.waiting < 2:  # the queued request holds the second place
                threading.Event().wait(0.02)
            refused = post_inpaint(server, upload(files, "image.png", "hole.png", None))
            message = assert_one_line_error(refused, 503)
            assert "the server is busy: 2 fills are queued or running (at most 2)" in message
            assert refused.headers["retry-after"] == "2"
            with pytest.raises(ServerBusy):
                engine.submit(print)
            release.set()
            assert queued.result(timeout=60).status_code == 200
    finally:
        release.set()
        blocker.result(timeout=60)
        engine.max_waiting = limit
    assert engine.waiting == 0


def test_engine_keeps_the_temperature_maps_of_the_last_fill(engine):
    image = photo(1)
    hole = box((HEIGHT, WIDTH), 20, 20, 10, 12).astype(bool)
    fill = engine.run(engine.fill, image, hole, None)
    assert np.array_equal(fill.pixels[~hole], image[~hole])
    heads = engine.trained.attention_config["heads"]
    assert fill.temperature.shape[0] == heads == 4
    low, high = fill.temperature_range
    assert (low, high) == (0.01, 1.0)
    assert low <= fill.temperature.min() and fill.temperature.max() <= high
    assert fill.seen.shape[0] == 3 and max(fill.seen.shape[1:]) == 32  # the 32 px window the model saw
    assert 0 < fill.seconds < 10


def test_page_reads_the_hole_and_the_sketch_from_the_editors_layers():
    shape = (6, 8)
    hole_layer = np.zeros((*shape, 4), np.uint8)
    hole_layer[1:3, 2:5] = (255, 51, 102, 255)
    hole_layer[4, 4, 3] = 40  # an anti-aliased rim: not painted
    sketch_layer = np.zeros((*shape, 4), np.uint8)
    sketch_layer[2, :, :] = 255
    hole, strokes = editor_layers({"layers": [hole_layer, sketch_layer]}, shape)
    assert hole.sum() == 6 and hole[1:3, 2:5].all() and not hole[4, 4]
    assert strokes.sum() == 8 and strokes[2].all()
    hole, strokes = editor_layers({"layers": [hole_layer]}, shape)  # the sketch layer was not sent
    assert hole.sum() == 6 and not strokes.any()
    hole, strokes = editor_layers(None, shape)
    assert not hole.any() and not strokes.any()
    with pytest.raises(PageError, match="the hole layer is 8x5 but the image is 8x6; open the image again"):
        editor_layers({"layers": [hole_layer[:5]]}, shape)


def test_health_names_the_model(server):
    assert httpx.get(f"{server}api/health").json() == {
        "status": "ok",
        "trained_size": 32,
        "device": "cpu",
        "waiting": 0,
    }


def test_the_command_serves_page_and_api(files):
    server = Command(["--checkpoint", str(CHECKPOINT_V0_1), "--port", "0", "--device", "cpu"])
    try:
        assert server.url.startswith("http://127.0.0.1:")
        page = httpx.get(server.url, timeout=60)
        assert page.status_code == 200 and '"title":"mtmsa editor"' in page.text
        response = post_inpaint(server.url, upload(files, "image.png", "hole.png", "sketch.png"))
        assert response.status_code == 200 and response.content[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        assert server.stop() in (0, -15)
    assert server.lines[0].startswith(
        f"mtmsa editor: {server.url}  (API: POST {server.url}api/inpaint; model "
    )


def test_the_command_refuses_bad_starts_in_one_line(server, tmp_path, capsys, monkeypatch):
    def start_fails(args: list[str]) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit:
            app_main(["--device", "cpu", *args])
        lines = capsys.readouterr().err.strip().splitlines()
        assert exit.value.code == 2 and len(lines) == 1, lines
        return lines[0]

    port = server.rsplit(":", 1)[1].strip("/")  # taken by the test server
    assert start_fails(["--checkpoint", str(CHECKPOINT_V0_1), "--port", port]) == (
        f"error: cannot listen on 127.0.0.1:{port} (Address already in use); choose another --port or --host"
    )
    assert start_fails(["--checkpoint", str(tmp_path / "missing.ckpt")]).startswith(
        f"error: FileNotFoundError: checkpoint {tmp_path / 'missing.ckpt'} does not exist"
    )
    (tmp_path / "noise.ckpt").write_bytes(b"\x00" * 100)
    assert start_fails(["--checkpoint", str(tmp_path / "noise.ckpt")]).startswith(
        f"error: cannot use checkpoint {tmp_path / 'noise.ckpt'}: not a torch checkpoint"
    )
    for option in ("--queue-size", "--max-upload-mb"):
        message = start_fails(["--checkpoint", str(CHECKPOINT_V0_1), option, "0"])
        assert message == f"error: {option} must be at least 1, got 0"
    monkeypatch.setitem(sys.modules, "gradio", None)  # as if the app extra were not installed
    assert start_fails(["--checkpoint", str(CHECKPOINT_V0_1)]) == (
        "error: the editor needs the app extra (gradio is not installed); pip install 'mtmsa[app]'"
    )
