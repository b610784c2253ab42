"""Validation metrics on images with known errors: PSNR/L1 in the hole and overall, buckets, head stats."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics import Metric

from mtmsa.evaluation.buckets import Bucketed, BucketedValues
from mtmsa.evaluation.metrics import (
    METRIC_NAMES,
    HeadStatistics,
    ImageMeans,
    InpaintingMetrics,
    bucket_table,
    per_image_metrics,
)


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
    assert values.counts == (1, 0, 1, 0, 0, 0, 2)
    assert float(values.total["psnr_hole"]) == pytest.approx(30.0, abs=1e-3)
    columns, rows = bucket_table(values)
    assert columns == ["hole ratio", *METRIC_NAMES]
    assert [row[0] for row in rows] == ["0-10%", "20-30%", "all"]
    assert float(rows[1][2]) == pytest.approx(40.0, abs=1e-3)  # psnr_hole of 20-30%, read by position
    metric.reset()
    metric.update(preds[:1], target[:1], masks[:1])
    assert metric.compute().counts == (1, 0, 0, 0, 0, 0, 1)  # reset empties every bucket


class Collect(Metric):
    """Remembers every value it was updated with: shows which samples a bucket's copy received."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("seen", default=[], dist_reduce_fx="cat")

    def update(self, values: torch.Tensor) -> None:
        self.seen.append(values)

    def compute(self) -> dict[str, list[float]]:
        return {"seen": torch.cat(self.seen).tolist() if self.seen else []}


def test_bucketed_sends_each_sample_to_its_bucket_and_all_of_them_to_the_total():
    masks = torch.cat([hole_mask(10, rows) for rows in (1, 3, 0, 3, 9)])  # 10%, 30%, 0%, 30%, 90%
    bucketed = Bucketed(Collect, buckets=((0.0, 0.2), (0.2, 0.4)), min_images=2)
    bucketed.update(masks[:3], torch.tensor([1.0, 2.0, 3.0]))
    bucketed.update(masks[3:], torch.tensor([4.0, 5.0]))
    values = bucketed.compute()
    assert values.counts == (2, 2, 5)
    assert [v["seen"] for v in values.values] == [[1.0, 3.0], [2.0, 4.0], [1.0, 2.0, 3.0, 4.0, 5.0]]
    assert values["seen_0-20%"] == [1.0, 3.0] and values["seen"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    alone = Bucketed(Collect, buckets=((0.0, 0.2), (0.2, 0.4)), min_images=2)
    alone.update(masks[:2], torch.tensor([1.0, 2.0]))
    few = alone.compute()
    assert few.values[0] is None and few.values[1] is None and few.total == {"seen": [1.0, 2.0]}
    assert few.rows(["seen"], counts=True) == [
        ["0-20%", 1, None],
        ["20-40%", 1, None],
        ["all", 2, [1.0, 2.0]],
    ]


def test_bucketed_values_of_several_metrics_merge_by_bucket():
    pixels = BucketedValues(((0.0, 0.5),), (2, 2), ({"psnr": 20.0}, {"psnr": 21.0}))
    fid = BucketedValues(((0.0, 0.5),), (2, 2), (None, {"fid": 90.0}))
    merged = pixels.merged(fid)
    assert merged.rows(["psnr", "fid"]) == [["0-50%", 20.0, None], ["all", 21.0, 90.0]]
    assert dict(merged) == {"psnr_0-50%": 20.0, "psnr": 21.0, "fid": 90.0}
    with pytest.raises(ValueError, match="same images"):
        pixels.merged(BucketedValues(((0.0, 0.5),), (3, 3), (None, None)))


def test_image_means_average_each_named_column():
    means = ImageMeans(("a", "b"))
    means.update(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))
    means.update(torch.tensor([[5.0, 50.0]]))
    assert {k: float(v) for k, v in means.compute().items()} == {"a": 3.0, "b": 30.0}


def test_head_statistics_per_head_mean_min_max_over_batches():
    statistics = HeadStatistics()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert statistics.compute() == {}  # before any update: no heads known yet
    first = torch.stack([torch.full((2, 3, 3), 0.1), torch.linspace(0.2, 0.6, 18).view(2, 3, 3)], dim=1)
    statistics.update(first)
    statistics.update(torch.full((1, 2, 3, 3), 0.7))
    values = {name: float(value) for name, value in statistics.compute().items()}
    assert values["head0_mean"] == pytest.approx((18 * 0.1 + 9 * 0.7) / 27)
    assert values["head1_min"] == pytest.approx(0.2)
    assert values["head1_max"] == pytest.approx(0.7)
    assert len(values) == 6
    statistics.reset()
    statistics.update(torch.full((1, 4, 2, 2), 0.3))  # another attention: as many heads as it reports
    assert len(statistics.compute()) == 12
