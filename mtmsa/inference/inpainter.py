"""A trained generator applied to uint8 images of any size: padded to its size multiple, and for an image
larger than the trained resolution, run in a window around the hole (shrunk to that resolution if needed).

Only hole pixels of the result ever differ from the input.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from mtmsa.utils.images import composite, to_model_range, to_uint8, to_unit_range


def context_window(hole: np.ndarray, size: int) -> tuple[slice, slice]:
    """Rows and columns of the window around a hole (H, W) bool that the model sees.

    The hole's bounding box grown by half its longer side on every side and to at least ``size`` along
    each axis (or the whole axis when shorter), shifted to stay inside the image.
    """
    rows, columns = np.nonzero(hole)
    margin = max(rows.max() - rows.min() + 1, columns.max() - columns.min() + 1) // 2

    def span(low: int, high: int, length: int) -> slice:
        extent = min(length, max(high - low + 2 * margin, size))
        start = min(max((low + high - extent) // 2, 0), length - extent)
        return slice(start, start + extent)

    return span(rows.min(), rows.max() + 1, hole.shape[0]), span(
        columns.min(), columns.max() + 1, hole.shape[1]
    )


def _shrink(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A bool map (H, W) at ``shape``: True wherever the area it covers holds any True (thin strokes survive)."""
    return cv2.resize(values.astype(np.float32), shape[::-1], interpolation=cv2.INTER_AREA) > 0


class Inpainter:
    """A generator applied to uint8 images of any size (see the module docstring).

    Call: ``(image (H,W,3) uint8, hole (H,W) bool, strokes (H,W) bool or None) -> (H,W,3) uint8`` with the
    known pixels of ``image`` unchanged. Strokes outside the hole are ignored.
    """

    def __init__(self, generator: nn.Module, trained_size: int, device: torch.device | str = "cpu") -> None:
        self.generator = generator
        self.trained_size = int(trained_size)
        self.device = torch.device(device)
        self.multiple = int(getattr(generator, "size_multiple", 1))

    def __call__(self, image: np.ndarray, hole: np.ndarray, strokes: np.ndarray | None = None) -> np.ndarray:
        if not hole.any():
            return image.copy()
        strokes = np.zeros_like(hole) if strokes is None else strokes & hole
        rows, columns = (slice(None), slice(None))
        if max(image.shape[:2]) > self.trained_size:
            rows, columns = context_window(hole, self.trained_size)
        window, window_hole = image[rows, columns], hole[rows, columns]
        height, width = window_hole.shape
        scale = min(1.0, self.trained_size / max(height, width))
        if scale < 1.0:
            small = (max(1, round(height * scale)), max(1, round(width * scale)))
            small_hole = _shrink(window_hole, small)
            resized = cv2.resize(window, small[::-1], interpolation=cv2.INTER_AREA)
            prediction = self._predict(
                resized, small_hole, _shrink(strokes[rows, columns], small) & small_hole
            )
            prediction = cv2.resize(prediction, (width, height), interpolation=cv2.INTER_CUBIC)
        else:
            prediction = self._predict(window, window_hole, strokes[rows, columns])
        result = image.copy()
        result[rows, columns][window_hole] = prediction[window_hole]
        return result

    @torch.inference_mode()
    def _predict(self, image: np.ndarray, hole: np.ndarray, strokes: np.ndarray) -> np.ndarray:
        """The generator's composited output (H,W,3) uint8, on inputs reflect-padded to the size multiple."""
        height, width = hole.shape
        pad = ((0, -height % self.multiple), (0, -width % self.multiple))
        pixels = np.pad(image, (*pad, (0, 0)), mode="reflect")
        images = to_model_range(torch.from_numpy(pixels).permute(2, 0, 1)[None].float().div(255.0))
        masks = torch.from_numpy(np.pad(hole, pad))[None, None].float()
        sketches = torch.from_numpy(np.pad(strokes, pad))[None, None].float()
        images, masks, sketches = (t.to(self.device) for t in (images, masks, sketches))
        completed = composite(self.generator(images, masks, sketches).refined, images, masks)
        pixels = to_uint8(to_unit_range(completed[0, :, :height, :width]))
        return pixels.permute(1, 2, 0).cpu().numpy()
