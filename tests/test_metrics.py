"""Validation metrics on images with known errors: PSNR/L1 in the hole and overall, buckets, head stats."""

from __future__ import annotations

import math

import pytest
import torch

from mtmsa.metrics import METRIC_NAMES, HeadStatistics, InpaintingMetrics, bucket_table, per_image_metrics


def hole_mask(size: int, rows: int) -> torch.Tensor:
    """(1,1,size,size) mask with the first ``rows`` rows a hole."""
    mask = torch.zeros(1, 1, size, size)
    mask[..., :rows, :] = 1.0
    return mask


def test_errors_inside_the_hole_only_show_in_the_hole_metrics():
    target = torch.full((1, 3, 16, 16), 0.5)
    mask = hole_mask(16, 4)  # a quarter of the image
    preds = target + 0.1 * mask
    values = dict(zip(METRIC_NAMES, per_image_metrics(preds, target, mask)[0].tolist(), strict=True))
    assert values["l1_hole"] == pytest.approx(0.1, abs=1e-6)
    assert values["l1"] == pytest.approx(0.025, abs=1e-6)
    assert values["psnr_hole"] == pytest.approx(20.0, abs=1e-3)  # mse 0.01
    assert values["psnr"] == pytest.approx(10 * math.log10(1 / 0.0025), abs=1e-3)
    assert values["ssim"] < 1.0


def test_metrics_are_averaged_per_image_and_per_bucket():
    target = torch.full((2, 3, 20, 20), 0.5)
    masks = torch.cat([hole_mask(20, 1), hole_mask(20, 5)])  # 5% and 25% holes
    preds = target + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1) * masks
    metric = InpaintingMetrics()
    metric.update(preds, target, masks)
    values = metric.compute()
    assert float(values["psnr_hole_0-10%"]) == pytest.approx(20.0, abs=1e-3)
    assert float(values["psnr_hole_20-30%"]) == pytest.approx(40.0, abs=1e-3)
    assert float(values["psnr_hole"]) == pytest.approx(30.0, abs=1e-3)  # mean of per-image PSNRs
    assert "psnr_10-20%" not in values
    columns, rows = bucket_table(values)
    assert columns == ["hole ratio", *METRIC_NAMES]
    assert [row[0] for row in rows] == ["0-10%", "20-30%", "all"]


def test_head_statistics_per_head_mean_min_max_over_batches():
    statistics = HeadStatistics(heads=2)
    first = torch.stack([torch.full((2, 3, 3), 0.1), torch.linspace(0.2, 0.6, 18).view(2, 3, 3)], dim=1)
    statistics.update(first)
    statistics.update(torch.full((1, 2, 3, 3), 0.7))
    values = {name: float(value) for name, value in statistics.compute().items()}
    assert values["head0_mean"] == pytest.approx((18 * 0.1 + 9 * 0.7) / 27)
    assert values["head1_min"] == pytest.approx(0.2)
    assert values["head1_max"] == pytest.approx(0.7)
    assert len(values) == 6
