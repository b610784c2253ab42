"""Image files that no reader can use, and odd but readable ones, for the bad-data and command-line tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data as skimage_data


def png_claiming_size(width: int, height: int, rows: int = 2) -> bytes:
    """A valid RGB PNG whose header says width x height but whose compressed data holds only ``rows`` rows:
    a few hundred bytes that claim any size (a complete zlib stream, so Pillow reads it without error)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * (1 + 3 * width) * rows, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _truncated(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _photo(name: str, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(getattr(skimage_data, name)()).resize(size))


def good_files(folder: Path, seed: int) -> list[str]:
    """Readable images in every converted format; returns their names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(_photo("astronaut", (56, 48))).save(folder / "astronaut.png")
    Image.fromarray(_photo("coffee", (64, 44))).save(folder / "coffee.jpg", quality=90)
    Image.fromarray(_photo("chelsea", (40, 40))).save(folder / "chelsea.webp")
    Image.fromarray(rng.integers(0, 256, (40, 50), np.uint8)).save(folder / "grey.png")
    rgba = np.dstack([_photo("rocket", (48, 40)), rng.integers(0, 256, (40, 48), np.uint8)])
    Image.fromarray(rgba).save(folder / "rgba.png")
    Image.fromarray(rng.integers(0, 65536, (36, 44), np.uint16)).save(folder / "grey16.png")
    cv2.imwrite(str(folder / "rgb16.tif"), _photo("astronaut", (44, 44))[..., ::-1].astype(np.uint16) * 257)
    Image.fromarray(_photo("chelsea", (48, 36))).convert("P", palette=Image.Palette.ADAPTIVE).save(
        folder / "palette.png"
    )
    Image.fromarray(rng.integers(0, 2, (40, 40), bool)).save(folder / "bilevel.bmp")
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), np.uint8)).save(folder / "smaller_than_crop.png")
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(folder / "one_pixel.png")
    Image.fromarray(rng.integers(0, 256, (3, 200, 3), np.uint8)).save(folder / "strip.png")
    return sorted(p.name for p in folder.iterdir())


HEADER_FAILURES = (
    "empty.png",
    "text.jpg",
    "noise.png",
    "broken_tiff.tif",
    "claims_20000px.png",
    "cut_header.jpg",
)
DECODE_FAILURES = ("truncated.png", "truncated.jpg", "short_data.png")


def bad_files(folder: Path, seed: int) -> None:
    """Files no reader can use (HEADER_FAILURES) and files whose pixels do not decode (DECODE_FAILURES)."""
    rng = np.random.default_rng(seed)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture, a note someone saved with the wrong name\n")
    (folder / "noise.png").write_bytes(rng.bytes(3000))
    (folder / "broken_tiff.tif").write_bytes(b"II*\x00" + b"\xff" * 200)  # TIFF magic, no valid directory
    (folder / "claims_20000px.png").write_bytes(png_claiming_size(20000, 20000))
    photo = rng.integers(0, 256, (48, 48, 3), np.uint8)
    Image.fromarray(photo).save(folder / "cut_header.jpg")
    _truncated(folder / "cut_header.jpg", 0.01)
    Image.fromarray(photo).save(folder / "truncated.png")
    _truncated(folder / "truncated.png")
    Image.fromarray(photo).save(folder / "truncated.jpg", quality=95)
    _truncated(folder / "truncated.jpg")
    (folder / "short_data.png").write_bytes(png_claiming_size(48, 48, rows=5))
    (folder / "folder.png").mkdir()  # not listed: a folder named like an image
    (folder / "notes.txt").write_text("not listed: not an image file name\n")
    (folder / ".hidden.png").write_bytes(b"not listed: hidden")
