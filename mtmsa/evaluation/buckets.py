"""Hole-ratio buckets, and any metric computed per bucket and over all images.

Evaluation reports every metric per 10%-wide bucket of the hole ratio (the share of hole pixels, as LaMa and
MAT do) and over all images. :class:`Bucketed` keeps one copy of a torchmetrics metric per bucket and one for
all images and sends each sample to its bucket's copy; it computes a :class:`BucketedValues`, which tables and
loggers read by bucket and metric name. The flat names loggers use (``psnr`` for all images, ``psnr_20-30%``
for a bucket) are made in one place, :func:`metric_key`, and never parsed back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchmetrics import Metric

from mtmsa.utils.images import hole_ratio

Bucket = tuple[float, float]
"""[low, high) of the hole ratio."""

DEFAULT_BUCKETS: tuple[Bucket, ...] = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
ALL = "all"
"""Label of the row over all images."""


def bucket_label(bucket: Sequence[float]) -> str:
    """``"20-30%"`` for (0.2, 0.3)."""
    low, high = bucket
    return f"{round(low * 100, 6):g}-{round(high * 100, 6):g}%"


def bucket_labels(buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> list[str]:
    """Names like "0-10%", "10-20%" for metric keys such as ``val/psnr_20-30%``."""
    return [bucket_label(bucket) for bucket in buckets]


def metric_key(name: str, bucket: Sequence[float] | None = None) -> str:
    """The flat name of a metric over all images (``psnr``) or over one bucket (``psnr_20-30%``)."""
    return name if bucket is None else f"{name}_{bucket_label(bucket)}"


def bucket_of(masks: torch.Tensor, buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> torch.Tensor:
    """(B,) long index of the bucket [low, high) holding each mask's hole ratio, -1 where none does."""
    ratio = hole_ratio(masks)
    index = torch.full(ratio.shape, -1, dtype=torch.long, device=masks.device)
    for number, (low, high) in enumerate(buckets):
        index[(ratio >= low) & (ratio < high) & (index < 0)] = number
    return index


@dataclass(frozen=True, eq=False)
class BucketedValues(Mapping[str, Any]):
    """Values of named metrics per hole-ratio bucket and over all images.

    Attributes:
        buckets: the buckets, in order.
        counts: number of images of each bucket, then of all images (one longer than ``buckets``).
        values: ``{metric name: value}`` of each bucket, then of all images; None where the metric was not
            computed (a bucket with fewer images than it needs).

    As a mapping it holds the computed values under their flat names (:func:`metric_key`), the form
    loggers take: ``values["psnr"]``, ``values["psnr_20-30%"]``.
    """

    buckets: tuple[Bucket, ...]
    counts: tuple[int, ...]
    values: tuple[dict[str, Any] | None, ...]

    @property
    def total(self) -> dict[str, Any]:
        """The values over all images."""
        return self.values[-1] or {}

    def rows(self, names: Sequence[str], counts: bool = False) -> list[list]:
        """A table: one row per bucket with images, then one over all images, each
        ``[label, (number of images,) value of each of names]``, None where a value is missing."""
        labels = [*bucket_labels(self.buckets), ALL]
        return [
            [label, *([count] if counts else []), *((values or {}).get(name) for name in names)]
            for label, count, values in zip(labels, self.counts, self.values, strict=True)
            if count > 0
        ]

    def merged(self, *others: BucketedValues) -> BucketedValues:
        """These values and those of ``others`` (other metrics of the same images and buckets) together."""
        values = [dict(v or {}) for v in self.values]
        for other in others:
            if other.buckets != self.buckets or other.counts != self.counts:
                raise ValueError("merged BucketedValues must come from the same images and buckets")
            for row, extra in zip(values, other.values, strict=True):
                row.update(extra or {})
        return BucketedValues(self.buckets, self.counts, tuple(values))

    def _items(self) -> Iterator[tuple[str, Any]]:
        for bucket, values in zip((*self.buckets, None), self.values, strict=True):
            for name, value in (values or {}).items():
                yield metric_key(name, bucket), value

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items():
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items())

    def __len__(self) -> int:
        return sum(1 for _ in self._items())


class _ImageCounts(Metric):
    """Number of images per row (bucket, then all), summed over processes."""

    full_state_update = False

    def __init__(self, rows: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("counts", default=torch.zeros(rows, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, counts: torch.Tensor) -> None:
        self.counts += counts.to(self.counts)

    def compute(self) -> torch.Tensor:
        return self.counts


class Bucketed(nn.Module):
    """One copy of a metric per hole-ratio bucket and one over all images.

    ``update(masks (B,1,H,W), *per_image)`` sends the rows of each ``per_image`` tensor (B, ...) of the samples
    in a bucket to that bucket's copy (``metric.update(*rows)``), and all of them to the copy over all images.
    ``compute()`` returns :class:`BucketedValues`; a copy is computed only with at least ``min_images``
    images (``min_images_all`` for all images), and its ``compute()`` must return ``{name: value}``.
    Counts and metric states are summed over DDP processes (torchmetrics), so every process computes the same.
    """

    def __init__(
        self,
        metric: Callable[[], Metric],
        buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS,
        min_images: int = 1,
        min_images_all: int = 1,
    ) -> None:
        super().__init__()
        self.buckets: tuple[Bucket, ...] = tuple((float(low), float(high)) for low, high in buckets)
        self.metrics = nn.ModuleList(metric() for _ in range(len(self.buckets) + 1))
        self.counts = _ImageCounts(len(self.buckets) + 1)
        self.least = [max(1, int(min_images))] * len(self.buckets) + [max(1, int(min_images_all))]

    def update(self, masks: torch.Tensor, *per_image: torch.Tensor) -> None:
        rows = bucket_of(masks, self.buckets)
        chosen = [rows == row for row in range(len(self.buckets))] + [torch.ones_like(rows, dtype=torch.bool)]
        counts = torch.stack([c.sum() for c in chosen])
        self.counts.update(counts)
        for count, samples, metric in zip(counts.tolist(), chosen, self.metrics, strict=True):
            if count:
                metric.update(*(values[samples] for values in per_image))

    def compute(self) -> BucketedValues:
        counts = tuple(int(c) for c in self.counts.compute().reshape(-1).tolist())  # one row: a scalar
        values = tuple(
            dict(metric.compute()) if count >= least else None
            for count, least, metric in zip(counts, self.least, self.metrics, strict=True)
        )
        return BucketedValues(self.buckets, counts, values)

    def reset(self) -> None:
        self.counts.reset()
        for metric in self.metrics:
            metric.reset()
