"""Inpaint your own images with a trained checkpoint.

    python -m mtmsa.inpaint --checkpoint C --image in.png --mask hole.png [--sketch lines.png] --out out.png
    python -m mtmsa.inpaint --checkpoint C --image DIR --mask DIR [--sketch DIR] --out DIR

Any image size works. The image is padded (reflected) to the generator's size multiple and cropped back.
An image larger than the resolution the model was trained at (the checkpoint's ``dataset.image_size``)
is processed in a window around the hole: the hole's bounding box with a margin of half its size on
each side, at least the trained resolution wide; a window larger than that is shrunk to it, inpainted,
and the prediction enlarged back. Only hole pixels of the output ever change: the known pixels are
byte-identical to the input as decoded (8-bit RGB; 16-bit inputs are scaled to 8 bits, transparency
composited on white) when the output format is lossless (PNG, BMP, TIFF).

Hostile or broken input ends in one ``error: ...`` line and exit code 2, before anything is written:
unreadable files, sizes that do not match (compared from the headers, before any pixels are decoded),
images above the pixel limit (``--max-pixels``, default ``$MTMSA_MAX_PIXELS`` or 100 million, checked
from the header), an output that is one of the inputs (also through a link). Outputs are written to a
temporary file in the output folder and renamed into place, so an interrupted run leaves no partial file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import cv2.utils.logging
import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from mtmsa.checkpoints import load_generator
from mtmsa.data.io import IMAGE_EXTENSIONS, max_pixels_limit, read_gray, read_image_size, read_rgb
from mtmsa.previews import to_uint8
from mtmsa.utils.cli import exit_on_user_error
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.files import replaced_atomically
from mtmsa.utils.images import composite, to_model_range, to_unit_range

MASK_CONVENTIONS = ("hole-white", "hole-black")
SKETCH_CONVENTIONS = ("auto", "black-on-white", "white-on-black")


class InpaintInputError(UserInputError):
    """An input the command cannot use (mask of another size, empty mask, output over an input, ...)."""


def read_mask(
    path: str | Path, convention: str = "hole-white", threshold: float = 0.5, max_pixels: int | None = None
) -> np.ndarray:
    """(H, W) bool, True = hole: grey levels above ``threshold`` are white (see :func:`read_gray`)."""
    white = read_gray(path, max_pixels) > threshold
    return white if convention == "hole-white" else ~white


def read_sketch(
    path: str | Path, convention: str = "auto", threshold: float = 0.5, max_pixels: int | None = None
) -> np.ndarray:
    """(H, W) bool, True on a stroke, from a line drawing.

    ``black-on-white``: dark lines on a light background; ``white-on-black``: the reverse; ``auto``: the
    majority colour is taken as the background (a drawing covers less than half of its page).
    """
    gray = read_gray(path, max_pixels)
    if convention == "auto":
        convention = "black-on-white" if np.mean(gray > threshold) >= 0.5 else "white-on-black"
    return gray <= threshold if convention == "black-on-white" else gray > threshold


def context_window(hole: np.ndarray, size: int) -> tuple[slice, slice]:
    """Rows and columns of the window around a hole (H, W) bool that the model sees.

    The hole's bounding box grown by half its longer side on every side and to at least ``size`` along
    each axis (or the whole axis when shorter), shifted to stay inside the image.
    """
    rows, columns = np.nonzero(hole)
    margin = max(rows.max() - rows.min() + 1, columns.max() - columns.min() + 1) // 2

    def span(low: int, high: int, length: int) -> slice:
        extent = min(length, max(high - low + 2 * margin, size))
        start = min(max((low + high - extent) // 2, 0), length - extent)
        return slice(start, start + extent)

    return span(rows.min(), rows.max() + 1, hole.shape[0]), span(
        columns.min(), columns.max() + 1, hole.shape[1]
    )


def _shrink(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool map (H, W) at ``shape``: True wherever the area it covers holds any True (thin strokes survive)."""
    return cv2.resize(values.astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA) > 0


class Inpainter:
    """A generator applied to uint8 images of any size (see the module docstring).

    Call: ``(image (H,W,3) uint8, hole (H,W) bool, strokes (H,W) bool or None) -> (H,W,3) uint8`` with the
    known pixels of ``image`` unchanged. Strokes outside the hole are ignored.
    """

    def __init__(self, generator: nn.Module, trained_size: int, device: torch.device | str = "cpu") -> None:
        self.generator = generator
        self.trained_size = int(trained_size)
        self.device = torch.device(device)
        self.multiple = int(getattr(generator, "size_multiple", 1))

    def __call__(self, image: np.ndarray, hole: np.ndarray, strokes: np.ndarray | None = None) -> np.ndarray:
        if not hole.any():
            return image.copy()
        strokes = np.zeros_like(hole) if strokes is None else strokes & hole
        rows, columns = (slice(None), slice(None))
        if max(image.shape[:2]) > self.trained_size:
            rows, columns = context_window(hole, self.trained_size)
        window, window_hole = image[rows, columns], hole[rows, columns]
        height, width = window_hole.shape
        scale = min(1.0, self.trained_size / max(height, width))
        if scale < 1.0:
            small = (max(1, round(height * scale)), max(1, round(width * scale)))
            small_hole = _shrink(window_hole, small)
            resized = cv2.resize(window, small[::-1], interpolation=cv2.INTER_AREA)
            prediction = self._predict(
                resized, small_hole, _shrink(strokes[rows, columns], small) & small_hole
            )
            prediction = cv2.resize(prediction, (width, height), interpolation=cv2.INTER_CUBIC)
        else:
            prediction = self._predict(window, window_hole, strokes[rows, columns])
        result = image.copy()
        result[rows, columns][window_hole] = prediction[window_hole]
        return result

    @torch.inference_mode()
    def _predict(self, image: np.ndarray, hole: np.ndarray, strokes: np.ndarray) -> np.ndarray:
        """The generator's composited output (H,W,3) uint8, on inputs reflect-padded to the size multiple."""
        height, width = hole.shape
        pad = ((0, -height % self.multiple), (0, -width % self.multiple))
        pixels = np.pad(image, (*pad, (0, 0)), mode="reflect")
        images = to_model_range(torch.from_numpy(pixels).permute(2, 0, 1)[None].float().div(255.0))
        masks = torch.from_numpy(np.pad(hole, pad))[None, None].float()
        sketches = torch.from_numpy(np.pad(strokes, pad))[None, None].float()
        images, masks, sketches = (t.to(self.device) for t in (images, masks, sketches))
        completed = composite(self.generator(images, masks, sketches).refined, images, masks)
        return to_uint8(to_unit_range(completed[0, :, :height, :width]))


@dataclass(frozen=True)
class Job:
    image: Path
    mask: Path
    sketch: Path | None
    out: Path


def _image_files(folder: Path, role: str) -> dict[str, Path]:
    """Image files of a folder (not recursive) by stem; two files with one stem are an error."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            if path.stem in files:
                raise InpaintInputError(f"{role} folder {folder} has two files named {path.stem}.*; keep one")
            files[path.stem] = path
    return files


def plan_jobs(image: Path, mask: Path, sketch: Path | None, out: Path) -> list[Job]:
    """Pairs of inputs and outputs: one file each, or folders matched by file stem (outputs ``<stem>.png``).

    Refuses an output that is one of the inputs, also through a symbolic or hard link (or an output
    folder that is an input folder).
    """
    inputs = [p for p in (image, mask, sketch) if p is not None]
    for path in inputs:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; check the path")
    if any(_same_file(out, p) for p in inputs):
        raise InpaintInputError(f"--out {out} is one of the inputs; write the result somewhere else")
    jobs = _pair_inputs(image, mask, sketch, out)
    input_files = [p for job in jobs for p in (job.image, job.mask, job.sketch) if p is not None]
    for job in jobs:
        if any(_same_file(job.out, p) for p in input_files):
            raise InpaintInputError(
                f"the output {job.out} would overwrite the input of the same name; choose another --out"
            )
    return jobs


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file or folder (same resolved path, or same inode: a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _pair_inputs(image: Path, mask: Path, sketch: Path | None, out: Path) -> list[Job]:
    if not image.is_dir():
        if any(p.is_dir() for p in (mask, sketch, out) if p is not None):
            raise InpaintInputError(
                "with a single --image file, --mask, --sketch and --out must be files too"
            )
        if out.suffix.lower() not in IMAGE_EXTENSIONS:
            raise InpaintInputError(f"--out {out} needs an image file ending ({', '.join(IMAGE_EXTENSIONS)})")
        return [Job(image, mask, sketch, out)]
    if not mask.is_dir() or (sketch is not None and not sketch.is_dir()) or out.is_file():
        raise InpaintInputError("with an --image folder, --mask, --sketch and --out must be folders too")
    images = _image_files(image, "image")
    masks = _image_files(mask, "mask")
    sketches = _image_files(sketch, "sketch") if sketch is not None else {}
    if not images:
        raise InpaintInputError(f"image folder {image} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise InpaintInputError(
            f"no mask in {mask} for {len(missing)} image(s): {', '.join(missing[:5])}; masks are matched "
            "to images by file name without extension"
        )
    return [Job(path, masks[stem], sketches.get(stem), out / f"{stem}.png") for stem, path in images.items()]


def load_inputs(job: Job, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image uint8 (H,W,3), hole bool, strokes bool or None) of a job.

    Sizes are compared from the file headers (and the pixel limit checked) before any file is decoded.
    """
    height, width = read_image_size(job.image, args.max_pixels)
    for role, path in (("mask", job.mask), ("sketch", job.sketch)):
        if path is not None and (size := read_image_size(path, args.max_pixels)) != (height, width):
            raise InpaintInputError(
                f"{role} {path} is {size[1]}x{size[0]} but image {job.image} is {width}x{height}; give a "
                f"{role} of the image's size"
            )
    image = read_rgb(job.image, args.max_pixels)
    hole = read_mask(job.mask, args.mask_convention, args.threshold, args.max_pixels)
    if not hole.any():
        raise InpaintInputError(
            f"mask {job.mask} marks no hole pixel ({args.mask_convention}: "
            f"{'white' if args.mask_convention == 'hole-white' else 'black'} is the hole); draw the hole, or "
            "check --mask-convention"
        )
    strokes = None
    if job.sketch is not None:
        strokes = read_sketch(job.sketch, args.sketch_convention, args.threshold, args.max_pixels)
    return image, hole, strokes


def save_image(pixels: np.ndarray, path: Path) -> None:
    """Write (H,W,3) uint8 to ``path`` (format from its ending) through a partial file renamed into place."""
    try:
        with replaced_atomically(path) as partial:
            Image.fromarray(pixels).save(partial, quality=95)
    except OSError as error:
        raise InpaintInputError(f"cannot write {path}: {error.strerror or error}; check --out") from error


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InpaintInputError(f"--device {name} asks for CUDA, which is not available; use --device cpu")
    return torch.device(name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mtmsa.inpaint",
        description="Fill the holes of images with a trained mtmsa checkpoint (EMA weights preferred). "
        "Give one --image/--mask/--out file each, or folders (files matched by name without extension, "
        "outputs written as <name>.png).",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="a .ckpt written by mtmsa.train")
    parser.add_argument(
        "--image", required=True, type=Path, help="image file or folder (RGB, RGBA, grey, 16-bit)"
    )
    parser.add_argument("--mask", required=True, type=Path, help="mask file or folder, the size of the image")
    parser.add_argument(
        "--sketch",
        type=Path,
        help="optional line drawing (file or folder) guiding the fill; only strokes inside the hole are used",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output file or folder; never one of the inputs"
    )
    parser.add_argument(
        "--mask-convention",
        choices=MASK_CONVENTIONS,
        default="hole-white",
        help="which colour of the mask marks the hole (default: hole-white, white = fill, black = keep)",
    )
    parser.add_argument(
        "--sketch-convention",
        choices=SKETCH_CONVENTIONS,
        default="auto",
        help="black-on-white or white-on-black lines; auto (default): the majority colour is the background",
    )
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="grey level in (0, 1) binarising masks and sketches"
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1"
    )
    parser.add_argument(
        "--max-pixels",
        type=int,
        help="refuse input images whose header announces more pixels than this (decompression-bomb "
        "guard; default: $MTMSA_MAX_PIXELS or 100000000)",
    )
    return parser


def run(args: argparse.Namespace) -> list[Path]:
    """Inpaint every job of ``args``; returns the written files."""
    if not 0 < args.threshold < 1:
        raise InpaintInputError(f"--threshold must be in (0, 1), got {args.threshold}")
    args.max_pixels = max_pixels_limit(args.max_pixels)
    jobs = plan_jobs(args.image, args.mask, args.sketch, args.out)
    device = resolve_device(args.device)
    generator, config = load_generator(args.checkpoint, device)
    inpainter = Inpainter(generator, config["dataset"]["image_size"], device)
    written = []
    for job in tqdm(jobs, desc="inpainting", unit="img", disable=len(jobs) == 1):
        save_image(inpainter(*load_inputs(job, args)), job.out)
        written.append(job.out)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line on stderr per error: no OpenCV decoder chatter, no second copy from logging's last resort.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if not logging.getLogger("mtmsa").hasHandlers():
        logging.getLogger("mtmsa").addHandler(logging.NullHandler())
    with exit_on_user_error():
        written = run(args)
    print(
        f"wrote {written[0] if len(written) == 1 else f'{len(written)} images to {args.out}'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
