"""How much a sketch steers a fill: how much of the drawn line shows up as an edge in the output.

The hole PSNR and L1 with each image's own sketch and without (the same images and holes) come from two
:class:`~mtmsa.evaluation.metrics.InpaintingMetrics`; this module adds the lift in hole PSNR with its standard
error (:class:`SketchLift`), and the fidelity: the share of the sketch's pixels inside the hole where the output
has an edge, with the sketch, without it (what the fill does there anyway) and in the real image (how edge-like
the sketch's places are at all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
from torch import nn

from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, Bucketed, BucketedValues
from mtmsa.evaluation.metrics import ImageMeans
from mtmsa.utils.filters import window_max

EDGE_LEVEL = 0.05
"""A pixel is on an edge when the normalised Sobel magnitude of the grey image (in [0, 1]) exceeds this (a
step of about 0.2 in grey level across the pixel), or a neighbour's does (drawn lines wobble by a pixel)."""

FIDELITY_NAMES = ("sketch_fidelity", "sketch_fidelity_without", "sketch_fidelity_target")
LIFT, LIFT_ERROR = "sketch_lift_psnr_hole", "sketch_lift_psnr_hole_se"


def edges(images: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) in [0, 1] -> (B,1,H,W) bool: on an edge, or next to one."""
    magnitude = kornia.filters.sobel(kornia.color.rgb_to_grayscale(images.float()))
    return window_max((magnitude > EDGE_LEVEL).float(), 1) > 0.5


def sketch_fidelity(images: torch.Tensor, sketches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B,) share of each image's sketch pixels inside the hole that lie on an edge of ``images`` ([0, 1]);
    NaN for an image whose sketch has no pixel in the hole."""
    drawn = (sketches > 0.5) & (masks > 0.5)
    on_edge = (drawn & edges(images)).flatten(1).sum(dim=1).float()
    count = drawn.flatten(1).sum(dim=1).float()
    return torch.where(count > 0, on_edge / count.clamp_min(1.0), torch.full_like(count, float("nan")))


class SketchFidelity(nn.Module):
    """Mean fidelity with the sketch, without it and of the real image, per hole-ratio bucket, over the images
    whose sketch reaches into the hole (``compute()``: BucketedValues of :data:`FIDELITY_NAMES`)."""

    def __init__(self, buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> None:
        super().__init__()
        self.bucketed = Bucketed(lambda: ImageMeans(FIDELITY_NAMES), buckets)

    def update(
        self,
        with_sketch: torch.Tensor,
        without_sketch: torch.Tensor,
        target: torch.Tensor,
        sketches: torch.Tensor,
        masks: torch.Tensor,
    ) -> torch.Tensor:
        """Completed images with and without the sketch and the real ones, (B,3,H,W) in [0, 1]; returns each
        image's fidelities (B, 3) in the order of :data:`FIDELITY_NAMES`, NaN where its sketch misses the hole."""
        values = torch.stack(
            [sketch_fidelity(x, sketches, masks) for x in (with_sketch, without_sketch, target)], 1
        )
        drawn = ~values[:, 0].isnan()
        if drawn.any():
            self.bucketed.update(masks[drawn], values[drawn])
        return values

    def compute(self) -> BucketedValues:
        return self.bucketed.compute()

    def reset(self) -> None:
        self.bucketed.reset()


class SketchLift(nn.Module):
    """The lift per hole-ratio bucket: the mean over images of each image's hole PSNR with its own sketch minus
    without it (:data:`LIFT`; equal to the difference of the two mean PSNRs), and its standard error
    (:data:`LIFT_ERROR`: the per-image lifts' sample standard deviation over the square root of their number,
    None for a single image). The error treats the images as independent draws; tiles cut from the same few
    photos are not, so with few photos it understates how far the lift could move on other images.

    ``update(with_sketch (B,), without_sketch (B,), masks (B,1,H,W))``: each image's hole PSNR both ways;
    ``compute()``: BucketedValues of (:data:`LIFT`, :data:`LIFT_ERROR`).
    """

    def __init__(self, buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> None:
        super().__init__()
        self.bucketed = Bucketed(lambda: ImageMeans((LIFT,), spread=True), buckets)

    def update(self, with_sketch: torch.Tensor, without_sketch: torch.Tensor, masks: torch.Tensor) -> None:
        self.bucketed.update(masks, (with_sketch - without_sketch).unsqueeze(1))

    def compute(self) -> BucketedValues:
        values = self.bucketed.compute()
        rows = tuple(
            None
            if row is None
            else {
                LIFT: row[LIFT],
                LIFT_ERROR: row[f"{LIFT}_std"] / math.sqrt(count - 1) if count > 1 else None,
            }
            for count, row in zip(values.counts, values.values, strict=True)
        )
        return BucketedValues(values.buckets, values.counts, rows)

    def reset(self) -> None:
        self.bucketed.reset()


def sketch_bucket_table(lift: BucketedValues, fidelity: BucketedValues) -> tuple[list[str], list[list]]:
    """Columns and rows (one per hole-ratio bucket with images, then "all") of the lift and the fidelities: the
    number of images the lift is over, :data:`LIFT`, :data:`LIFT_ERROR`, then :data:`FIDELITY_NAMES` (over the
    images whose sketch reaches into the hole: None where a bucket has none)."""
    fidelities = {label: values for label, *values in fidelity.rows(FIDELITY_NAMES)}
    missing = [None] * len(FIDELITY_NAMES)
    rows = [row + fidelities.get(row[0], missing) for row in lift.rows((LIFT, LIFT_ERROR), counts=True)]
    return ["hole ratio", "images", LIFT, LIFT_ERROR, *FIDELITY_NAMES], rows
