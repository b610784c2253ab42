"""Batched hole masks: free-form strokes and boxes drawn on the device, fixed evaluation sets, mask folders.

Every mask generator is a callable ``masks(batch_size, height, width, generator=g) -> (B,1,H,W)`` float32
tensor of exactly 0/1 (1 = hole) on ``g``'s device (the CPU when ``g`` is None, using the default RNG). The
same seeded generator gives the same masks. Shape parameters are fractions of the image size (the shorter
side unless said otherwise), so one config serves 64 px and 256 px images alike.

Strokes are rasterised as capsules: a pixel is a hole when its distance to a stroke segment is at most half
the segment's width, evaluated for all samples and segments at once on a window around each segment (in
chunks of segments so that memory stays bounded); boxes likewise. No Python loop runs over pixels or samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from mtmsa.data.io import IMAGE_EXTENSIONS, read_gray
from mtmsa.data.seeds import sample_seed

DEFAULT_BUCKETS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.3), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6))
_RASTER_BUDGET = 2**24  # elements of one (B, segments, window) float chunk: 64 MiB


class Segments(NamedTuple):
    """Stroke segments of a batch, ``S`` per sample (unused ones have a negative radius).

    starts, ends: (B,S,2) pixel coordinates (x, y); radius: (B,S) half stroke width in pixels.
    """

    starts: torch.Tensor
    ends: torch.Tensor
    radius: torch.Tensor


def _device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(low: float | torch.Tensor, high: float | torch.Tensor, size, generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator, device=_device(generator))


def _integers(low: int, high: int, size, generator) -> torch.Tensor:
    """Integers uniform in [low, high] (both included)."""
    return torch.randint(low, high + 1, size, generator=generator, device=_device(generator))


def _pair(values: Sequence[float], name: str) -> tuple[float, float]:
    low, high = (float(v) for v in values)
    if not 0 <= low <= high:
        raise ValueError(
            f"mask option {name} must be a range [low, high] with 0 <= low <= high, got {list(values)}"
        )
    return low, high


def _count_range(values: Sequence[int], name: str) -> tuple[int, int]:
    low, high = (int(v) for v in values)
    if not 0 <= low <= high:
        raise ValueError(
            f"mask option {name} must be a range [low, high] of counts with 0 <= low <= high, got {list(values)}"
        )
    return low, high


def _polylines(
    starts: torch.Tensor, steps: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, ...]:
    """Walks ``steps`` (B,N,V,2) from ``starts`` (B,N,2), clipping each vertex to the image.

    Returns segment starts and ends, (B,N,V,2) each.
    """
    limit = torch.tensor([width - 1.0, height - 1.0], device=starts.device)
    vertices = [starts]
    for step in steps.unbind(2):
        vertices.append(torch.minimum(torch.clamp(vertices[-1] + step, min=0.0), limit))
    vertices = torch.stack(vertices, 2)
    return vertices[:, :, :-1], vertices[:, :, 1:]


class BrushStrokes:
    """DeepFill v2 free-form brush strokes (Yu et al., "Free-Form Image Inpainting with Gated Convolution").

    Each sample gets ``strokes`` polylines. A polyline starts at a uniform random pixel and has ``vertices``
    segments whose directions alternate around ``mean_angle`` (every even segment mirrored, giving DeepFill's
    zig-zag), drawn from ``mean_angle +- U(0, angle_range)``; segment lengths are normal with mean
    ``length`` x image diagonal and std half that, clipped to [0, 2 x mean]; one width per polyline, uniform in
    ``width`` x shorter side. DeepFill's 256 px values are 1-4 strokes, 4-12 vertices, mean angle 2pi/5, angle
    range 2pi/15, width 12-40 px and mean length diagonal/8.
    """

    def __init__(
        self,
        strokes: Sequence[int] = (1, 4),
        vertices: Sequence[int] = (4, 12),
        mean_angle: float = 2 * math.pi / 5,
        angle_range: float = 2 * math.pi / 15,
        width: Sequence[float] = (12 / 256, 40 / 256),
        length: float = 1 / 8,
    ):
        self.strokes = _count_range(strokes, "strokes")
        self.vertices = _count_range(vertices, "vertices")
        self.mean_angle = float(mean_angle)
        self.angle_range = float(angle_range)
        self.width = _pair(width, "width")
        self.length = float(length)

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> Segments:
        n, v = self.strokes[1], self.vertices[1]
        size = min(height, width)
        shape = (batch_size, n, v)
        spread_low = _uniform(0.0, self.angle_range, (batch_size, n, 1), generator)
        spread_high = _uniform(0.0, self.angle_range, (batch_size, n, 1), generator)
        angles = _uniform(self.mean_angle - spread_low, self.mean_angle + spread_high, shape, generator)
        angles = torch.where(torch.arange(v, device=angles.device) % 2 == 0, 2 * math.pi - angles, angles)
        mean_length = self.length * math.hypot(height, width)
        lengths = mean_length * (1 + 0.5 * torch.randn(shape, generator=generator, device=angles.device))
        lengths = lengths.clamp(0.0, 2 * mean_length)
        steps = torch.stack([lengths * torch.cos(angles), lengths * torch.sin(angles)], -1)
        origins = _uniform(0.0, 1.0, (batch_size, n, 2), generator) * torch.tensor(
            [width - 1.0, height - 1.0], device=angles.device
        )
        starts, ends = _polylines(origins, steps, height, width)
        radius = _uniform(self.width[0], self.width[1], (batch_size, n, 1), generator) * size / 2
        used_strokes = torch.arange(n, device=angles.device) < _integers(
            *self.strokes, (batch_size, 1), generator
        )
        used_vertices = torch.arange(v, device=angles.device) < _integers(
            *self.vertices, (batch_size, n, 1), generator
        )
        radius = torch.where(used_strokes[..., None] & used_vertices, radius, -1.0)
        return Segments(starts.flatten(1, 2), ends.flatten(1, 2), radius.flatten(1))


class IrregularStrokes:
    """LaMa irregular strokes (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier Convolutions").

    Each sample gets ``strokes`` polylines with ``segments`` segments each, starting at a uniform random pixel.
    Every segment has its own direction (angle uniform in [0, ``max_angle``) radians, mirrored to 2pi - angle on
    every even polyline, as in LaMa), length uniform in ``length`` and width uniform in ``width``, both as
    fractions of the shorter side. LaMa draws integer angles; here they are continuous.
    """

    def __init__(
        self,
        strokes: Sequence[int] = (0, 10),
        segments: Sequence[int] = (1, 5),
        max_angle: float = 4.0,
        length: Sequence[float] = (10 / 256, 70 / 256),
        width: Sequence[float] = (5 / 256, 25 / 256),
    ):
        self.strokes = _count_range(strokes, "strokes")
        self.segments = _count_range(segments, "segments")
        self.max_angle = float(max_angle)
        self.length = _pair(length, "length")
        self.width = _pair(width, "width")

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> Segments:
        n, v = self.strokes[1], self.segments[1]
        size = min(height, width)
        shape = (batch_size, n, v)
        angles = _uniform(0.0, self.max_angle, shape, generator)
        angles = torch.where(
            (torch.arange(n, device=angles.device) % 2 == 0)[:, None], 2 * math.pi - angles, angles
        )
        lengths = _uniform(self.length[0], self.length[1], shape, generator) * size
        steps = torch.stack([lengths * torch.sin(angles), lengths * torch.cos(angles)], -1)
        origins = _uniform(0.0, 1.0, (batch_size, n, 2), generator) * torch.tensor(
            [width - 1.0, height - 1.0], device=angles.device
        )
        starts, ends = _polylines(origins, steps, height, width)
        radius = _uniform(self.width[0], self.width[1], shape, generator) * size / 2
        used_strokes = torch.arange(n, device=angles.device) < _integers(
            *self.strokes, (batch_size, 1), generator
        )
        used_segments = torch.arange(v, device=angles.device) < _integers(
            *self.segments, (batch_size, n, 1), generator
        )
        radius = torch.where(used_strokes[..., None] & used_segments, radius, -1.0)
        return Segments(starts.flatten(1, 2), ends.flatten(1, 2), radius.flatten(1))


class Boxes:
    """Axis-aligned rectangles: ``count`` per sample, each side uniform in ``size`` x shorter side, placed
    uniformly at least ``margin`` x shorter side away from the border.

    Returns (B,K,4) boxes (x0, y0, x1, y1) in pixels, unused ones empty (x1 = x0).
    """

    def __init__(
        self, count: Sequence[int] = (1, 3), size: Sequence[float] = (0.1, 0.4), margin: float = 0.0
    ):
        self.count = _count_range(count, "count")
        self.size = _pair(size, "size")
        self.margin = float(margin)
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"mask option margin must be in [0, 0.5) of the image size, got {margin}")

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        k = self.count[1]
        margin = self.margin * min(height, width)
        extent = torch.tensor([width - 2 * margin, height - 2 * margin], device=_device(generator))
        sides = _uniform(self.size[0], self.size[1], (batch_size, k, 2), generator) * min(height, width)
        sides = torch.minimum(sides, extent)
        corners = margin + _uniform(0.0, 1.0, (batch_size, k, 2), generator) * (extent - sides)
        used = torch.arange(k, device=sides.device) < _integers(*self.count, (batch_size, 1), generator)
        return torch.cat([corners, corners + sides * used[..., None]], -1)


def rasterize_segments(segments: Segments, height: int, width: int) -> torch.Tensor:
    """(B,1,H,W) 0/1: pixel centres within ``radius`` of any segment (capsules with round caps).

    Each segment is evaluated only on a window around it (the size of the largest segment's bounding box
    in the batch): distance from each window pixel to the segment, thresholded by the radius, then added
    onto the canvas at the window's position. Segments are processed in chunks of bounded memory.
    """
    starts, ends, radius = segments
    batch, count = radius.shape
    device = radius.device
    reach = radius.clamp(min=0)[..., None]
    first_pixel = (torch.minimum(starts, ends) - reach).ceil()
    last_pixel = (torch.maximum(starts, ends) + reach).floor()
    span = (last_pixel - first_pixel).amax((0, 1)).tolist() if count else [0.0, 0.0]
    window_w, window_h = min(width, int(span[0]) + 1), min(height, int(span[1]) + 1)
    limit = torch.tensor([width - window_w, height - window_h], device=device, dtype=torch.float32)
    origin = torch.minimum(first_pixel.clamp(min=0), limit)
    offsets_x = torch.arange(window_w, device=device, dtype=torch.float32).view(1, 1, 1, window_w)
    offsets_y = torch.arange(window_h, device=device, dtype=torch.float32).view(1, 1, window_h, 1)
    canvas = torch.zeros(batch * height * width, device=device)
    rows_before = torch.arange(batch, device=device).view(batch, 1, 1, 1) * height
    chunk = max(1, _RASTER_BUDGET // max(1, batch * window_h * window_w))
    for first in range(0, count, chunk):
        part = slice(first, first + chunk)
        xs = origin[:, part, 0, None, None] + offsets_x  # (B,c,1,w)
        ys = origin[:, part, 1, None, None] + offsets_y  # (B,c,h,1)
        ax, ay = starts[:, part, 0, None, None], starts[:, part, 1, None, None]
        dx = ends[:, part, 0, None, None] - ax
        dy = ends[:, part, 1, None, None] - ay
        inverse = 1.0 / (dx * dx + dy * dy).clamp(min=1e-6)
        from_x, from_y = xs - ax, ys - ay  # (B,c,1,w), (B,c,h,1)
        t = (from_x * (dx * inverse) + from_y * (dy * inverse)).clamp_(0.0, 1.0)  # nearest point parameter
        off_x = torch.addcmul(from_x, t, -dx)
        off_y = torch.addcmul(from_y, t, -dy)
        r = radius[:, part, None, None]
        inside = torch.addcmul(off_x.mul_(off_x), off_y, off_y) <= r * r.abs()
        index = (rows_before + ys.long()) * width + xs.long()
        canvas.index_put_((index.flatten(),), inside.flatten().float(), accumulate=True)
    return (canvas > 0).float().view(batch, 1, height, width)


def rasterize_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B,1,H,W) 0/1: pixel centres inside any of the (B,K,4) boxes (x0, y0, x1, y1), half-open."""
    device = boxes.device
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    inside_x = (xs >= boxes[..., 0:1]) & (xs < boxes[..., 2:3])
    inside_y = (ys >= boxes[..., 1:2]) & (ys < boxes[..., 3:4])
    return (inside_y[..., :, None] & inside_x[..., None, :]).any(1, keepdim=True).float()


def hole_ratio(masks: torch.Tensor) -> torch.Tensor:
    """(B,) fraction of hole pixels of (B,1,H,W) masks."""
    return masks.flatten(1).sum(1) / masks[0].numel()


def _hole_counts(masks: torch.Tensor) -> torch.Tensor:
    return masks.flatten(1).sum(1, dtype=torch.float64)


def _in_range(masks: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """(B,) bool: low <= hole ratio < high, computed exactly from the pixel counts."""
    ratio = _hole_counts(masks) / masks[0].numel()
    return (ratio >= low) & (ratio < high)


def _count_limits(pixels: int, low: float, high: float) -> tuple[int, int]:
    """Smallest and largest hole pixel count whose ratio lies in [low, high)."""
    ratios = torch.arange(pixels + 1, dtype=torch.float64) / pixels
    allowed = torch.nonzero((ratios >= low) & (ratios < high)).flatten()
    if len(allowed) == 0:
        raise ValueError(
            f"hole ratio range [{low}, {high}) contains no achievable ratio for {pixels} pixels; widen the range"
        )
    return int(allowed[0]), int(allowed[-1])


def _grow(masks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Adds the pixels nearest to each hole (3x3 dilation steps, ties in raster order) until sample b has
    exactly ``counts[b]`` >= its current hole pixels. An empty mask grows from the image centre."""
    batch, _, height, width = masks.shape
    pixels = height * width
    region = masks.bool().clone()
    empty = ~region.flatten(1).any(1)
    region[empty, 0, height // 2, width // 2] = True
    levels = torch.where(region, 0, pixels).long()
    step = 0
    while bool((region.flatten(1).sum(1) < counts).any()) and step < height + width:
        step += 1
        grown = F.max_pool2d(region.float(), 3, 1, 1).bool()
        levels[grown & ~region] = step
        region = grown
    keys = (levels * pixels + torch.arange(pixels, device=masks.device).view(1, 1, height, width)).flatten(1)
    threshold = keys.sort(1).values.gather(1, (counts.long() - 1).clamp(min=0)[:, None])
    grown = (keys <= threshold) & (counts[:, None] > 0)
    return grown.view_as(masks).float()


def fit_hole_ratio(masks: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Deterministically moves each mask's hole ratio to the nearest value in [low, high).

    Too small holes grow by dilation order (pixels nearest to the hole first, ties in raster order); too
    large holes shrink the same way from the known region inwards (an erosion). Masks already in range are
    returned unchanged. (B,1,H,W) -> (B,1,H,W).
    """
    pixels = masks[0].numel()
    fewest, most = _count_limits(pixels, low, high)
    counts = _hole_counts(masks)
    targets = counts.clamp(fewest, most)
    grown = _grow(masks, targets.to(masks.device))
    shrunk = 1.0 - _grow(1.0 - masks, (pixels - targets).to(masks.device))
    fitted = torch.where((targets > counts).to(masks.device)[:, None, None, None], grown, shrunk)
    return torch.where((targets == counts).to(masks.device)[:, None, None, None], masks, fitted)


class MaskGenerator:
    """Base of the mask generators: optional hole-ratio range by rejection sampling.

    ``hole_ratio=(low, high)``: samples whose hole ratio is outside [low, high) are redrawn (at most
    ``max_attempts`` draws in all); the ones still outside are then moved into the range by
    :func:`fit_hole_ratio`. Subclasses implement ``sample(batch_size, height, width, generator)``.
    """

    def __init__(self, hole_ratio: Sequence[float] | None = None, max_attempts: int = 10):
        self.hole_ratio = None if hole_ratio is None else _pair(hole_ratio, "hole_ratio")
        if self.hole_ratio is not None and self.hole_ratio[1] > 1:
            raise ValueError(f"mask option hole_ratio must lie within [0, 1], got {list(hole_ratio)}")
        if max_attempts < 1:
            raise ValueError(f"mask option max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = int(max_attempts)

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        masks = self.sample(batch_size, height, width, generator)
        if self.hole_ratio is None:
            return masks
        low, high = self.hole_ratio
        for _ in range(self.max_attempts - 1):
            rejected = torch.nonzero(~_in_range(masks, low, high)).flatten()
            if len(rejected) == 0:
                return masks
            masks[rejected] = self.sample(len(rejected), height, width, generator)
        return fit_hole_ratio(masks, low, high)


class FreeFormMasks(MaskGenerator):
    """Union of stroke polylines and boxes, e.g. DeepFill v2's free-form strokes plus a box.

    Args:
        strokes: a stroke sampler (:class:`BrushStrokes`, :class:`IrregularStrokes`) or None.
        boxes: a :class:`Boxes` sampler or None. At least one of the two must be given.
        hole_ratio, max_attempts: see :class:`MaskGenerator`.
    """

    def __init__(self, strokes=None, boxes: Boxes | None = None, hole_ratio=None, max_attempts: int = 10):
        super().__init__(hole_ratio, max_attempts)
        if strokes is None and boxes is None:
            raise ValueError("FreeFormMasks needs strokes, boxes or both; both are null in the mask config")
        self.strokes = strokes
        self.boxes = boxes

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        masks = torch.zeros(batch_size, 1, height, width, device=_device(generator))
        if self.strokes is not None:
            masks = torch.maximum(
                masks, rasterize_segments(self.strokes(batch_size, height, width, generator), height, width)
            )
        if self.boxes is not None:
            masks = torch.maximum(
                masks, rasterize_boxes(self.boxes(batch_size, height, width, generator), height, width)
            )
        return masks


class MixedMasks(MaskGenerator):
    """Each sample drawn from one of several generators, picked with the given (unnormalised) probabilities.

    Args:
        generators: name -> mask generator.
        probabilities: name -> weight, same names as ``generators``.
        hole_ratio, max_attempts: see :class:`MaskGenerator`.
    """

    def __init__(
        self,
        generators: Mapping[str, MaskGenerator],
        probabilities: Mapping[str, float],
        hole_ratio=None,
        max_attempts: int = 10,
    ):
        super().__init__(hole_ratio, max_attempts)
        if set(generators) != set(probabilities) or not generators:
            raise ValueError(
                f"MixedMasks needs one probability per generator: generators {sorted(generators)}, "
                f"probabilities {sorted(probabilities)}"
            )
        self.names = sorted(generators)
        self.generators = [generators[name] for name in self.names]
        weights = torch.tensor([float(probabilities[name]) for name in self.names], dtype=torch.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"MixedMasks probabilities must be >= 0 with a positive sum, got {dict(probabilities)}"
            )
        self.cumulative = (weights.cumsum(0) / weights.sum()).float()

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        device = _device(generator)
        choice = torch.bucketize(
            torch.rand(batch_size, generator=generator, device=device), self.cumulative.to(device), right=True
        )
        choice = choice.clamp(max=len(self.generators) - 1)
        masks = torch.zeros(batch_size, 1, height, width, device=device)
        for index, masks_of in enumerate(self.generators):
            chosen = torch.nonzero(choice == index).flatten()
            if len(chosen):
                masks[chosen] = masks_of(len(chosen), height, width, generator)
        return masks


def bucket_labels(buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> list[str]:
    """Names like "0-10%", "10-20%" for metric keys such as ``val/psnr_20-30%``."""
    return [f"{round(low * 100, 6):g}-{round(high * 100, 6):g}%" for low, high in buckets]


def bucket_of(masks: torch.Tensor, buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS) -> torch.Tensor:
    """(B,) long index of the bucket [low, high) holding each mask's hole ratio, -1 where none does."""
    ratio = _hole_counts(masks) / masks[0].numel()
    index = torch.full(ratio.shape, -1, dtype=torch.long, device=masks.device)
    for number, (low, high) in enumerate(buckets):
        index[(ratio >= low) & (ratio < high) & (index < 0)] = number
    return index


class EvaluationMasks:
    """Fixed validation/test masks: a pure function of (seed, sample index).

    Sample ``i`` uses bucket ``i % len(buckets)`` and a CPU generator seeded from (seed, i). It draws
    ``attempts_per_draw`` masks from ``masks`` at a time, up to ``max_attempts`` in all, and keeps the first
    whose hole ratio lies in the bucket [low, high); if none does, the last one is moved to the nearest ratio
    inside the bucket by :func:`fit_hole_ratio` (grown by dilation or shrunk by erosion, deterministic). So
    every mask lands in its bucket, whatever the batch it is requested in.

    Call: ``(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU. Making one takes milliseconds at
    256 px, so the first ``cache_size`` masks made are kept (as bits: 8 KiB each at 256 px) and every later
    validation epoch reuses them.
    """

    def __init__(
        self,
        masks: MaskGenerator,
        seed: int,
        buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS,
        max_attempts: int = 16,
        attempts_per_draw: int = 8,
        cache_size: int = 50_000,
    ):
        self.masks = masks
        self.seed = int(seed)
        self.buckets = tuple(_pair(bucket, "bucket") for bucket in buckets)
        if not self.buckets:
            raise ValueError("EvaluationMasks needs at least one hole-ratio bucket")
        self.max_attempts = int(max_attempts)
        self.attempts_per_draw = int(attempts_per_draw)
        self.cache_size = int(cache_size)
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    @property
    def labels(self) -> list[str]:
        return bucket_labels(self.buckets)

    def bucket_of(self, masks: torch.Tensor) -> torch.Tensor:
        return bucket_of(masks, self.buckets)

    def _one(self, index: int, height: int, width: int) -> torch.Tensor:
        low, high = self.buckets[index % len(self.buckets)]
        generator = torch.Generator().manual_seed(sample_seed(self.seed, index, stream="mask"))
        for _ in range(0, self.max_attempts, self.attempts_per_draw):
            candidates = self.masks(self.attempts_per_draw, height, width, generator=generator)
            fitting = torch.nonzero(_in_range(candidates, low, high)).flatten()
            if len(fitting):
                return candidates[fitting[0]]
        return fit_hole_ratio(candidates[-1:], low, high)[0]

    def _cached(self, index: int, height: int, width: int) -> torch.Tensor:
        key = (index, height, width)
        packed = self._cache.get(key)
        if packed is not None:
            return torch.from_numpy(np.unpackbits(packed)[: height * width].reshape(1, height, width)).float()
        mask = self._one(index, height, width)
        if len(self._cache) < self.cache_size:
            self._cache[key] = np.packbits(mask.to(torch.uint8).flatten().numpy())
        return mask

    def __call__(self, indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return torch.stack([self._cached(int(i), height, width) for i in indices.tolist()])


class MaskFolder:
    """Mask images read from a folder (NVIDIA irregular masks, LaMa evaluation masks), by sorted file name.

    Args:
        root: folder with mask images (png, jpg, bmp, tif, webp).
        convention: "hole-white" (white = hole, NVIDIA's inverted set, LaMa) or "hole-black" (black = hole,
            the original NVIDIA set). There is no guessing.
        threshold: grey level in [0, 1] separating black from white.

    Call: ``(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU; index ``i`` reads file
    ``i % len(self)``, resized with nearest-neighbour interpolation.
    """

    def __init__(self, root: str | Path, convention: str = "hole-white", threshold: float = 0.5):
        self.root = Path(root)
        if convention not in ("hole-white", "hole-black"):
            raise ValueError(
                f"MaskFolder convention must be 'hole-white' or 'hole-black', got {convention!r}"
            )
        if not 0 < threshold < 1:
            raise ValueError(f"MaskFolder threshold must be in (0, 1), got {threshold}")
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"mask folder {self.root} does not exist; point the mask folder option at it"
            )
        self.files = sorted(p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise FileNotFoundError(
                f"mask folder {self.root} holds no mask images ({', '.join(IMAGE_EXTENSIONS)}); "
                "put the mask images there or point at another folder"
            )
        self.hole_white = convention == "hole-white"
        self.threshold = float(threshold)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> torch.Tensor:
        """(1,H0,W0) mask of file ``index % len(self)`` at its own size."""
        path = self.files[index % len(self.files)]
        white = torch.from_numpy(read_gray(path)) > self.threshold
        return (white if self.hole_white else ~white)[None].float()

    def __call__(self, indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
        resized = [
            F.interpolate(self.read(int(i))[None], (height, width), mode="nearest-exact")
            for i in indices.tolist()
        ]
        return torch.cat(resized)
