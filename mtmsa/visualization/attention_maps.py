"""Pictures of what the attention does: each head's temperature map, and where each head attends from one
hole position, each with a colour bar that gives its scale.

The attention is found by what it returns (an :class:`~mtmsa.models.outputs.AttentionOutput`), not by its
class: :func:`run_with_attention` runs a generator and asks whichever module returned such a record for its
attention probabilities.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn

from mtmsa.models.outputs import AttentionOutput
from mtmsa.visualization.figures import figure_image, new_figure

TEMPERATURE_COLOURS = "magma"
ATTENTION_COLOURS = "viridis"
QUERY_MARK_COLOUR = "cyan"
TILE_INCHES = 1.1
GAP = 2
"""White pixels between the tiles of a picture."""
MARGIN, TITLES, BAR_WIDTH, BAR_LABELS = 0.05, 0.25, 0.12, 0.75
"""Inches around the image, above it for the column titles, of the colour bar, and right of it for its labels."""


def run_with_attention(
    generator: nn.Module, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor
) -> tuple[object, AttentionOutput | None]:
    """The generator's output for a batch, and for its sample 0 the record of its (first) attention module run
    again with ``return_attention=True``: probabilities ``(1, heads, HW, HW)`` when that attention has them.

    An attention module is one that returns ``(y, AttentionOutput)`` and takes ``return_attention`` (modules
    that only pass the record on take no such argument). None when the generator has no attention module.
    """
    calls: list[tuple[nn.Module, tuple, dict]] = []

    def remember(module: nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], AttentionOutput):
            calls.append((module, args, kwargs))

    attentions = [
        m for m in generator.modules() if "return_attention" in inspect.signature(m.forward).parameters
    ]
    hooks = [module.register_forward_hook(remember, with_kwargs=True) for module in attentions]
    try:
        output = generator(images, masks, sketches)
    finally:
        for hook in hooks:
            hook.remove()
    if not calls:
        return output, None
    module, args, kwargs = calls[0]
    first = {name: value[:1] if torch.is_tensor(value) else value for name, value in kwargs.items()}
    return output, module(*(value[:1] for value in args[:2]), **{**first, "return_attention": True})[1]


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


def _maps_figure(inputs: torch.Tensor, maps: torch.Tensor, norm, colours: str, label: str) -> Figure:
    """One image: a row per sample of the input, then each head's map (nearest-enlarged to the input size,
    coloured by ``norm`` and ``colours``), titled over each column; beside it a colour bar of ``norm``
    labelled ``label``. The figure's axes are [the image, the colour bar]."""
    rows, heads = maps.shape[:2]
    height_px, width_px = inputs.shape[-2:]
    maps = F.interpolate(maps.detach().float().cpu(), size=(height_px, width_px), mode="nearest").numpy()
    coloured = colormaps[colours](norm(maps.reshape(-1)))[:, :3].reshape(
        *maps.shape, 3
    )  # (rows, heads, H, W, 3)
    pictures = inputs.detach().float().cpu().clamp(0, 1).permute(0, 2, 3, 1).numpy()
    mosaic = np.ones((rows * (height_px + GAP) - GAP, (heads + 1) * (width_px + GAP) - GAP, 3))
    for row in range(rows):
        top = row * (height_px + GAP)
        for column, tile in enumerate([pictures[row], *coloured[row]]):
            left = column * (width_px + GAP)
            mosaic[top : top + height_px, left : left + width_px] = tile
    image_height = TILE_INCHES * rows  # inches; the colour bar is as tall as the image
    image_width = image_height * mosaic.shape[1] / mosaic.shape[0]
    width, height = MARGIN + image_width + 0.1 + BAR_WIDTH + BAR_LABELS, MARGIN + image_height + TITLES
    figure = new_figure(width, height)
    axis = figure.add_axes((MARGIN / width, MARGIN / height, image_width / width, image_height / height))
    axis.imshow(mosaic, interpolation="nearest")
    axis.set_axis_off()
    for column, title in enumerate(["input", *(f"head {head}" for head in range(heads))]):
        axis.text(column * (width_px + GAP) + width_px / 2, -1.5, title, ha="center", va="bottom", fontsize=9)
    bar_left = (MARGIN + image_width + 0.1) / width
    bar_axis = figure.add_axes((bar_left, MARGIN / height, BAR_WIDTH / width, image_height / height))
    bar = figure.colorbar(ScalarMappable(norm=norm, cmap=colours), cax=bar_axis)
    bar.set_label(label, fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return figure


def temperature_plot(
    inputs: torch.Tensor, temperature: torch.Tensor, temperature_range: tuple[float, float] | None = None
) -> Figure:
    """Inputs (B,3,H,W) in [0, 1] beside each head's temperature map (B,h,h',w'), one row per sample.

    Colours are on a log scale over ``temperature_range`` (the same colours at every step: give the range
    the attention reports), or over the batch's min and max when None; the colour bar gives the scale.
    """
    low, high = temperature_range or (float(temperature.min()), float(temperature.max()))
    if not high > low:
        low, high = low / 1.1, high * 1.1  # a constant temperature: a narrow scale around it
    return _maps_figure(
        inputs, temperature, LogNorm(low, high), TEMPERATURE_COLOURS, "temperature t (log scale)"
    )


def attention_plot(
    inputs: torch.Tensor, attention: torch.Tensor, query_index: int, feature_hw: tuple[int, int]
) -> Figure:
    """Where each head attends from one query position of sample 0, with the query outlined.

    Args:
        inputs: (B,3,H,W) in [0, 1]; sample 0 is shown.
        attention: (B,h,N,N) probabilities, N = feature_hw[0] * feature_hw[1].
        query_index: row-major query position in the feature grid, outlined in every tile.
        feature_hw: (h', w') of the feature grid.
    """
    rows = attention[:1, :, query_index].float().unflatten(-1, feature_hw)  # (1,h,h',w')
    rows = rows / rows.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    figure = _maps_figure(inputs[:1], rows, Normalize(0.0, 1.0), ATTENTION_COLOURS, "weight / head's max")
    (height, width), (fh, fw) = inputs.shape[-2:], feature_hw
    row, col = divmod(query_index, fw)
    cell_h, cell_w = height / fh, width / fw
    for tile in range(attention.shape[1] + 1):
        corner = (tile * (width + GAP) + col * cell_w - 0.5, row * cell_h - 0.5)
        outline = Rectangle(corner, cell_w, cell_h, fill=False, edgecolor=QUERY_MARK_COLOUR, linewidth=1.2)
        figure.axes[0].add_patch(outline)
    return figure


def attention_pictures(
    inputs: torch.Tensor, record: AttentionOutput | None, details: AttentionOutput | None
) -> dict[str, torch.Tensor]:
    """``temperature`` and ``attention`` pictures of a batch: from the record of the batch's forward pass
    (its temperatures) and that of sample 0 with probabilities (:func:`run_with_attention`); a picture is
    left out when its data is missing (an attention without temperatures or probabilities)."""
    pictures = {}
    if record is not None and record.temperature is not None:
        plot = temperature_plot(inputs, record.temperature, record.temperature_range)
        pictures["temperature"] = figure_image(plot)
    if details is not None and details.attention is not None and details.hole is not None:
        feature_hw = tuple(details.hole.shape[-2:])
        query = pick_hole_query(details.hole)
        pictures["attention"] = figure_image(attention_plot(inputs, details.attention, query, feature_hw))
    return pictures
