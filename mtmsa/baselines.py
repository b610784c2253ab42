"""Classical fills to compare a model against on the same images and masks."""

from __future__ import annotations

import torch


def mean_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Fill every hole with the mean colour of its image's known pixels.

    images: (B,C,H,W); masks: (B,1,H,W), 1 = hole. A sample with no known pixel is filled with 0.
    """
    known = 1.0 - masks
    count = known.sum(dim=(2, 3), keepdim=True)
    mean = (images * known).sum(dim=(2, 3), keepdim=True) / count.clamp_min(1.0)
    return torch.where(masks.bool(), mean.expand_as(images), images)
