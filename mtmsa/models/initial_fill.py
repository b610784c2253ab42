"""The generator's starting point: a smooth fill of the hole from its border, computed on the device.

:class:`~mtmsa.models.generator.InpaintGenerator` predicts a residual over this fill
(``initial_fill="pull_push"``); ``python -m mtmsa.evaluate baseline=pull_push`` scores it alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pull_push_fill(
    images: torch.Tensor, masks: torch.Tensor, levels: int | None = None, smoothing_steps: int = 0
) -> torch.Tensor:
    """Smooth interpolation of the holes from their surroundings (pull-push, Gortler et al. 1996), batched.

    Pull: a pyramid of 2x2 sums of the known pixels and of their count, down to one pixel. Push: from the
    coarsest level up, each pixel keeps its own known average where it had known pixels (weighted by how
    many, up to 1) and takes the bilinearly enlarged coarser fill elsewhere. As good as OpenCV's Telea on
    the sample photos, on the model's device, in O(HW). images (B,C,H,W); masks (B,1,H,W), 1 = hole; a
    sample with no known pixel is filled with 0.

    ``smoothing_steps``: Jacobi steps of Laplace's equation run at each level after the push, the known
    pixels held (partly known ones in proportion): coarse to fine, a cascadic multigrid that turns the fill
    into the harmonic interpolation of the border (see :func:`harmonic_fill`); 0 is plain pull-push.

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
        average = sums / counts.clamp_min(1e-6)
        fill = weight * average + (1.0 - weight) * coarser
        for _ in range(smoothing_steps):
            fill = weight * average + (1.0 - weight) * _neighbour_mean(fill)
        if levels is not None:
            fill = torch.where(_below_top(counts), fill, coarser)
    return torch.where(masks.bool(), fill, images)


HARMONIC_SMOOTHING_STEPS = 20
"""Jacobi steps per pyramid level of :func:`harmonic_fill`."""


def harmonic_fill(images: torch.Tensor, masks: torch.Tensor, levels: int | None = None) -> torch.Tensor:
    """The hole filled with the harmonic interpolation of its border (Laplace's equation, the hole's values
    the average of their four neighbours), solved by pull-push with :data:`HARMONIC_SMOOTHING_STEPS`
    Jacobi steps per level. Smoother across the hole than pull-push, whose blocky pyramid it starts from,
    and computed the same way on the device. Arguments as :func:`pull_push_fill`.
    """
    return pull_push_fill(images, masks, levels, smoothing_steps=HARMONIC_SMOOTHING_STEPS)


def _neighbour_mean(x: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) -> the same: the mean of each pixel's four neighbours, edges replicated."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return 0.25 * (
        padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]
    )


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
