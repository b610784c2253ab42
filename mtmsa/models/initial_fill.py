"""The generator's starting point: a smooth fill of the hole from its border, computed on the device.

:class:`~mtmsa.models.generator.InpaintGenerator` predicts a residual over this fill
(``initial_fill="pull_push"``); ``python -m mtmsa.evaluate baseline=pull_push`` scores it alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
