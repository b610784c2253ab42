"""Random shapes of holes, drawn in batches on the device: brush strokes, irregular strokes and boxes.

Each sampler is a callable ``sampler(batch_size, height, width, generator=g)`` returning parameters, not
pixels: :class:`Segments` for strokes, (B,K,4) boxes; :mod:`mtmsa.data.masks.rasterize` turns them into masks.
Shape parameters are fractions of the image size (the shorter side unless said otherwise), so one config
serves 64 px and 256 px images alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from mtmsa.data.options import option_range


class Segments(NamedTuple):
    """Stroke segments of a batch, ``S`` per sample (unused ones have a negative radius).

    starts, ends: (B,S,2) pixel coordinates (x, y); radius: (B,S) half stroke width in pixels.
    """

    starts: torch.Tensor
    ends: torch.Tensor
    radius: torch.Tensor


def device_of(generator: torch.Generator | None) -> torch.device:
    """The device masks drawn with ``generator`` are made on (the CPU for the default generator)."""
    return generator.device if generator is not None else torch.device("cpu")


def _uniform(low: float | torch.Tensor, high: float | torch.Tensor, size, generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator, device=device_of(generator))


def _integers(low: int, high: int, size, generator) -> torch.Tensor:
    """Integers uniform in [low, high] (both included)."""
    return torch.randint(low, high + 1, size, generator=generator, device=device_of(generator))


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
        self.strokes = option_range(strokes, "mask option strokes", int)
        self.vertices = option_range(vertices, "mask option vertices", int)
        self.mean_angle = float(mean_angle)
        self.angle_range = float(angle_range)
        self.width = option_range(width, "mask option width")
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
        self.strokes = option_range(strokes, "mask option strokes", int)
        self.segments = option_range(segments, "mask option segments", int)
        self.max_angle = float(max_angle)
        self.length = option_range(length, "mask option length")
        self.width = option_range(width, "mask option width")

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
        self.count = option_range(count, "mask option count", int)
        self.size = option_range(size, "mask option size")
        self.margin = float(margin)
        if not 0 <= self.margin < 0.5:
            raise ValueError(f"mask option margin must be in [0, 0.5) of the image size, got {margin}")

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        k = self.count[1]
        margin = self.margin * min(height, width)
        extent = torch.tensor([width - 2 * margin, height - 2 * margin], device=device_of(generator))
        sides = _uniform(self.size[0], self.size[1], (batch_size, k, 2), generator) * min(height, width)
        sides = torch.minimum(sides, extent)
        corners = margin + _uniform(0.0, 1.0, (batch_size, k, 2), generator) * (extent - sides)
        used = torch.arange(k, device=sides.device) < _integers(*self.count, (batch_size, 1), generator)
        return torch.cat([corners, corners + sides * used[..., None]], -1)
