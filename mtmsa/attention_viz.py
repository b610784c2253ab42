"""Pictures and numbers of what the attention does: temperature maps, where a query attends, statistics.

Pure tensor functions (no I/O), for validation logging. Images are (B,3,H,W) in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import matplotlib
import torch
import torch.nn.functional as F

QUERY_MARK_COLOUR = (0.0, 1.0, 1.0)


@lru_cache(maxsize=8)
def _colormap_table(cmap: str) -> torch.Tensor:
    """(256, 3) RGB table of a matplotlib colormap."""
    colormap = matplotlib.colormaps[cmap].resampled(256)
    return torch.tensor(colormap(range(256)), dtype=torch.float32)[:, :3]


def colorize(values: torch.Tensor, vmin: float, vmax: float, cmap: str = "magma") -> torch.Tensor:
    """Values (B,1,H,W) -> colours (B,3,H,W) in [0, 1]; values outside [vmin, vmax] take the end colours."""
    unit = ((values.float() - vmin) / max(vmax - vmin, 1e-12)).clamp(0.0, 1.0)
    indices = (unit * 255).round().long().squeeze(1)  # (B,H,W)
    table = _colormap_table(cmap).to(values.device)
    return table[indices].permute(0, 3, 1, 2)


def _beside(images: torch.Tensor, maps: torch.Tensor, vmin: float, vmax: float) -> torch.Tensor:
    """Images (B,3,H,W) and per-head maps (B,h,h',w') -> (B,3,H,(h+1)*W): images, then each map coloured."""
    size = images.shape[-2:]
    maps = F.interpolate(maps.float(), size=size, mode="nearest")
    tiles = [colorize(maps[:, i : i + 1], vmin, vmax) for i in range(maps.shape[1])]
    return torch.cat([images.float(), *tiles], dim=-1)


def temperature_panel(
    masked_input_unit: torch.Tensor,
    temperature: torch.Tensor,
    temperature_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Masked input (B,3,H,W) beside each head's temperature map (B,h,h',w') -> (B,3,H,(h+1)*W).

    Colours are on a log scale between ``temperature_range`` (fixed colours across steps; give the
    module's range) or, when None, the batch's min and max.
    """
    log_t = temperature.float().log()
    low, high = temperature_range or (temperature.min().item(), temperature.max().item())
    return _beside(masked_input_unit, log_t, float(torch.tensor(low).log()), float(torch.tensor(high).log()))


def _query_outline(size: tuple[int, int], query_index: int, feature_hw: tuple[int, int]) -> torch.Tensor:
    """Boolean (H,W) outline one pixel outside the image area of the query's feature cell."""
    (height, width), (fh, fw) = size, feature_hw
    row, col = divmod(query_index, fw)
    top, bottom = max(row * height // fh - 1, 0), min((row + 1) * height // fh + 1, height)
    left, right = max(col * width // fw - 1, 0), min((col + 1) * width // fw + 1, width)
    outline = torch.zeros(height, width, dtype=torch.bool)
    outline[top:bottom, left:right] = True
    outline[top + 1 : bottom - 1, left + 1 : right - 1] = False
    return outline


def attention_panel(
    masked_input_unit: torch.Tensor, attention: torch.Tensor, query_index: int, feature_hw: tuple[int, int]
) -> torch.Tensor:
    """Where each head attends for one query position -> (B,3,H,(h+1)*W).

    Args:
        masked_input_unit: (B,3,H,W) in [0, 1].
        attention: (B,h,N,N) probabilities, N = feature_hw[0] * feature_hw[1].
        query_index: row-major query position in the feature grid, marked in every tile.
        feature_hw: (h', w') of the feature grid.
    """
    rows = attention[:, :, query_index].float().unflatten(-1, feature_hw)  # (B,h,h',w')
    rows = rows / rows.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    panel = _beside(masked_input_unit, rows, 0.0, 1.0)
    outline = _query_outline(masked_input_unit.shape[-2:], query_index, feature_hw)
    outline = outline.repeat(1, attention.shape[1] + 1).to(panel.device)
    colour = torch.tensor(QUERY_MARK_COLOUR, device=panel.device).view(1, 3, 1, 1)
    return torch.where(outline, colour, panel)


def pick_hole_query(hole: torch.Tensor) -> int:
    """Hole (B,1,H,W) -> row-major index of sample 0's hole position nearest its hole centroid.

    Without a hole in sample 0 the grid centre is returned.
    """
    height, width = hole.shape[-2:]
    positions = (hole[0, 0] > 0.5).nonzero().float()  # (n, 2) rows of (y, x)
    if len(positions) == 0:
        return (height // 2) * width + width // 2
    nearest = (positions - positions.mean(dim=0)).square().sum(dim=1).argmin()
    row, col = positions[nearest].long().tolist()
    return row * width + col
