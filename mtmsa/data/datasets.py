"""Image-folder datasets and their augmentations (the bundled sample dataset: :mod:`mtmsa.data.sample`).

``ImageFolderDataset`` serves ``{"image": (3, H, W) float32 in [-1, 1], "index": int}``.

What happens to bad files (corrupt, truncated, empty, not an image, larger than the pixel limit): they
never stop a run while any readable image is left.

1. The constructor parses every file's header (no pixel decoding; threads) and drops the files whose
   header cannot be parsed or announces more pixels than the limit: one :class:`UnreadableImageWarning`
   naming the first five and counting all; ``rejected_files`` lists them. If none is left,
   :class:`DatasetNotFoundError`.
2. A file whose header parses but whose pixel data turns out to be broken (a truncated download) is
   replaced, in ``__getitem__``, by the next file after it (wrapping around) that decodes: a
   deterministic neighbour, so batches stay full and a seed gives the same batches. Each replaced file
   gives one :class:`UnreadableImageWarning` naming it, is remembered (not tried again in that
   process) and counted in ``num_substitutions``. Only when no file at all can be decoded does
   ``__getitem__`` raise :class:`ImageReadError` (a user error: the command exits with one message).

Both work the same inside DataLoader worker processes (each worker keeps its own record).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mtmsa.data.io import IMAGE_EXTENSIONS, ImageReadError, max_pixels_limit, read_image_size, read_rgb
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.images import to_model_range

_WARNING_NAMES = 5
_RECORDED_FAILURES = 100
_PROGRESS_MIN_FILES = 2000


class DatasetNotFoundError(UserInputError):
    """No usable dataset at a path; the message names the path, the expected layout and what to do."""

    def __init__(self, path: str | os.PathLike, problem: str, expected_layout: str = ""):
        self.path = Path(path)
        expected = expected_layout or f"image files ({', '.join(IMAGE_EXTENSIONS)}) in it or its sub-folders"
        super().__init__(
            f"{self.path}: {problem}. Expected {expected}. Put the images there, or point the dataset "
            "config at the folder that holds them."
        )


class UnreadableImageWarning(UserWarning):
    """Image files were skipped or replaced because they could not be read."""


def list_image_files(root: str | os.PathLike) -> list[Path]:
    """Image files under ``root``, recursively, sorted by their path relative to ``root``.

    Symbolic links are followed (each real folder is visited once); hidden files and folders (names
    starting with ".", such as macOS "._photo.jpg" resource forks) are left out.
    """
    root = Path(root)
    files = []
    visited = set()
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real_folder = os.path.realpath(folder)
        if real_folder in visited:
            subfolders.clear()
            continue
        visited.add(real_folder)
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files.extend(
            Path(folder, name)
            for name in names
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
        )
    return sorted(files, key=lambda path: path.relative_to(root).parts)


def read_file_list(list_file: str | os.PathLike, root: str | os.PathLike) -> list[Path]:
    """Paths under ``root`` named by a text file, in the file's order.

    One path per line, relative to ``root``; blank lines and lines starting with "#" are ignored. A
    leading "/" and a trailing integer column are ignored too, so Places365 lists
    ("/a/airfield/00000001.jpg 0") work as they are. A relative ``list_file`` is looked for in the
    working directory, then in ``root``.
    """
    root = Path(root)
    list_file = Path(list_file)
    if not list_file.is_file() and not list_file.is_absolute() and (root / list_file).is_file():
        list_file = root / list_file
    if not list_file.is_file():
        raise DatasetNotFoundError(
            list_file, "the file list does not exist", "a text file with one image path per line"
        )
    paths = []
    for line in list_file.read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        name, _, label = entry.rpartition(" ")
        if name and label.isdigit():
            entry = name.rstrip()
        paths.append(root / entry.lstrip("/"))
    return paths


class ImageFolderDataset(Dataset):
    """RGB images from a folder tree (or a file list), as model-range tensors.

    Args:
        root: folder that holds the images (searched recursively).
        file_list: optional text file naming the images to use (see :func:`read_file_list`).
        transform: albumentations ``Compose`` applied to the uint8 (H, W, 3) array, e.g. from
            :func:`build_transform`. Its random state is reseeded from ``torch.initial_seed()`` once in
            each process, so DataLoader workers draw different augmentations and a torch seed makes
            runs reproducible.
        expected_layout: what the folder should hold, for error messages
            (e.g. "celebahq/train/*.jpg and celebahq/val/*.jpg").
        verify: parse every file's header up front (threads, progress bar for large folders) and drop
            the unreadable ones with one :class:`UnreadableImageWarning`.
        max_pixels: images whose header announces more pixels are treated as unreadable (default:
            :func:`mtmsa.data.io.max_pixels_limit`, i.e. ``$MTMSA_MAX_PIXELS`` or 100 million).

    Items are ``{"image": (3, H, W) float32 in [-1, 1], "index": index}``. Attributes:
    ``rejected_files`` lists ``(path, reason)`` for files dropped by verification;
    ``substituted_files`` the (at most 100) latest files replaced in ``__getitem__`` in this process,
    ``num_substitutions`` how many there were.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        file_list: str | os.PathLike | None = None,
        transform: A.Compose | None = None,
        expected_layout: str = "",
        verify: bool = True,
        max_pixels: int | None = None,
    ):
        self.root = Path(root)
        self.transform = transform
        self.max_pixels = max_pixels_limit(max_pixels)
        if not self.root.is_dir():
            problem = "is not a folder" if self.root.exists() else "does not exist"
            raise DatasetNotFoundError(self.root, problem, expected_layout)
        files = list_image_files(self.root) if file_list is None else read_file_list(file_list, self.root)
        self.rejected_files: list[tuple[Path, str]] = []
        if verify:
            files, self.rejected_files = _verify(files, self.max_pixels)
            if self.rejected_files:
                warnings.warn(
                    _rejection_message(self.root, self.rejected_files, len(files)),
                    UnreadableImageWarning,
                    stacklevel=2,
                )
        if not files:
            if self.rejected_files:
                problem = f"holds no readable image ({len(self.rejected_files)} file(s) could not be read)"
            else:
                problem = "holds no image files" if file_list is None else f"{file_list} names no image"
            raise DatasetNotFoundError(self.root, problem, expected_layout)
        # Relative paths in one numpy bytes array: no per-item Python objects whose reference counts
        # would make forked DataLoader workers copy the whole list.
        self._relative_paths = np.array([os.fsencode(path.relative_to(self.root)) for path in files])
        self.substituted_files: list[tuple[Path, str]] = []
        self.num_substitutions = 0
        self._failed_indices: set[int] = set()
        self._seeded_process: int | None = None

    def __len__(self) -> int:
        return len(self._relative_paths)

    def path(self, index: int) -> Path:
        """The file behind item ``index``."""
        return self.root / os.fsdecode(self._relative_paths[index])

    def __getitem__(self, index: int) -> dict:
        if self.transform is not None and self._seeded_process != os.getpid():
            self.transform.set_random_seed(torch.initial_seed() % 2**32)
            self._seeded_process = os.getpid()
        pixels = self._read_or_substitute(index)
        if self.transform is not None:
            pixels = self.transform(image=pixels)["image"]
        # Channels first in numpy: torch's multi-threaded strided uint8->float copy is up to 50x slower.
        image = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1))).float().div_(255.0)
        return {"image": to_model_range(image), "index": index}

    def _read_or_substitute(self, index: int) -> np.ndarray:
        """Pixels of item ``index``, or of the first decodable item after it (wrapping around)."""
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            if candidate in self._failed_indices:
                continue
            try:
                return read_rgb(self.path(candidate), self.max_pixels)
            except ImageReadError as error:
                self._record_failure(candidate, error)
        raise ImageReadError(
            self.path(index),
            f"none of the {len(self)} image files in {self.root} can be decoded (the last problem: "
            f"{self.substituted_files[-1][1]}); check the files, e.g. re-download the dataset",
        )

    def _record_failure(self, index: int, error: ImageReadError) -> None:
        self._failed_indices.add(index)
        self.num_substitutions += 1
        self.substituted_files = [*self.substituted_files, (error.path, error.reason)][-_RECORDED_FAILURES:]
        warnings.warn(f"{error}; using the next readable file instead", UnreadableImageWarning, stacklevel=3)


def _verify(files: Sequence[Path], max_pixels: int) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split files into those whose header parses and (path, reason) for the others."""

    def problem(path: Path) -> str | None:
        try:
            read_image_size(path, max_pixels)
        except ImageReadError as error:
            return error.reason
        return None

    with ThreadPoolExecutor(max_workers=min(32, 4 * (os.cpu_count() or 1))) as pool:
        problems = list(
            tqdm(
                pool.map(problem, files),
                total=len(files),
                desc="checking image files",
                disable=len(files) < _PROGRESS_MIN_FILES,
                leave=False,
            )
        )
    readable = [path for path, reason in zip(files, problems, strict=True) if reason is None]
    rejected = [(path, reason) for path, reason in zip(files, problems, strict=True) if reason is not None]
    return readable, rejected


def _rejection_message(root: Path, rejected: Sequence[tuple[Path, str]], kept: int) -> str:
    shown = "; ".join(f"{path.relative_to(root)} ({reason})" for path, reason in rejected[:_WARNING_NAMES])
    more = f"; and {len(rejected) - _WARNING_NAMES} more" if len(rejected) > _WARNING_NAMES else ""
    return f"{root}: skipped {len(rejected)} unreadable image file(s), using {kept}: {shown}{more}"


def build_transform(
    image_size: int,
    train: bool,
    resize: int | None = None,
    random_crop: bool = True,
    hflip: bool = True,
    scale: Sequence[float] | None = None,
    vflip: bool = False,
    rotate90: bool = False,
    color: bool = False,
) -> A.Compose:
    """Augmentations on uint8 (H, W, 3) arrays giving (image_size, image_size, 3).

    The short side is resized to ``resize`` (default ``image_size``; area interpolation when shrinking,
    bilinear when enlarging, so images smaller than the crop are enlarged). Evaluation then takes the
    centre crop, nothing else. Training takes a random crop (a centre crop when ``random_crop`` is False),
    or, with ``scale=(low, high)``, a random crop covering that fraction of the resized image's area (aspect
    3:4 to 4:3) resized to ``image_size``; then flips left-right (``hflip``), up-down (``vflip``), quarter
    turns (``rotate90``), and with ``color`` a colour change that keeps structure: channels shuffled,
    inverted half the time, grey a fifth of the time, brightness and contrast within 25%. The last four
    suit small or texture-like training sets (the sample data), not aligned faces.
    """
    resize = image_size if resize is None else resize
    if image_size < 1 or resize < image_size:
        raise ValueError(
            f"build_transform: need 1 <= image_size <= resize, got image_size={image_size}, resize={resize}"
        )
    steps = [A.SmallestMaxSize(max_size=resize, interpolation=cv2.INTER_LINEAR, area_for_downscale="image")]
    if not train:
        return A.Compose([*steps, A.CenterCrop(height=image_size, width=image_size)])
    if scale is not None:
        low, high = (float(v) for v in scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"build_transform: scale must be [low, high] with 0 < low <= high <= 1, got {scale}"
            )
        size = (image_size, image_size)
        steps.append(A.RandomResizedCrop(size=size, scale=(low, high), area_for_downscale="image"))
    else:
        crop = A.RandomCrop if random_crop else A.CenterCrop
        steps.append(crop(height=image_size, width=image_size))
    if hflip:
        steps.append(A.HorizontalFlip(p=0.5))
    if vflip:
        steps.append(A.VerticalFlip(p=0.5))
    if rotate90:
        steps.append(A.RandomRotate90(p=1.0))
    if color:
        steps += [
            A.ChannelShuffle(p=1.0),
            A.InvertImg(p=0.5),
            A.ToGray(p=0.2),
            A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0.25, p=1.0),
        ]
    return A.Compose(steps)
