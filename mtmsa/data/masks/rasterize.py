"""Masks from shapes: stroke segments as capsules and boxes, rasterised for a whole batch at once.

Strokes are rasterised as capsules: a pixel is a hole when its distance to a stroke segment is at most half
the segment's width, evaluated for all samples and segments at once on a window around each segment (in
chunks of segments so that memory stays bounded); boxes likewise. No Python loop runs over pixels or samples.
"""

from __future__ import annotations

import torch

from mtmsa.data.masks.samplers import Segments

_RASTER_BUDGET = 2**24  # elements of one (B, segments, window) float chunk: 64 MiB


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
