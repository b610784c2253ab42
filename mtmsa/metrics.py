"""Inpainting metrics per image, averaged overall and per hole-ratio bucket (torchmetrics, DDP-safe).

Images are in [0, 1]; masks (B,1,H,W) with 1 = hole. Every metric is computed per image and then
averaged over images (the convention of the inpainting literature): PSNR/SSIM/L1 over the whole image
and over the hole only (``*_hole``: squared/absolute errors and the SSIM map averaged over hole pixels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric
from torchmetrics.functional.image import structural_similarity_index_measure

from mtmsa.data.masks import DEFAULT_BUCKETS, bucket_labels, bucket_of

METRIC_NAMES = ("psnr", "psnr_hole", "ssim", "ssim_hole", "l1", "l1_hole")


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


class InpaintingMetrics(Metric):
    """PSNR / SSIM / L1 (whole image and hole) in total and per hole-ratio bucket.

    ``compute()`` returns ``{"psnr": ..., "psnr_hole": ..., "psnr_20-30%": ..., "psnr_hole_20-30%": ...}``;
    buckets without images are left out.
    """

    full_state_update = False
    higher_is_better = None

    def __init__(self, buckets: Sequence[tuple[float, float]] = DEFAULT_BUCKETS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buckets = tuple(tuple(b) for b in buckets)
        shape = (len(self.buckets) + 1, len(METRIC_NAMES))
        self.add_state("sums", default=torch.zeros(shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("counts", default=torch.zeros(shape[0], dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> None:
        values = per_image_metrics(preds.float(), target.float(), masks.float()).double()
        rows = bucket_of(masks, self.buckets)
        inside = rows >= 0  # a mask outside every bucket counts in the total only
        self.sums[-1] += values.sum(dim=0)
        self.counts[-1] += values.shape[0]
        self.sums.index_add_(0, rows[inside], values[inside])
        self.counts.index_add_(0, rows[inside], torch.ones_like(values[inside, 0]))

    def compute(self) -> dict[str, torch.Tensor]:
        means = self.sums / self.counts.clamp_min(1.0)[:, None]
        result = {name: means[-1, j].float() for j, name in enumerate(METRIC_NAMES)}
        for i, label in enumerate(bucket_labels(self.buckets)):
            if self.counts[i] > 0:
                result.update({f"{name}_{label}": means[i, j].float() for j, name in enumerate(METRIC_NAMES)})
        return result


class HeadStatistics(Metric):
    """Mean, min and max of a (B, heads, H, W) map per head, e.g. the temperatures attention used."""

    full_state_update = False

    def __init__(self, heads: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("total", default=torch.zeros(heads, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("low", default=torch.full((heads,), float("inf")), dist_reduce_fx="min")
        self.add_state("high", default=torch.full((heads,), float("-inf")), dist_reduce_fx="max")

    def update(self, values: torch.Tensor) -> None:
        per_head = values.detach().float().transpose(0, 1).flatten(1)
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


def bucket_table(values: dict[str, torch.Tensor | float]) -> tuple[list[str], list[list]]:
    """Columns and rows (one per hole-ratio bucket present, then "all") of InpaintingMetrics values."""
    labels = sorted(
        {key.rsplit("_", 1)[1] for key in values if key.endswith("%")}, key=lambda b: float(b.split("-")[0])
    )
    rows = [
        [label, *(float(values[f"{name}_{label}" if label != "all" else name]) for name in METRIC_NAMES)]
        for label in [*labels, "all"]
    ]
    return ["hole ratio", *METRIC_NAMES], rows
