"""Grids of images with a title over each column, and the one way holes, masks and sketches are drawn.

Every picture of images that mtmsa writes (training previews, evaluation samples, the data pictures) is a
:func:`titled_grid`: one sample per row, one titled column per view. Views of the inputs are drawn the same
way everywhere: a masked input with its hole white (:func:`hole_view`), a mask white where the hole is
(:func:`mask_view`), a sketch as black strokes on white (:func:`sketch_view`). No Lightning import here, so
the command-line tools start fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from mtmsa.utils.images import to_uint8, to_unit_range

PADDING = 2
PADDING_GREY = 0.8
"""Grey of the lines between tiles: white tiles (a sketch's background) keep their edges."""
MIN_TILE_WIDTH = 64
"""Tiles narrower than this are enlarged by a whole factor (nearest neighbour), so titles fit above them."""
TITLE_HEIGHT = 16
FONT_SIZE = 11


def hole_view(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """What the network is given, for the eye: images (B,3,H,W) in [-1, 1] in [0, 1] with the holes white."""
    return torch.where(masks.bool(), torch.ones_like(images), to_unit_range(images))


def mask_view(masks: torch.Tensor) -> torch.Tensor:
    """Masks (B,1,H,W) as pictures: the hole white, known pixels black."""
    return masks.float().expand(-1, 3, -1, -1)


def sketch_view(sketches: torch.Tensor) -> torch.Tensor:
    """Sketches (B,1,H,W), 1 on a stroke, as black strokes on white."""
    return (1.0 - sketches.float()).expand(-1, 3, -1, -1)


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def title_strip(titles: list[str], tile_width: int, padding: int = PADDING) -> torch.Tensor:
    """(3, TITLE_HEIGHT, width) white strip with each title centred over its column, in [0, 1]."""
    width = len(titles) * (tile_width + padding) - padding
    strip = Image.new("RGB", (width, TITLE_HEIGHT), "white")
    draw = ImageDraw.Draw(strip)
    for column, title in enumerate(titles):
        centre = column * (tile_width + padding) + tile_width / 2
        draw.text((centre, TITLE_HEIGHT / 2), title, fill="black", font=_font(FONT_SIZE), anchor="mm")
    return torch.from_numpy(np.array(strip)).permute(2, 0, 1).float() / 255.0


def titled_grid(columns: Mapping[str, torch.Tensor], padding: int = PADDING) -> torch.Tensor:
    """Columns of images side by side under their titles, one sample per row.

    columns: title -> (B,C,H,W) in [0, 1] with C of 1 or 3 and equal B, H, W. Tiles narrower than
    :data:`MIN_TILE_WIDTH` are enlarged by a whole factor. Returns (3, rows, cols) in [0, 1]: a white strip
    of titles, then the tiles with light grey lines (:data:`PADDING_GREY`) between them.
    """
    tiles = [c.detach().float().cpu().expand(-1, 3, -1, -1) for c in columns.values()]
    factor = max(1, math.ceil(MIN_TILE_WIDTH / tiles[0].shape[-1]))
    if factor > 1:
        tiles = [F.interpolate(t, scale_factor=factor, mode="nearest") for t in tiles]
    batch, _, height, width = tiles[0].shape
    grid = torch.full(
        (3, batch * (height + padding) - padding, len(tiles) * (width + padding) - padding), PADDING_GREY
    )
    for col, tile in enumerate(tiles):
        for row in range(batch):
            top, left = row * (height + padding), col * (width + padding)
            grid[:, top : top + height, left : left + width] = tile[row]
    strip = title_strip(list(columns), width, padding)
    return torch.cat([strip, torch.ones(3, padding, grid.shape[-1]), grid], dim=1)


def inpainting_grid(
    images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor, completed: torch.Tensor
) -> torch.Tensor:
    """input | sketch | output | target of inpainted samples (images and completed in [-1, 1])."""
    return titled_grid(
        {
            "input": hole_view(images, masks),
            "sketch": sketch_view(sketches),
            "output": to_unit_range(completed),
            "target": to_unit_range(images),
        }
    )


def training_sample_grid(images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
    """image | mask | sketch | input of training samples (images in [-1, 1])."""
    return titled_grid(
        {
            "image": to_unit_range(images),
            "mask": mask_view(masks),
            "sketch": sketch_view(sketches),
            "input": hole_view(images, masks),
        }
    )


def as_hwc(image: torch.Tensor) -> np.ndarray:
    """(3,H,W) or (1,H,W) in [0, 1] -> (H,W,3) uint8, the layout image files and dashboards take."""
    return to_uint8(image.cpu()).expand(3, -1, -1).permute(1, 2, 0).numpy()


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3,H,W) [0, 1] tensor as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(as_hwc(image)).save(path)
    return path
