"""Matplotlib figures without pyplot: made, drawn to an image tensor or a PNG, and released.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas, so drawing them never touches
the global pyplot state or backend (a notebook keeps its inline backend, a server needs no display).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 80


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches on an Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def figure_image(figure: Figure) -> torch.Tensor:
    """The drawn figure as a (3,H,W) tensor in [0, 1]."""
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float() / 255.0


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write the figure as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def show_tile(axis, image: torch.Tensor, title: str | None = None, **imshow) -> object:
    """Draw a (3,H,W) [0, 1] image or an (H,W) map (with ``cmap``/``norm``) into ``axis`` without ticks."""
    values = image.detach().float().cpu()
    pixels = values.permute(1, 2, 0).clamp(0, 1).numpy() if values.dim() == 3 else values.numpy()
    drawn = axis.imshow(pixels, interpolation="nearest", **imshow)
    axis.set_xticks([])
    axis.set_yticks([])
    if title is not None:
        axis.set_title(title, fontsize=9)
    return drawn
