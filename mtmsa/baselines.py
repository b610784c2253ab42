"""Classical fills to compare a model against on the same images and masks."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mtmsa.utils.images import to_model_range, to_unit_range


def mean_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Fill every hole with the mean colour of its image's known pixels.

    images: (B,C,H,W); masks: (B,1,H,W), 1 = hole. A sample with no known pixel is filled with 0.
    """
    known = 1.0 - masks
    count = known.sum(dim=(2, 3), keepdim=True)
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
    return torch.where(masks.bool(), mean.expand_as(images), images)


def pull_push_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Smooth interpolation of the holes from their surroundings (pull-push, Gortler et al. 1996), batched.

    Pull: a pyramid of 2x2 sums of the known pixels and of their count, down to one pixel. Push: from the
    coarsest level up, each pixel keeps its own known average where it had known pixels (weighted by how
    many, up to 1) and takes the bilinearly enlarged coarser fill elsewhere. As good as OpenCV's Telea on
    the sample photos, on the model's device, in O(HW). images (B,C,H,W); masks (B,1,H,W), 1 = hole; a
    sample with no known pixel is filled with 0.
    """
    known = 1.0 - masks
    levels = []
    sums, counts = images * known, known
    while min(sums.shape[-2:]) > 1:
        levels.append((sums, counts))
        sums = F.avg_pool2d(sums, 2, ceil_mode=True, divisor_override=1)
        counts = F.avg_pool2d(counts, 2, ceil_mode=True, divisor_override=1)
    fill = sums.sum(dim=(2, 3), keepdim=True) / counts.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    for sums, counts in reversed(levels):
        coarser = F.interpolate(fill, size=sums.shape[-2:], mode="bilinear", align_corners=False)
        weight = counts.clamp(max=1.0)
        fill = weight * sums / counts.clamp_min(1e-6) + (1.0 - weight) * coarser
    return torch.where(masks.bool(), fill, images)


def _opencv_fill(images: torch.Tensor, masks: torch.Tensor, method: int, radius: float) -> torch.Tensor:
    """``cv2.inpaint`` of each image on its 8-bit version; images (B,3,H,W) in [-1, 1], masks 1 = hole."""
    pixels = (to_unit_range(images) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
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


BASELINES = {"mean": mean_fill, "telea": telea_fill, "ns": navier_stokes_fill, "pull_push": pull_push_fill}
"""Classical fills by name: ``fill(images (B,3,H,W) in [-1, 1], masks (B,1,H,W)) -> filled images``."""
