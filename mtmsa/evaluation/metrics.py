"""Inpainting metrics per image, averaged overall and per hole-ratio bucket (torchmetrics, DDP-safe).

Images are in [0, 1]; masks (B,1,H,W) with 1 = hole. Every metric is computed per image and then
averaged over images (the convention of the inpainting literature): PSNR/SSIM/L1 over the whole image
and over the hole only (``*_hole``: squared/absolute errors and the SSIM map averaged over hole pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, Bucketed, BucketedValues

METRIC_NAMES = ("psnr", "psnr_hole", "ssim", "ssim_hole", "l1", "l1_hole")
HOLE_PSNR, HOLE_L1 = METRIC_NAMES.index("psnr_hole"), METRIC_NAMES.index("l1_hole")
"""Columns of :func:`per_image_metrics`' rows."""


def psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB for images in [0, 1]; a perfect match is capped at 100 dB."""
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))


def per_image_metrics(preds: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B, len(METRIC_NAMES)) values per image, in the order of METRIC_NAMES."""
    hole = masks.expand_as(preds)
    hole_pixels = hole.sum(dim=(1, 2, 3)).clamp_min(1.0)
    squared = (preds - target) ** 2
    absolute = (preds - target).abs()
    ssim, ssim_map = structural_similarity_index_measure(
        preds, target, data_range=1.0, reduction="none", return_full_image=True
    )
    values = [
        psnr_from_mse(squared.mean(dim=(1, 2, 3))),
        psnr_from_mse((squared * hole).sum(dim=(1, 2, 3)) / hole_pixels),
        ssim,
        (ssim_map * hole).sum(dim=(1, 2, 3)) / hole_pixels,
        absolute.mean(dim=(1, 2, 3)),
        (absolute * hole).sum(dim=(1, 2, 3)) / hole_pixels,
    ]
    return torch.stack(values, dim=1)


class ImageMeans(Metric):
    """Means over images of per-image values: ``update(values (B, len(names)))``, ``compute() -> {name: mean}``;
    with ``spread`` also ``{name}_std``, the standard deviation over the images (population: divided by n)."""

    full_state_update = False

    def __init__(self, names: Sequence[str], spread: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.names, self.spread = tuple(names), spread
        for state in ("sums", "squares") if spread else ("sums",):
            self.add_state(
                state, default=torch.zeros(len(self.names), dtype=torch.float64), dist_reduce_fx="sum"
            )
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor) -> None:
        self.sums += values.double().sum(dim=0)
        if self.spread:
            self.squares += values.double().square().sum(dim=0)
        self.count += values.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        count = self.count.clamp_min(1.0)
        means = self.sums / count
        result = {name: means[j].float() for j, name in enumerate(self.names)}
        if self.spread:
            stds = (self.squares / count - means.square()).clamp_min(0.0).sqrt()
            result.update({f"{name}_std": stds[j].float() for j, name in enumerate(self.names)})
        return result


class InpaintingMetrics(nn.Module):
    """PSNR / SSIM / L1 (whole image and hole) averaged over all images and per hole-ratio bucket.

    ``update(preds, target, masks)``; ``compute()`` returns :class:`~mtmsa.evaluation.buckets.BucketedValues`
    of :data:`METRIC_NAMES` (``values["psnr_hole"]``, ``values["psnr_hole_20-30%"]``, ``values.rows(...)``),
    with ``spread`` also their standard deviations over the images (``psnr_hole_std``); buckets without
    images are left out.
    """

    def __init__(self, buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS, spread: bool = False) -> None:
        super().__init__()
        self.bucketed = Bucketed(lambda: ImageMeans(METRIC_NAMES, spread=spread), buckets)

    def update(self, preds: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Add a batch; returns its per-image values (B, len(METRIC_NAMES))."""
        values = per_image_metrics(preds.float(), target.float(), masks.float())
        self.bucketed.update(masks, values)
        return values

    def compute(self) -> BucketedValues:
        return self.bucketed.compute()

    def reset(self) -> None:
        self.bucketed.reset()


class HeadStatistics(Metric):
    """Mean, min and max of a (B, heads, H, W) map per head, e.g. the temperatures attention used.

    The number of heads is taken from the first update (an attention reports its temperatures in an
    :class:`~mtmsa.models.outputs.AttentionOutput`; nobody has to know its class); ``compute()`` is empty
    before any update.
    """

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.zeros(0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("low", default=torch.zeros(0), dist_reduce_fx="min")
        self.add_state("high", default=torch.zeros(0), dist_reduce_fx="max")

    def update(self, values: torch.Tensor) -> None:
        per_head = values.detach().float().transpose(0, 1).flatten(1)
        if self.total.numel() != per_head.shape[0]:
            heads, device = per_head.shape[0], per_head.device
            self.total = torch.zeros(heads, dtype=torch.float64, device=device)
            self.low = torch.full((heads,), float("inf"), device=device)
            self.high = torch.full((heads,), float("-inf"), device=device)
        self.total += per_head.double().sum(dim=1)
        self.count += per_head.shape[1]
        self.low = torch.minimum(self.low, per_head.min(dim=1).values)
        self.high = torch.maximum(self.high, per_head.max(dim=1).values)

    def compute(self) -> dict[str, torch.Tensor]:
        mean = (self.total / self.count.clamp_min(1.0)).float()
        result = {}
        for head in range(mean.shape[0]):
            result.update(
                {
                    f"head{head}_mean": mean[head],
                    f"head{head}_min": self.low[head],
                    f"head{head}_max": self.high[head],
                }
            )
        return result


def bucket_table(values: BucketedValues) -> tuple[list[str], list[list]]:
    """Columns and rows (one per hole-ratio bucket with images, then "all") of InpaintingMetrics values."""
    return ["hole ratio", *METRIC_NAMES], values.rows(METRIC_NAMES)
