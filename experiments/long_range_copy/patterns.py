"""Procedural inpainting task that is solved by copying distant context: periodic textures with a box hole.

Every image is a periodic texture (stripes, checkers or a dot lattice) with a random lattice, orientation,
phase and two or three random colours, plus two distractors that lie outside the hole: a patch of a second,
unrelated texture in one corner and a solid elliptic blob. The hole is a box of 30-45% of the side per
axis, kept a quarter of the side away from every border, so it never touches the corner patch, and it is
larger than the texture's period: interpolating the hole's border smears it, while copying known pixels
one or a few periods away restores it exactly.

The lattice vectors are integer pixel vectors, ``a1 = (p, q)`` and ``a2 = (-q, p)`` (period
``sqrt(p**2 + q**2)``, orientation ``atan2(q, p)``), so the rendered texture is exactly periodic on the pixel
grid: ``image[y, x] == image[y + n1 * a1_y + n2 * a2_y, x + n1 * a1_x + n2 * a2_x]`` wherever no distractor
covers either pixel. :func:`lattice_copy_fill` uses this to fill holes by copying, the reference that
shows the task is solvable by long-range copy. Textures are rendered with 2x2 supersampling, which keeps
this exactness because every pixel is sampled at the same sub-pixel offsets.

All randomness comes from one ``torch.Generator``; the same seed gives the same batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from mtmsa.utils.images import to_model_range

KINDS = ("stripes", "checkers", "dots")
HOLE_SIDE = (0.30, 0.45)
HOLE_MARGIN = 0.25
CORNER_PATCH_SIDE = (0.15, 0.25)
SUPERSAMPLING = 2


class PatternBatch(NamedTuple):
    """images (B,3,H,W) in [-1, 1]; masks (B,1,H,W), 1 = hole; distractors (B,1,H,W), 1 where a distractor
    (corner patch or blob) covers the texture; lattices (B,2,2) integer lattice vectors ``a1, a2`` as rows of
    (x, y) pixel offsets."""

    images: torch.Tensor
    masks: torch.Tensor
    distractors: torch.Tensor
    lattices: torch.Tensor


def _uniform(low: float, high: float, size: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator)


def random_lattices(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B,2,2) integer lattice vectors with period between size/8 and size/4 and a random orientation."""
    low, high = max(3, size // 8), max(4, size // 4)
    p = torch.randint(low, high + 1, (batch,), generator=generator)
    half = p // 2
    q = (torch.rand(batch, generator=generator) * (2 * half + 1)).floor().long() - half
    a1 = torch.stack([p, q], dim=1)
    swap = torch.rand(batch, generator=generator) < 0.5
    a1 = torch.where(swap[:, None], a1.flip(1), a1)
    a1 = a1 * torch.where(torch.rand(batch, 1, generator=generator) < 0.5, -1, 1)
    a2 = torch.stack([-a1[:, 1], a1[:, 0]], dim=1)
    return torch.stack([a1, a2], dim=1)


def _labels(
    kinds: torch.Tensor, u: torch.Tensor, three: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """Colour index 0, 1 or 2 per point from lattice coordinates u (B,2,H,W) and kind (B,) into KINDS."""
    batch = u.shape[0]
    f = u - u.floor()
    duty = _uniform(0.3, 0.6, (batch, 1, 1), generator)
    stripes = (f[:, 0] >= duty).long() + (three[:, None, None] & (f[:, 0] >= (1 + duty) / 2)).long()
    cells = (2 * f).floor().long()
    checkers = (cells[:, 0] + cells[:, 1]) % 2 + 2 * (
        three[:, None, None] & (cells[:, 0] + cells[:, 1] == 2)
    ).long()
    radius = (f - 0.5).norm(dim=1)
    dot = _uniform(0.2, 0.35, (batch, 1, 1), generator)
    dots = (radius < dot).long() + (three[:, None, None] & (radius < dot / 2)).long()
    k = kinds[:, None, None]
    return torch.where(k == 0, stripes, torch.where(k == 1, checkers, dots)).clamp_max(2)


def render_textures(lattices: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Periodic textures (B,3,size,size) in [0, 1] on the given (B,2,2) integer lattices."""
    batch = lattices.shape[0]
    fine = size * SUPERSAMPLING
    coords = (torch.arange(fine, dtype=torch.float64) + 0.5) / SUPERSAMPLING
    ys, xs = torch.meshgrid(coords, coords, indexing="ij")
    points = torch.stack([xs, ys])  # (2, fine, fine) pixel coordinates (x, y)
    vectors = lattices.double()
    # lattice coordinates u_i = (x . a_i) / |a_i|^2 (a1, a2 orthogonal), plus a random phase
    u = torch.einsum("bij,jhw->bihw", vectors, points) / (vectors**2).sum(dim=2)[:, :, None, None]
    u = u + torch.rand(batch, 2, 1, 1, generator=generator, dtype=torch.float64)
    kinds = torch.randint(len(KINDS), (batch,), generator=generator)
    three = torch.rand(batch, generator=generator) < 0.5
    labels = _labels(kinds, u, three, generator)
    colours = torch.rand(batch, 3, 3, generator=generator)  # (B, colour index, RGB)
    picked = torch.gather(colours, 1, labels.flatten(1)[:, :, None].expand(-1, -1, 3))
    texture = picked.transpose(1, 2).reshape(batch, 3, fine, fine)
    return F.avg_pool2d(texture, SUPERSAMPLING)


def _boxes(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B, 4) hole boxes (top, left, bottom, right), exclusive ends, HOLE_MARGIN away from every border."""
    sides = (_uniform(*HOLE_SIDE, (batch, 2), generator) * size).round().long()
    margin = math.ceil(HOLE_MARGIN * size)
    room = (size - 2 * margin - sides).clamp_min(0)
    starts = margin + (torch.rand(batch, 2, generator=generator) * (room + 1)).floor().long()
    return torch.cat([starts, starts + sides], dim=1)


def _box_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    index = torch.arange(size)
    rows = (index >= boxes[:, 0, None]) & (index < boxes[:, 2, None])
    cols = (index >= boxes[:, 1, None]) & (index < boxes[:, 3, None])
    return (rows[:, :, None] & cols[:, None, :]).float()[:, None]


def _corner_patches(batch: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B,1,H,W) square patches in a random corner, at most CORNER_PATCH_SIDE[1] of the side."""
    sides = (_uniform(*CORNER_PATCH_SIDE, (batch,), generator) * size).floor().long()
    corner = torch.randint(2, (batch, 2), generator=generator)
    starts = torch.where(corner == 1, size - sides[:, None], 0)
    return _box_masks(torch.cat([starts, starts + sides[:, None]], dim=1), size)


def _blobs(holes: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B,1,H,W) ellipses outside the hole (its 1-pixel dilation): centred in the known area, radii 6-15%."""
    batch = holes.shape[0]
    grown = F.max_pool2d(holes, 3, stride=1, padding=1)
    scores = torch.rand(batch, size * size, generator=generator) * (1 - grown.flatten(1))
    centre = scores.argmax(dim=1)
    cy, cx = (centre // size).double(), (centre % size).double()
    radii = _uniform(0.06, 0.15, (batch, 2), generator).double() * size
    angle = _uniform(0.0, math.pi, (batch,), generator).double()
    index = torch.arange(size, dtype=torch.float64) + 0.5
    dy = index[None, :, None] - cy[:, None, None] - 0.5
    dx = index[None, None, :] - cx[:, None, None] - 0.5
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    inside = (along / radii[:, 0, None, None]) ** 2 + (across / radii[:, 1, None, None]) ** 2 <= 1.0
    return (inside[:, None].float() * (1 - grown)).float()


def make_batch(batch: int, size: int, generator: torch.Generator) -> PatternBatch:
    """A batch of textured images with a box hole and two distractors outside it (see the module docstring)."""
    if size < 16 or size % 4:
        raise ValueError(f"pattern image size={size} must be a multiple of 4 and at least 16, e.g. 32 or 48")
    lattices = random_lattices(batch, size, generator)
    texture = render_textures(lattices, size, generator)
    other = render_textures(random_lattices(batch, size, generator), size, generator)
    masks = _box_masks(_boxes(batch, size, generator), size)
    corner = _corner_patches(batch, size, generator)
    blob = _blobs(masks, size, generator)
    blob_colour = torch.rand(batch, 3, 1, 1, generator=generator)
    images = torch.where(corner.bool(), other, texture)
    images = torch.where(blob.bool(), blob_colour.expand_as(images), images)
    distractors = ((corner + blob) > 0).float()
    return PatternBatch(to_model_range(images), masks, distractors, lattices)


def lattice_copy_fill(batch: PatternBatch, reach: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill each hole pixel by copying the nearest known, distractor-free pixel one lattice shift away.

    Shifts ``n1 * a1 + n2 * a2`` with ``|n1|, |n2| <= reach`` are tried from the shortest up. Returns the
    filled images (B,3,H,W) and the (B,1,H,W) map of hole pixels that found a source (the others keep 0).
    """
    images, masks, distractors, lattices = batch
    size = images.shape[-1]
    steps = torch.arange(-reach, reach + 1)
    n1, n2 = (n.flatten() for n in torch.meshgrid(steps, steps, indexing="ij"))
    shifts = n1[None, :, None] * lattices[:, None, 0] + n2[None, :, None] * lattices[:, None, 1]  # (B,S,2)
    order = (shifts.double() ** 2).sum(dim=2).argsort(dim=1)
    shifts = torch.gather(shifts, 1, order[:, :, None].expand(-1, -1, 2))[:, 1:]  # drop the zero shift
    usable = ((masks + distractors) == 0).flatten(1)
    filled = masked = images * (1 - masks)
    found = torch.zeros_like(masks, dtype=torch.bool)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    for s in range(shifts.shape[1]):
        sx, sy = xs + shifts[:, s, 0, None, None], ys + shifts[:, s, 1, None, None]
        inside = (sx >= 0) & (sx < size) & (sy >= 0) & (sy < size)
        source = (sy.clamp(0, size - 1) * size + sx.clamp(0, size - 1)).flatten(1)
        ok = (inside.flatten(1) & torch.gather(usable, 1, source)).view_as(masks[:, 0])[:, None]
        take = ok & masks.bool() & ~found
        copied = torch.gather(masked.flatten(2), 2, source[:, None].expand(-1, 3, -1)).view_as(images)
        filled = torch.where(take, copied, filled)
        found = found | take
    return filled, found.float()
