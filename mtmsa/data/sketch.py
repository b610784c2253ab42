"""Batched training sketches: hand-drawn-looking strokes made from each image's edges, on the device.

A sketch generator is a callable ``sketches(images (B,3,H,W) in [-1, 1], masks (B,1,H,W), generator=g)
-> (B,1,H,W)`` of exactly 0/1 (1 on a stroke) on the images' device, zero outside the slightly dilated hole,
all zeros for samples that get no sketch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import kornia
import torch
import torch.nn.functional as F

from mtmsa.data.options import option_range
from mtmsa.utils.filters import window_max
from mtmsa.utils.images import to_unit_range


def _uniform(bounds: tuple[float, float], shape, generator, device: torch.device) -> torch.Tensor:
    return bounds[0] + (bounds[1] - bounds[0]) * torch.rand(shape, generator=generator, device=device)


class NoSketches:
    """No sketch guidance: always all zeros, (B,1,H,W) like the masks."""

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, generator=None) -> torch.Tensor:
        return torch.zeros_like(masks)

    def draw(self, images: torch.Tensor, masks: torch.Tensor, generator=None) -> torch.Tensor:
        return torch.zeros_like(masks)


def label_components(support: torch.Tensor, check_every: int = 4) -> torch.Tensor:
    """8-connected components of a (B,1,H,W) 0/1 map: each pixel of a component gets the component's
    largest pixel id (raster index + 1), background 0. Float (B,1,H,W).

    Label propagation (3x3 maximum within the support) with pointer jumping (each pixel then takes the label
    of the pixel its label names), repeated until nothing changes.
    """
    batch, _, height, width = support.shape
    ids = torch.arange(1, height * width + 1, device=support.device, dtype=torch.float32)
    labels = ids.view(1, 1, height, width) * support
    while True:
        previous = labels
        for _ in range(check_every):
            labels = (window_max(labels, 1) * support).flatten(1)
            labels = F.pad(labels, (1, 0)).gather(1, labels.long()).view_as(support)
        if torch.equal(previous, labels):
            return labels


class EdgeSketches:
    """Sketches that look drawn by a person, made from the image's own edges.

    A sample gets a sketch with probability ``p`` (others get zeros). For those, every step below runs
    batched on the images' device with the given generator. Lengths are fractions of the shorter image
    side ``S`` (in brackets: pixels at S = 256), so one config serves every resolution.

    1. Greyscale of the image in [0, 1], blurred by Canny's Gaussian of std ``blur`` x S (2 px; at least
       0.5 px).
    2. Edge candidates: ``kornia.filters.canny``'s non-maximum-suppressed gradient magnitude, divided by
       the sample's own strong-edge level (its 99.9% quantile, at least 0.1 so that flat images give no
       edges), so thresholds hold at every resolution and contrast. Per-sample random thresholds: strong
       above ``high`` uniform in ``high_threshold``, weak above ``high`` x (uniform in ``low_ratio``).
    3. Clean-up into strokes: weak pixels are grouped into fragments on a grid of cells of ``join`` x S
       (2 px; at least 1) - a cell belongs to a fragment when it holds a weak pixel, cells are 8-connected
       (:func:`label_components`), so gaps narrower than a cell do not split a line. A weak pixel is kept
       when its fragment holds a strong pixel (Canny's hysteresis) and at least ``min_length`` x S weak
       pixels (24 px): short fragments and texture specks go.
    4. Partial strokes: a low-frequency random field (uniform noise on a ``drop_cells`` x ``drop_cells``
       grid, bicubic upsampled) removes the strokes where it is below its per-sample quantile ``q``, ``q``
       uniform in ``drop``: that fraction of the image area loses its strokes, in large smooth patches.
    5. Hand-drawn wobble: the strokes are warped with ``grid_sample`` by a smooth random displacement
       (normal, std ``warp`` x S (2 px) per axis, on a ``warp_cells`` x ``warp_cells`` grid, bicubic
       upsampled), bilinear, and binarised at 0.3, so lines stay connected and about 1-2 px wide.
    6. Kept only inside the hole dilated by ``hole_margin`` x S (4 px; at least 1 px), binary.

    Sparse sketches: a sample's sketch is, with probability ``sparse``, a few confident lines instead of
    most edges: step 4 keeps only the ``sparse_strokes`` (a number drawn per sample) whole strokes with the
    most pixels near the hole, and drops nothing of them. People draw a handful of lines, not every edge;
    training on both makes the model follow either.

    Args: see the steps above; ``p`` in [0, 1].
    """

    def __init__(
        self,
        p: float = 0.5,
        blur: float = 2 / 256,
        high_threshold: Sequence[float] = (0.3, 0.6),
        low_ratio: Sequence[float] = (0.4, 0.6),
        join: float = 2 / 256,
        min_length: float = 24 / 256,
        drop: Sequence[float] = (0.1, 0.4),
        drop_cells: int = 4,
        warp: float = 2 / 256,
        warp_cells: int = 6,
        hole_margin: float = 4 / 256,
        sparse: float = 0.0,
        sparse_strokes: Sequence[int] = (1, 3),
    ):
        if not 0 <= p <= 1:
            raise ValueError(f"sketch probability p must be in [0, 1], got {p}")
        self.p = float(p)
        self.blur = float(blur)
        self.high_threshold = option_range(high_threshold, "sketch option high_threshold")
        self.low_ratio = option_range(low_ratio, "sketch option low_ratio")
        if self.low_ratio[1] > 1:
            raise ValueError(f"sketch option low_ratio must lie within [0, 1], got {list(low_ratio)}")
        self.join = float(join)
        self.min_length = float(min_length)
        self.drop = option_range(drop, "sketch option drop")
        if self.drop[1] >= 1:
            raise ValueError(
                f"sketch option drop must stay below 1 (fraction of strokes removed), got {list(drop)}"
            )
        self.drop_cells = int(drop_cells)
        self.warp = float(warp)
        self.warp_cells = int(warp_cells)
        self.hole_margin = float(hole_margin)
        if not 0 <= sparse <= 1:
            raise ValueError(f"sketch option sparse must be a probability in [0, 1], got {sparse}")
        self.sparse = float(sparse)
        low, high = (int(n) for n in sparse_strokes)
        if not 1 <= low <= high:
            raise ValueError(
                f"sketch option sparse_strokes must be [low, high] with 1 <= low <= high, got {list(sparse_strokes)}"
            )
        self.sparse_strokes = (low, high)

    def margin_pixels(self, height: int, width: int) -> int:
        """Radius in pixels of the hole dilation that bounds the sketch."""
        return max(1, round(self.hole_margin * min(height, width)))

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, generator=None) -> torch.Tensor:
        given = torch.rand(images.shape[0], generator=generator, device=images.device) < self.p
        sketches = torch.zeros_like(masks)
        chosen = torch.nonzero(given).flatten()
        if len(chosen):
            sketches[chosen] = self.draw(images[chosen], masks[chosen], generator)
        return sketches

    def draw(self, images: torch.Tensor, masks: torch.Tensor, generator=None) -> torch.Tensor:
        """Sketches for every sample (no ``p``): (B,3,H,W), (B,1,H,W) -> (B,1,H,W)."""
        return self.stages(images, masks, generator)[-1]

    def stages(self, images: torch.Tensor, masks: torch.Tensor, generator=None) -> list[torch.Tensor]:
        """The (B,1,H,W) 0/1 maps after steps 3 (cleaned edges), 4 (parts dropped), 5 (wobbled) and 6
        (kept near the hole); the last one is the sketch."""
        height, width = images.shape[-2:]
        near_hole = window_max(masks, self.margin_pixels(height, width))
        cleaned, fragments = self.strokes(images, generator)
        dropped = cleaned * self.keep_field(cleaned.shape, cleaned.device, generator)
        sparse = torch.rand(images.shape[0], generator=generator, device=images.device) < self.sparse
        if sparse.any():
            longest = self.longest_strokes(cleaned, fragments, near_hole, generator)
            dropped = torch.where(sparse.view(-1, 1, 1, 1), longest, dropped)
        warped = self.wobble(dropped, generator)
        return [cleaned, dropped, warped, warped * near_hole]

    def longest_strokes(
        self, cleaned: torch.Tensor, fragments: torch.Tensor, near_hole: torch.Tensor, generator=None
    ) -> torch.Tensor:
        """Step 4 of a sparse sketch: of each sample's strokes, only the ``sparse_strokes`` (drawn per sample)
        with the most pixels near the hole, whole: a few confident lines, as a person draws."""
        batch = cleaned.shape[0]
        ids = fragments.flatten(1)
        near = (cleaned * near_hole).flatten(1)
        sizes = near.new_zeros(batch, int(ids.max()) + 1).scatter_add_(1, ids, near)
        sizes[:, 0] = 0.0  # id 0 is no fragment
        order = sizes.argsort(dim=1, descending=True, stable=True)
        rank = torch.empty_like(order).scatter_(
            1, order, torch.arange(order.shape[1], device=order.device).expand_as(order)
        )
        low, high = self.sparse_strokes
        count = torch.randint(low, high + 1, (batch, 1), generator=generator, device=cleaned.device)
        keep = (rank.gather(1, ids) < count) & (sizes.gather(1, ids) > 0)
        return cleaned * keep.view_as(cleaned)

    def strokes(self, images: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-3: (B,3,H,W) in [-1, 1] -> (B,1,H,W) 0/1 cleaned-up edges, and the (B,1,H,W) id of the
        fragment of every pixel (0: none)."""
        batch, _, height, width = images.shape
        size = min(height, width)
        sigma = max(0.5, self.blur * size)
        grey = kornia.color.rgb_to_grayscale(to_unit_range(images))
        magnitude, _ = kornia.filters.canny(
            grey, 1e-6, 1e-6, 2 * math.ceil(3 * sigma) + 1, (sigma, sigma), False
        )
        level = magnitude.flatten(1).kthvalue(math.ceil(0.999 * height * width), 1).values.clamp(min=0.1)
        magnitude = magnitude / level.view(batch, 1, 1, 1)
        high = _uniform(self.high_threshold, (batch, 1, 1, 1), generator, images.device)
        weak = (
            magnitude > high * _uniform(self.low_ratio, (batch, 1, 1, 1), generator, images.device)
        ).float()
        strong = (magnitude > high).float()
        cell = max(1, round(self.join * size))
        cells = label_components(F.max_pool2d(weak, cell, cell, ceil_mode=True))
        fragment = (
            cells.repeat_interleave(cell, 2)
            .repeat_interleave(cell, 3)[..., :height, :width]
            .long()
            .flatten(1)
        )
        count = cells[0].numel() + 1
        weak_pixels = (
            weak.new_zeros(batch, count).scatter_add_(1, fragment, weak.flatten(1)).gather(1, fragment)
        )
        strong_pixels = (
            weak.new_zeros(batch, count).scatter_add_(1, fragment, strong.flatten(1)).gather(1, fragment)
        )
        keep = (strong_pixels > 0) & (weak_pixels >= max(1, round(self.min_length * size)))
        return weak * keep.view_as(weak), fragment.view_as(weak)

    def keep_field(self, shape: torch.Size, device: torch.device, generator=None) -> torch.Tensor:
        """Step 4: (B,1,H,W) 0/1, zero on a smooth random fraction ``drop`` of the image."""
        batch, _, height, width = shape
        cells = _uniform((0.0, 1.0), (batch, 1, self.drop_cells, self.drop_cells), generator, device)
        field = F.interpolate(cells, (height, width), mode="bicubic", align_corners=False).flatten(1)
        fraction = _uniform(self.drop, (batch, 1), generator, device)
        rank = (fraction * (height * width - 1)).long()
        threshold = field.sort(1).values.gather(1, rank)
        return (field >= threshold).view(shape).float()

    def wobble(self, strokes: torch.Tensor, generator=None) -> torch.Tensor:
        """Step 5: smooth random displacement of a couple of pixels, bilinear, binarised at 0.3."""
        batch, _, height, width = strokes.shape
        std = self.warp * min(height, width)
        cells = torch.randn(
            batch, 2, self.warp_cells, self.warp_cells, generator=generator, device=strokes.device
        )
        shift = F.interpolate(cells * std, (height, width), mode="bicubic", align_corners=False)
        scale = torch.tensor([2.0 / width, 2.0 / height], device=strokes.device).view(1, 2, 1, 1)
        xs = torch.linspace(-1 + 1 / width, 1 - 1 / width, width, device=strokes.device)
        ys = torch.linspace(-1 + 1 / height, 1 - 1 / height, height, device=strokes.device)
        identity = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0)[None]
        grid = (identity + shift * scale).permute(0, 2, 3, 1)
        warped = F.grid_sample(strokes, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return (warped > 0.3).float()
