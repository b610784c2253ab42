"""Image grids: build them from tensors and save them as PNG (no Lightning import: the CLIs start fast)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def image_grid(columns: Sequence[torch.Tensor], padding: int = 2) -> torch.Tensor:
    """Lay out columns of images side by side, one sample per row.

    columns: tensors (B,C,H,W) in [0, 1] with C of 1 or 3 and equal B, H, W. Returns (3, rows, cols)
    with white padding between tiles.
    """
    tiles = [c.expand(-1, 3, -1, -1) if c.shape[1] == 1 else c for c in columns]
    batch, _, height, width = tiles[0].shape
    grid = torch.ones(3, batch * (height + padding) - padding, len(tiles) * (width + padding) - padding)
    for col, tile in enumerate(tiles):
        for row in range(batch):
            top, left = row * (height + padding), col * (width + padding)
            grid[:, top : top + height, left : left + width] = tile[row].detach().float().cpu()
    return grid


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(3,H,W) or (1,H,W) in [0, 1] -> (H,W,3) uint8."""
    array = (image.detach().float().cpu().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
    return array.expand(3, -1, -1).permute(1, 2, 0).numpy()


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write a (3,H,W) [0, 1] tensor as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
    return path
