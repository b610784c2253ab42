"""Classical fills to compare a model against on the same images and masks (``mtmsa.evaluate baseline=...``).

``harmonic`` and ``pull_push`` are the generator's initial fills (:mod:`mtmsa.models.initial_fill`), scored alone.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from skimage.restoration import inpaint_biharmonic

from mtmsa.models.initial_fill import harmonic_fill, pull_push_fill, smooth_fills
from mtmsa.utils.images import to_model_range, to_uint8, to_unit_range


def mean_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Fill every hole with the mean colour of its image's known pixels.

    images: (B,C,H,W); masks: (B,1,H,W), 1 = hole. A sample with no known pixel is filled with 0.
    """
    known = 1.0 - masks
    count = known.sum(dim=(2, 3), keepdim=True)
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
    return torch.where(masks.bool(), mean.expand_as(images), images)


def _opencv_fill(images: torch.Tensor, masks: torch.Tensor, method: int, radius: float) -> torch.Tensor:
    """``cv2.inpaint`` of each image on its 8-bit version; images (B,3,H,W) in [-1, 1], masks 1 = hole."""
    pixels = to_uint8(to_unit_range(images)).permute(0, 2, 3, 1).cpu().numpy()
    holes = masks[:, 0].to(torch.uint8).cpu().numpy()
    filled = np.stack([cv2.inpaint(p, h, radius, method) for p, h in zip(pixels, holes, strict=True)])
    result = to_model_range(torch.from_numpy(filled).permute(0, 3, 1, 2).float().div(255.0))
    return torch.where(masks.bool(), result.to(images), images)


def telea_fill(images: torch.Tensor, masks: torch.Tensor, radius: float = 3.0) -> torch.Tensor:
    """OpenCV's fast-marching inpainting (Telea 2004). images (B,3,H,W) in [-1, 1]; masks (B,1,H,W), 1 = hole.

    Computed on the 8-bit images on the CPU; known pixels are returned unchanged.
    """
    return _opencv_fill(images, masks, cv2.INPAINT_TELEA, radius)


def navier_stokes_fill(images: torch.Tensor, masks: torch.Tensor, radius: float = 3.0) -> torch.Tensor:
    """OpenCV's Navier-Stokes inpainting (Bertalmio et al. 2001); same conventions as :func:`telea_fill`."""
    return _opencv_fill(images, masks, cv2.INPAINT_NS, radius)


def biharmonic_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """scikit-image's biharmonic inpainting (the hole solves the biharmonic equation, so it continues the
    border's values and slopes; Damelin and Hoang 2018), kept within the range of the known values. Same
    conventions as :func:`telea_fill`; solved exactly, one sparse system per hole on the CPU (slow for large
    holes)."""
    pixels = images.detach().permute(0, 2, 3, 1).double().cpu().numpy()
    holes = masks[:, 0].bool().cpu().numpy()
    filled = np.stack([inpaint_biharmonic(p, h, channel_axis=-1) for p, h in zip(pixels, holes, strict=True)])
    result = torch.from_numpy(filled).permute(0, 3, 1, 2).clamp(-1.0, 1.0)
    return torch.where(masks.bool(), result.to(images), images)


def bounded_biharmonic_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The device's biharmonic fill (:func:`mtmsa.models.initial_fill.biharmonic_fill`) kept within the range of
    the hole's border near each pixel (:func:`~mtmsa.models.initial_fill.border_bounds`): the slopes continued
    without the bright and dark blobs where a short piece of border's slope is carried across the hole. Same
    conventions as :func:`telea_fill`."""
    return smooth_fills(images, masks, harmonic=False, bounded=True)[1]


BASELINES = {
    "mean": mean_fill,
    "telea": telea_fill,
    "ns": navier_stokes_fill,
    "pull_push": pull_push_fill,
    "harmonic": harmonic_fill,
    "biharmonic": biharmonic_fill,
    "bounded_biharmonic": bounded_biharmonic_fill,
}
"""Classical fills by name: ``fill(images (B,3,H,W) in [-1, 1], masks (B,1,H,W)) -> filled images``."""
