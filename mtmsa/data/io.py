"""Reading image files into numpy arrays, shared by the datasets and the command-line tools.

Every reader goes the same way: only regular files are opened (a FIFO or a device such as /dev/zero
would block or never end); the header is parsed first with Pillow (lazy, no pixel data), which
identifies the format and lets oversized images (decompression bombs) be refused before the file's
bytes are read or anything is allocated; then the pixels are decoded with OpenCV (10-40% less CPU time
than Pillow on 0.3-1 MP JPEGs and PNGs, and it keeps 16-bit samples), falling back to Pillow for files
OpenCV cannot decode and for JPEGs that do not end with an end-of-image marker (OpenCV 4.x silently
returns a half-grey image for a truncated JPEG, Pillow raises). A PNG that OpenCV (libpng) refuses is
never handed to Pillow: Pillow fills the missing rows of a PNG whose compressed stream ends early with
black, without an error. EXIF orientation is applied, as image viewers do, so a mask drawn over what
the user sees lines up with the image.

The pixel limit (decompression-bomb guard) is ``max_pixels`` where a reader is given one, else the
environment variable ``MTMSA_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS` (see :func:`max_pixels_limit`).
Pillow's own guard (``PIL.Image.MAX_IMAGE_PIXELS``: a warning above it, an error above twice it) is
raised to the limit in use when it is lower, so it never refuses what the limit allows.

Any problem with a file ends in :class:`ImageReadError`, whose message names the file and the reason.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image

from mtmsa.utils.errors import UserInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_PIXELS = 100_000_000
"""Images whose header announces more pixels than this are refused (decompression-bomb guard): at the
limit, an 8-bit RGB image takes 300 MB decoded, and reading it as a mask about 1.5 GB at the peak."""
MAX_PIXELS_VARIABLE = "MTMSA_MAX_PIXELS"
"""Environment variable that sets the pixel limit of every reader not given one explicitly."""

_EXIF_ORIENTATION = 0x0112
_JPEG_END_OF_IMAGE = b"\xff\xd9"
_LUMINANCE_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's "L"
_MODES_KEPT = ("L", "LA", "RGB", "RGBA")
_MODES_CONVERTED = {"1": "L", "La": "LA", "RGBa": "RGBA"}
_FORMATS_WITHOUT_FALLBACK = ("PNG",)


class ImageReadError(UserInputError):
    """A file that cannot be read as an image; the message names the file and what is wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def max_pixels_limit(max_pixels: int | None = None) -> int:
    """The pixel limit to use: ``max_pixels`` if given, else ``$MTMSA_MAX_PIXELS``, else the default."""
    source = f"the pixel limit {max_pixels!r}"
    if max_pixels is None:
        value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
        if not value:
            return DEFAULT_MAX_PIXELS
        source, max_pixels = f"{MAX_PIXELS_VARIABLE}={value!r}", int(value) if value.isdigit() else 0
    if max_pixels < 1:
        raise UserInputError(f"{source} is not a positive whole number of pixels; set it to e.g. 100000000")
    return int(max_pixels)


def read_image_size(path: str | os.PathLike, max_pixels: int | None = None) -> tuple[int, int]:
    """(height, width) of the image as the readers return it (EXIF orientation applied), from the file's
    header alone, without decoding pixels.

    Raises ImageReadError for empty, missing, non-regular or unrecognised files and for images larger
    than the pixel limit. This is the cheap check the datasets run on every file before training.
    """
    path = Path(path)
    _check_regular_file(path)
    with _open_header(path, path, max_pixels_limit(max_pixels)) as image:
        return (image.width, image.height) if _exif_orientation(image) >= 5 else (image.height, image.width)


def read_rgb(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """An image file as an RGB uint8 array (H, W, 3).

    Grayscale is repeated over the three channels, palettes are expanded, 16-bit samples are scaled
    to 8 bits (65535 -> 255, rounded), and transparent pixels are composited on white (an alpha of
    0 gives white, 255 the colour as stored), so the result never depends on what colour a
    transparent pixel happens to hold.
    """
    pixels = _decode(Path(path), max_pixels_limit(max_pixels))
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    has_alpha = pixels.shape[2] in (2, 4)
    if pixels.dtype == np.uint8 and not has_alpha:
        return np.ascontiguousarray(colour)
    scale = np.float32(np.iinfo(pixels.dtype).max)
    unit = colour.astype(np.float32) / scale
    if has_alpha:
        alpha = pixels[..., -1:].astype(np.float32) / scale
        unit = unit * alpha + (1.0 - alpha)
    return (unit * 255.0 + 0.5).astype(np.uint8)


def read_gray(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """A single-channel image file (mask, sketch) as float32 (H, W) in [0, 1].

    How channels reduce to one value:

    - a file with an alpha channel that is not fully opaque everywhere gives its alpha: on a
      transparent layer the painted pixels are the opaque ones, whatever their colour;
    - otherwise grayscale is used as stored and colour becomes its luminance (ITU-R BT.601
      weights, as Pillow's "L"), so a white-on-black mask saved as RGB reads as the same mask.

    8-bit values are divided by 255 and 16-bit values by 65535.
    """
    pixels = _decode(Path(path), max_pixels_limit(max_pixels))
    unit = pixels.astype(np.float32) / np.float32(np.iinfo(pixels.dtype).max)
    if unit.shape[2] in (2, 4) and unit[..., -1].min() < 1.0:
        return np.ascontiguousarray(unit[..., -1])
    if unit.shape[2] >= 3:
        return unit[..., :3] @ _LUMINANCE_WEIGHTS
    return np.ascontiguousarray(unit[..., 0])


def _decode(path: Path, max_pixels: int) -> np.ndarray:
    """Pixels as shown: (H, W, C), C in {1: gray, 2: gray+alpha, 3: RGB, 4: RGBA}, uint8 or uint16."""
    _check_regular_file(path)
    try:
        file = open(path, "rb")  # noqa: SIM115  (closed below; Pillow reads from it lazily)
    except OSError as error:
        raise ImageReadError(path, error.strerror or str(error)) from error
    with file, _open_header(file, path, max_pixels) as image:
        file.seek(0)
        data = file.read()  # the bytes whose header was checked, from the same open file
        pixels = None
        if image.format != "JPEG" or data.rstrip(b"\x00").endswith(_JPEG_END_OF_IMAGE):
            pixels = _decode_with_opencv(data)
        if pixels is None and image.format in _FORMATS_WITHOUT_FALLBACK:
            raise ImageReadError(path, f"the {image.format} data is corrupt or truncated")
        if pixels is None:
            pixels = _decode_with_pillow(image, path)
        orientation = _exif_orientation(image)
    return _apply_orientation(pixels, orientation)


def _check_regular_file(path: Path) -> None:
    """Refuse missing, empty and non-regular files (a FIFO or /dev/zero would block or never end)."""
    try:
        status = path.stat()
    except OSError as error:
        raise ImageReadError(path, error.strerror or str(error)) from error
    if not stat.S_ISREG(status.st_mode):
        kind = "a folder" if stat.S_ISDIR(status.st_mode) else "not a regular file (a device, pipe or socket)"
        raise ImageReadError(path, f"it is {kind}, not an image file")
    if status.st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")


def _open_header(source: Path | BinaryIO, path: Path, max_pixels: int) -> Image.Image:
    """Pillow image with only the header parsed; refuses images above ``max_pixels``."""
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        image = Image.open(source)
    except Image.DecompressionBombError as error:
        raise ImageReadError(
            path,
            f"refused as a possible decompression bomb ({error}); if the file is trusted, raise the "
            f"limit (--max-pixels, or the environment variable {MAX_PIXELS_VARIABLE})",
        ) from error
    except Exception as error:
        raise ImageReadError(path, f"not a recognised image file ({error})") from error
    if image.width * image.height > max_pixels:
        image.close()
        raise ImageReadError(
            path,
            f"its header says {image.width}x{image.height} = {image.width * image.height:,} pixels, more "
            f"than the limit of {max_pixels:,} (decompression-bomb guard); if the file is trusted, "
            f"raise the limit (--max-pixels, or the environment variable {MAX_PIXELS_VARIABLE})",
        )
    return image


def _decode_with_opencv(data: bytes) -> np.ndarray | None:
    """(H, W, C) RGB(A)/gray array, or None when OpenCV cannot decode the data."""
    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if pixels is None or pixels.dtype not in (np.uint8, np.uint16):
        return None
    if pixels.ndim == 2:
        return pixels[..., None]
    if pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    return None


def _decode_with_pillow(image: Image.Image, path: Path) -> np.ndarray:
    """(H, W, C) array from Pillow; raises ImageReadError for truncated or undecodable data."""
    try:
        image.load()
        if image.mode.startswith("I;16") or image.mode == "I":
            samples = np.asarray(image)
            if samples.min() < 0 or samples.max() > np.iinfo(np.uint16).max:
                raise ImageReadError(path, f"32-bit integer samples outside 0..65535 (mode {image.mode})")
            return samples.astype(np.uint16)[..., None]
        if image.mode == "F":
            raise ImageReadError(path, "floating-point images are not supported; save it as 8 or 16 bit")
        if image.mode not in _MODES_KEPT:
            fallback = "RGBA" if image.has_transparency_data else "RGB"
            image = image.convert(_MODES_CONVERTED.get(image.mode, fallback))
        samples = np.asarray(image)
    except ImageReadError:
        raise
    except Exception as error:
        raise ImageReadError(path, f"the image data cannot be decoded ({error})") from error
    return samples if samples.ndim == 3 else samples[..., None]


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8, 1 = as stored), read without decoding pixels."""
    if "exif" not in image.info and image.format != "TIFF":
        return 1
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H, W, C) to how viewers show them, after the EXIF orientation tag."""
    if orientation in (5, 6, 7, 8):
        pixels = pixels.swapaxes(0, 1)
    if orientation in (2, 3, 6, 7):
        pixels = pixels[:, ::-1]
    if orientation in (3, 4, 7, 8):
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels)
