"""Moving masks into a hole-ratio range, deterministically: grow by dilation order, shrink by erosion order."""

from __future__ import annotations

import torch

from mtmsa.utils.filters import window_max
from mtmsa.utils.images import hole_pixels, hole_ratio


def in_ratio_range(masks: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(B,) bool: low <= hole ratio < high, computed exactly from the pixel counts."""
    ratio = hole_ratio(masks)
    return (ratio >= low) & (ratio < high)


def _count_limits(pixels: int, low: float, high: float) -> tuple[int, int]:
    """Smallest and largest hole pixel count whose ratio lies in [low, high)."""
    ratios = torch.arange(pixels + 1, dtype=torch.float64) / pixels
    allowed = torch.nonzero((ratios >= low) & (ratios < high)).flatten()
    if len(allowed) == 0:
        raise ValueError(
            f"hole ratio range [{low}, {high}) contains no achievable ratio for {pixels} pixels; widen the range"
        )
    return int(allowed[0]), int(allowed[-1])


def _grow(masks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Adds the pixels nearest to each hole (3x3 dilation steps, ties in raster order) until sample b has
    exactly ``counts[b]`` >= its current hole pixels. An empty mask grows from the image centre."""
    batch, _, height, width = masks.shape
    pixels = height * width
    region = masks.bool().clone()
    empty = ~region.flatten(1).any(1)
    region[empty, 0, height // 2, width // 2] = True
    levels = torch.where(region, 0, pixels).long()
    step = 0
    while bool((region.flatten(1).sum(1) < counts).any()) and step < height + width:
        step += 1
        grown = window_max(region.float(), 1).bool()
        levels[grown & ~region] = step
        region = grown
    keys = (levels * pixels + torch.arange(pixels, device=masks.device).view(1, 1, height, width)).flatten(1)
    threshold = keys.sort(1).values.gather(1, (counts.long() - 1).clamp(min=0)[:, None])
    grown = (keys <= threshold) & (counts[:, None] > 0)
    return grown.view_as(masks).float()


def fit_hole_ratio(masks: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Deterministically moves each mask's hole ratio to the nearest value in [low, high).

    Too small holes grow by dilation order (pixels nearest to the hole first, ties in raster order); too
    large holes shrink the same way from the known region inwards (an erosion). Masks already in range are
    returned unchanged. (B,1,H,W) -> (B,1,H,W).
    """
    pixels = masks[0].numel()
    fewest, most = _count_limits(pixels, low, high)
    counts = hole_pixels(masks)
    targets = counts.clamp(fewest, most)
    grown = _grow(masks, targets.to(masks.device))
    shrunk = 1.0 - _grow(1.0 - masks, (pixels - targets).to(masks.device))
    fitted = torch.where((targets > counts).to(masks.device)[:, None, None, None], grown, shrunk)
    return torch.where((targets == counts).to(masks.device)[:, None, None, None], masks, fitted)
