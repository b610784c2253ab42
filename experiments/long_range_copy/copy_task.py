"""Procedural inpainting task solved only by copying: the hole's content exists elsewhere in the image.

Every image is a random background with detail on the attention's grid (4x4-pixel cells: the generator's
attention works at 1/4 resolution). A block of ``hole + 2 * ring`` cells is copied from a random source to
a random destination, and the hole is the destination block without its ring: the ring is what the hole's
surroundings share with the source, the only cue to where its content is. The interior is random, so
nothing but a copy restores it; a smooth fill of the hole's border, or a network that cannot look far,
gets the mean.

Decoys make how sharply the attention selects (its temperature) matter: each is a copy of the source
block whose interior is replaced by other random content and whose ring keeps only part of the source's
cells (the rest re-drawn), so it matches the hole's surroundings partly. Low-amplitude noise on the whole
image keeps the copies from being exact, so the oracle copy has a finite score.

All randomness comes from one ``torch.Generator``; the same seed gives the same batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

CELL = 4  # pixels per attention position


class CopyBatch(NamedTuple):
    """images (B,3,H,W) in [-1, 1]; masks (B,1,H,W), 1 = hole; oracle (B,3,H,W): the hole filled from the
    true source (of the noisy image); offsets (B,2): (dy, dx) in cells from each hole cell to its source."""

    images: torch.Tensor
    masks: torch.Tensor
    oracle: torch.Tensor
    offsets: torch.Tensor


def background(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Colour noise at three scales (the image, a quarter of it, one cell) in [-1, 1]; the amplitudes add up
    to 1, so nothing is clipped and two cells rarely look alike unless one is a copy of the other."""
    cells = size // CELL
    image = torch.zeros(batch, 3, size, size)
    for grid, amplitude, mode in ((2, 0.4, "bilinear"), (4, 0.3, "bilinear"), (cells, 0.3, "nearest")):
        noise = torch.rand(batch, 3, grid, grid, generator=generator) * 2 - 1
        image += amplitude * F.interpolate(noise, size=(size, size), mode=mode)
    return image.clamp(-1, 1)


def _block_corners(cells: int, block: int, count: int, generator: torch.Generator, attempts: int = 200):
    """``count`` random (row, column) corners in cells of non-overlapping block x block squares, placed one
    after another, each uniformly among the corners still free."""
    span = cells - block + 1
    grid = torch.stack(torch.meshgrid(torch.arange(span), torch.arange(span), indexing="ij"), dim=-1).view(
        -1, 2
    )
    for _ in range(attempts):
        corners: list[list[int]] = []
        free = torch.ones(len(grid), dtype=torch.bool)
        while len(corners) < count and free.any():
            choices = free.nonzero().flatten()
            corner = grid[choices[torch.randint(len(choices), (1,), generator=generator)]].flatten()
            corners.append(corner.tolist())
            free &= (grid - corner).abs().amax(dim=1) >= block
        if len(corners) == count:
            return corners
    raise ValueError(
        f"no room for {count} blocks of {block} cells in a {cells}-cell image; use larger images"
    )


def _cells(row: int, column: int, extent: int) -> tuple[slice, slice]:
    return slice(row * CELL, (row + extent) * CELL), slice(column * CELL, (column + extent) * CELL)


def copy_batch(
    batch: int,
    size: int,
    generator: torch.Generator,
    hole: tuple[int, int] = (3, 4),
    ring: int = 2,
    decoys: int = 0,
    decoy_ring_kept: float = 0.5,
    noise: float = 0.02,
) -> CopyBatch:
    """``batch`` images of ``size`` pixels (a multiple of 4) with one copied block each.

    Args:
        hole: the hole's side in cells, drawn uniformly from this range (both included).
        ring: cells of known surroundings copied with the hole's content.
        decoys: partial copies of the source block (interior replaced, ``decoy_ring_kept`` of the ring
            cells kept, the rest re-drawn), placed where they overlap no other block.
        noise: standard deviation of the noise added to every pixel after copying.
    """
    if size % CELL:
        raise ValueError(f"copy_batch needs a size divisible by {CELL}, got {size}")
    images = background(batch, size, generator)
    fresh = background(batch, size, generator)  # content for decoy interiors and re-drawn ring cells
    masks = torch.zeros(batch, 1, size, size)
    offsets = torch.zeros(batch, 2, dtype=torch.long)
    for i in range(batch):
        side = int(torch.randint(hole[0], hole[1] + 1, (1,), generator=generator))
        block = side + 2 * ring
        source, destination, *others = _block_corners(size // CELL, block, 2 + decoys, generator)
        block_pixels = images[i][(slice(None), *_cells(*source, block))].clone()
        images[i][(slice(None), *_cells(*destination, block))] = block_pixels
        masks[i][(slice(None), *_cells(destination[0] + ring, destination[1] + ring, side))] = 1.0
        offsets[i] = torch.tensor([source[0] - destination[0], source[1] - destination[1]])
        for row, column in others:
            kept = torch.rand(block, block, generator=generator) < decoy_ring_kept
            kept[ring:-ring, ring:-ring] = False  # the interior is always replaced
            keep = kept.repeat_interleave(CELL, 0).repeat_interleave(CELL, 1)
            area = (slice(None), *_cells(row, column, block))
            images[i][area] = torch.where(keep, block_pixels, fresh[i][area])
    images = (images + noise * torch.randn(images.shape, generator=generator)).clamp(-1, 1)
    oracle = images.clone()
    for i in range(batch):
        dy, dx = offsets[i].tolist()
        from_source = torch.roll(images[i], shifts=(-dy * CELL, -dx * CELL), dims=(1, 2))
        oracle[i] = torch.where(masks[i].bool(), from_source, images[i])
    return CopyBatch(images, masks, oracle, offsets)
