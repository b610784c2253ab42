"""The one place where image value ranges and the mask convention meet.

Inside the model images are float tensors in [-1, 1]; at the edges (files, metrics, loggers) they are
in [0, 1]. Masks are (B,1,H,W) with 1 = hole (missing) and 0 = known.
"""

from __future__ import annotations

import torch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1]."""
    return images * 2.0 - 1.0


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((images + 1.0) * 0.5).clamp(0.0, 1.0)


def masked_input(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Images with the holes blanked to 0 (mid-grey in [-1, 1])."""
    return images * (1.0 - masks)


def composite(prediction: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Prediction inside the hole, the original image elsewhere: known pixels are returned unchanged."""
    return torch.where(masks.bool(), prediction, images)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> uint8 of the same shape, rounded (what an 8-bit file holds), on the same device."""
    return (images.detach().float().clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)


def hole_pixels(masks: torch.Tensor) -> torch.Tensor:
    """(B,) number of hole pixels of (B,1,H,W) masks, float64 (exact)."""
    return masks.flatten(1).sum(1, dtype=torch.float64)


def hole_ratio(masks: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of hole pixels of (B,1,H,W) masks, float64: exact for every mask size."""
    return hole_pixels(masks) / masks[0].numel()
