"""The generator's starting point: a smooth fill of the hole from its border, computed on the device.

:class:`~mtmsa.models.generator.InpaintGenerator` predicts a residual over this fill
(``initial_fill="pull_push"``); ``python -m mtmsa.evaluate baseline=pull_push`` scores it alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pull_push_fill(images: torch.Tensor, masks: torch.Tensor, levels: int | None = None) -> torch.Tensor:
    """Smooth interpolation of the holes from their surroundings (pull-push, Gortler et al. 1996), batched.

    Pull: a pyramid of 2x2 sums of the known pixels and of their count, down to one pixel. Push: from the
    coarsest level up, each pixel keeps its own known average where it had known pixels (weighted by how
    many, up to 1) and takes the bilinearly enlarged coarser fill elsewhere. As good as OpenCV's Telea on
    the sample photos, on the model's device, in O(HW). images (B,C,H,W); masks (B,1,H,W), 1 = hole; a
    sample with no known pixel is filled with 0.

    ``levels``: how many pyramid levels to build; None builds as many as the size needs (halving until a
    side is 1 pixel). A fixed number, at least that many, gives the same fill from a graph whose operations
    do not depend on the size (what ONNX export needs): levels past the top are recognised by a computed
    flag, not by a Python loop over the size, and pass the coarser fill through unchanged.
    """
    known = 1.0 - masks
    needed = (min(images.shape[-2:]) - 1).bit_length() if levels is None else levels
    pyramid = []
    sums, counts = images * known, known
    for _ in range(needed):
        pyramid.append((sums, counts))
        sums, counts = _sum_2x2(sums), _sum_2x2(counts)
    fill = sums.sum(dim=(2, 3), keepdim=True) / counts.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    for sums, counts in reversed(pyramid):
        coarser = F.interpolate(fill, size=sums.shape[-2:], mode="bilinear", align_corners=False)
        weight = counts.clamp(max=1.0)
        fill = weight * sums / counts.clamp_min(1e-6) + (1.0 - weight) * coarser
        if levels is not None:
            fill = torch.where(_below_top(counts), fill, coarser)
    return torch.where(masks.bool(), fill, images)


def _sum_2x2(x: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) -> (B,C,ceil(h/2),ceil(w/2)): sums of 2x2 blocks, a zero row and column
    added (and dropped again where the side is even).

    Written as a mean times 4 (exact in floating point): ONNX export drops ``avg_pool2d``'s ``divisor_override``.
    """
    return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2) * 4.0


def _below_top(level: torch.Tensor) -> torch.Tensor:
    """Whether a pyramid level (B,C,h,w) has both sides above 1 pixel, as a 0-dim bool tensor computed from
    its shape inside the graph (a Python comparison would fix the answer for the size being traced)."""
    ones = torch.ones_like(level[0, 0])
    return (ones[:, 0].sum() > 1.5) & (ones[0].sum() > 1.5)
