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
