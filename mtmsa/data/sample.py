"""The bundled sample dataset: tiles of the photographs that ship inside scikit-image and matplotlib.

Nothing is downloaded. Three splits, by source photograph (never by crop):

- ``train``: colour photographs (an astronaut, a rocket, a motorcycle, a galaxy field, tissue, a retina)
  and greyscale ones (bricks, grass, gravel, the moon). Greyscale photos are
  stored as RGB; the training augmentation varies colours, so they teach structure, not colour.
- ``val``: ``chelsea`` (a cat) and ``coffee`` (a cup), the held-out tiles that validation and the
  quickstart's final table use.
- ``holdout``: photographs of other kinds that neither training nor validation sees (a portrait, a
  cameraman, coins), for checking that what was learned carries over:
  ``python -m mtmsa.evaluate ckpt_path=... dataset.val_dir=holdout``.

``train_scenes.txt`` lists the training tiles of the photographs of people and things (:data:`SCENE_PHOTOS`), not
textures, the sky or tissue: ``experiment=sample_long`` trains on those alone (``dataset.train_list``).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from matplotlib import cbook
from PIL import Image
from skimage import data as skimage_data

log = logging.getLogger(__name__)


def _rgb(load: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """A loader returning (H, W, 3) uint8, whatever ``load`` returns (greyscale, RGBA, floats)."""

    def rgb() -> np.ndarray:
        photo = np.asarray(load())
        if photo.dtype != np.uint8:
            photo = (255.0 * photo / max(float(photo.max()), 1e-12)).round().astype(np.uint8)
        if photo.ndim == 2:
            photo = np.repeat(photo[..., None], 3, axis=2)
        return np.ascontiguousarray(photo[..., :3])

    return rgb


def _matplotlib_photo(name: str) -> Callable[[], np.ndarray]:
    return _rgb(lambda: np.asarray(Image.open(cbook.get_sample_data(name, asfileobj=False))))


SAMPLE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _rgb(skimage_data.astronaut),
    "chelsea": _rgb(skimage_data.chelsea),
    "coffee": _rgb(skimage_data.coffee),
    "rocket": _rgb(skimage_data.rocket),
    "motorcycle": _rgb(lambda: skimage_data.stereo_motorcycle()[0]),
    "hubble_deep_field": _rgb(skimage_data.hubble_deep_field),
    "immunohistochemistry": _rgb(skimage_data.immunohistochemistry),
    "retina": _rgb(skimage_data.retina),
    "brick": _rgb(skimage_data.brick),
    "grass": _rgb(skimage_data.grass),
    "gravel": _rgb(skimage_data.gravel),
    "moon": _rgb(skimage_data.moon),
}
"""Photographs for training and validation, as RGB uint8 loaders (scikit-image's wheel)."""

HOLDOUT_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "grace_hopper": _matplotlib_photo("grace_hopper.jpg"),
    "camera": _rgb(skimage_data.camera),
    "coins": _rgb(skimage_data.coins),
}
"""Photographs of the ``holdout`` split, used by no other split (matplotlib's and scikit-image's wheels)."""

SCENE_PHOTOS = ("astronaut", "rocket", "motorcycle", "retina")
"""The training photographs of people and things (a retina's fundus photograph among them), whose smooth shading
and object edges are what the validation and holdout photographs hold; the others are textures (bricks, grass,
gravel, the moon), a galaxy field and stained tissue. Why sample_long trains on these alone:
``experiments/README.md``, "Training on the photographs of people and things"."""

SAMPLE_MANIFEST = "manifest.json"
SCENES_LIST = "train_scenes.txt"
SAMPLE_VERSION = 3  # 1: 60 training tiles of 6 colour photos, no holdout split; 2: no scenes list
_SHORT_SIDE_TILES = {"train": 3, "val": 2, "holdout": 2}


def ensure_sample_dataset(
    root: str | os.PathLike, tile: int = 128, val_photos: Sequence[str] = ("chelsea", "coffee")
) -> Path:
    """The bundled sample dataset at ``root``, made on first use: ``root/{train,val,holdout}/<photo>_<k>.png``.

    Each photo is resized so its short side is 3 tiles (training photos) or 2 tiles (validation and
    holdout photos) and cut into non-overlapping ``tile`` x ``tile`` crops; with the defaults that is
    96 training, 12 validation and 12 holdout tiles, 42 of the training tiles listed in ``root/``
    :data:`SCENES_LIST` (those of :data:`SCENE_PHOTOS`, relative to ``root/train``). The folder is built in a
    temporary sibling and renamed into place, so an interrupted run leaves no partial dataset;
    ``root/manifest.json`` marks it complete. A complete dataset of this version is never rewritten; one made by an earlier version of
    this function (its own manifest says so) is replaced by the current one.
    """
    root = Path(root)
    val_photos = list(val_photos)
    unknown = sorted(set(val_photos) - set(SAMPLE_PHOTOS))
    train_photos = [name for name in SAMPLE_PHOTOS if name not in val_photos]
    if unknown or not train_photos or not val_photos or tile < 1:
        raise ValueError(
            f"ensure_sample_dataset: val_photos must be a non-empty proper subset of {list(SAMPLE_PHOTOS)} "
            f"and tile >= 1, got val_photos={val_photos}, tile={tile}"
        )
    settings = {"tile": tile, "val_photos": val_photos}
    made_with = _sample_settings(root)
    if made_with is None or made_with.get("version", 1) < SAMPLE_VERSION:
        splits = {"train": train_photos, "val": val_photos, "holdout": list(HOLDOUT_PHOTOS)}
        _build(root, tile, splits, {**settings, "version": SAMPLE_VERSION}, replace=made_with is not None)
        made_with = _sample_settings(root)
    if {key: made_with.get(key) for key in settings} != settings:
        raise ValueError(
            f"{root} holds a sample dataset made with {made_with}, not {settings}; delete the folder or "
            "choose another root"
        )
    return root


def _sample_settings(root: Path) -> dict | None:
    """The manifest of a complete sample dataset at ``root``, or None when there is none yet."""
    manifest = root / SAMPLE_MANIFEST
    if manifest.is_file():
        return json.loads(manifest.read_text())
    if root.exists() and any(root.iterdir()):
        raise ValueError(
            f"{root} is not empty but has no {SAMPLE_MANIFEST}, so it is not a sample dataset made by "
            "ensure_sample_dataset; remove the folder or choose another root"
        )
    return None


def _build(root: Path, tile: int, splits: dict[str, list[str]], settings: dict, replace: bool) -> None:
    """Write the dataset into a staging sibling, then move it into place (replacing an older version)."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    retired = root.parent / f".{root.name}.old-{os.getpid()}"
    try:
        _write_sample_dataset(staging, tile, splits, settings)
        if replace:
            log.info("replacing the sample dataset of an earlier version at %s", root)
            os.rename(root, retired)
        os.rename(staging, root)
    except OSError:
        if _sample_settings(root) is None:  # not a concurrent process that finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def tile_name(photo: str, index: int) -> str:
    """The file name of a photo's ``index``-th tile: ``<photo>_<index>.png``."""
    return f"{photo}_{index:02d}.png"


def photo_of(tile: str) -> str:
    """The photo a tile was cut from, from its file name or path (the inverse of :func:`tile_name`)."""
    return Path(tile).stem.rsplit("_", 1)[0]


def _write_sample_dataset(folder: Path, tile: int, splits: dict[str, list[str]], settings: dict) -> None:
    photos = {**SAMPLE_PHOTOS, **HOLDOUT_PHOTOS}
    files = {}
    for split, names in splits.items():
        (folder / split).mkdir()
        files[split] = []
        for name in names:
            for k, crop in enumerate(_tiles(photos[name](), tile, _SHORT_SIDE_TILES[split] * tile)):
                filename = tile_name(name, k)
                Image.fromarray(crop).save(folder / split / filename)
                files[split].append(filename)
    scenes = [name for name in files["train"] if photo_of(name) in SCENE_PHOTOS]
    (folder / SCENES_LIST).write_text("".join(f"{name}\n" for name in scenes))
    (folder / SAMPLE_MANIFEST).write_text(json.dumps({**settings, "files": files}, indent=1))


def _tiles(photo: np.ndarray, tile: int, short_side: int) -> list[np.ndarray]:
    """Non-overlapping tile x tile crops, row by row, of the photo resized to the given short side."""
    height, width = photo.shape[:2]
    scale = short_side / min(height, width)
    size = (max(short_side, round(width * scale)), max(short_side, round(height * scale)))
    resized = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    rows, columns = resized.shape[0] // tile, resized.shape[1] // tile
    top, left = (resized.shape[0] - rows * tile) // 2, (resized.shape[1] - columns * tile) // 2
    return [
        resized[top + r * tile : top + (r + 1) * tile, left + c * tile : left + (c + 1) * tile]
        for r in range(rows)
        for c in range(columns)
    ]
