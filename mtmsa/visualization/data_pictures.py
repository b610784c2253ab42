"""Pictures of the training data: hole-ratio histograms of mask configs, and the steps of the edge sketches."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mtmsa.evaluation.buckets import DEFAULT_BUCKETS
from mtmsa.visualization.figures import new_figure, save_figure, show_tile

SKETCH_STEP_TITLES = (
    "image",
    "blurred grey",
    "edge strength",
    "cleaned strokes",
    "partly dropped",
    "warped",
    "kept in hole",
)


def plot_hole_ratio_histograms(ratios: Mapping[str, np.ndarray], size: int, path: str | Path) -> Path:
    """One histogram panel per mask config (name -> hole ratios), with the evaluation buckets shaded."""
    columns = min(3, len(ratios))
    rows = math.ceil(len(ratios) / columns)
    figure = new_figure(4 * columns, 3 * rows)
    axes = figure.subplots(rows, columns, squeeze=False)
    bins = np.linspace(0.0, 1.0, 51)
    for axis, (name, values) in zip(axes.flat, ratios.items(), strict=False):
        for number, (low, high) in enumerate(DEFAULT_BUCKETS):
            axis.axvspan(low, high, color="0.92" if number % 2 else "0.85", zorder=0)
        axis.hist(values, bins=bins, color="tab:blue", zorder=1)
        axis.axvline(float(values.mean()), color="tab:red", linewidth=1, zorder=2)
        axis.set_title(f"{name}: mean {values.mean():.2f}, n={len(values)}")
        axis.set_xlim(0, 1)
        axis.set_xlabel("hole ratio")
    for axis in list(axes.flat)[len(ratios) :]:
        axis.axis("off")
    figure.suptitle(f"Hole ratios at {size}x{size} (shaded: evaluation buckets; red: mean)")
    figure.tight_layout()
    return save_figure(figure, path)


def plot_sketch_steps(steps: list[torch.Tensor], masks: torch.Tensor, path: str | Path) -> Path:
    """A figure of the steps of an edge sketch (in the order of ``SKETCH_STEP_TITLES``, (B,C,H,W) maps in
    [0, 1]): one row per image, one titled column per step. The last column shows the sketch in red over
    the image with its hole greyed out."""
    image, *maps, kept = steps
    hole_view = image * (1 - 0.6 * masks) + 0.3 * masks
    overlay = torch.where(kept.bool(), torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), hole_view)
    columns = [image, *maps, overlay]
    rows = image.shape[0]
    figure = new_figure(1.9 * len(columns), 2.0 * rows)
    axes = figure.subplots(rows, len(columns), squeeze=False)
    for col, (title, tiles) in enumerate(zip(SKETCH_STEP_TITLES, columns, strict=True)):
        for row in range(rows):
            show_tile(axes[row, col], tiles[row].expand(3, -1, -1), title if row == 0 else None)
    figure.tight_layout()
    return save_figure(figure, path)
