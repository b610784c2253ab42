"""The files of ``python -m mtmsa.inpaint``: which image, mask and sketch go to which output, reading them
(masks and sketches in either colour convention) and writing results without ever replacing an input."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtmsa.conf.schema.run import MASK_CONVENTIONS as MASK_CONVENTIONS  # declared with the other options
from mtmsa.conf.schema.run import SKETCH_CONVENTIONS as SKETCH_CONVENTIONS
from mtmsa.data.io import IMAGE_EXTENSIONS, read_gray, read_image_size, read_rgb
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.files import replaced_atomically


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


def load_inputs(
    job: Job,
    mask_convention: str = "hole-white",
    sketch_convention: str = "auto",
    threshold: float = 0.5,
    max_pixels: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(image uint8 (H,W,3), hole bool, strokes bool or None) of a job.

    Sizes are compared from the file headers (and the pixel limit checked) before any file is decoded.
    """
    height, width = read_image_size(job.image, max_pixels)
    for role, path in (("mask", job.mask), ("sketch", job.sketch)):
        if path is not None and (size := read_image_size(path, max_pixels)) != (height, width):
            raise InpaintInputError(
                f"{role} {path} is {size[1]}x{size[0]} but image {job.image} is {width}x{height}; give a "
                f"{role} of the image's size"
            )
    image = read_rgb(job.image, max_pixels)
    hole = read_mask(job.mask, mask_convention, threshold, max_pixels)
    if not hole.any():
        raise InpaintInputError(
            f"mask {job.mask} marks no hole pixel ({mask_convention}: "
            f"{'white' if mask_convention == 'hole-white' else 'black'} is the hole); draw the hole, or "
            "check --mask-convention"
        )
    strokes = None
    if job.sketch is not None:
        strokes = read_sketch(job.sketch, sketch_convention, threshold, max_pixels)
    return image, hole, strokes


def save_image(pixels: np.ndarray, path: Path) -> None:
    """Write (H,W,3) uint8 to ``path`` (format from its ending) through a partial file renamed into place."""
    try:
        with replaced_atomically(path) as partial:
            Image.fromarray(pixels).save(partial, quality=95)
    except OSError as error:
        raise InpaintInputError(f"cannot write {path}: {error.strerror or error}; check --out") from error
