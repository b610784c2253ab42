"""Sketch guidance: the fidelity measure, and validation scoring fills with and without each image's sketch."""

from __future__ import annotations

import math

import torch

from mtmsa.evaluation.sketch_fidelity import SketchFidelity, sketch_fidelity


def line_scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A grey image whose right half is white (an edge at column 8), a hole over the middle, a sketch on the edge."""
    image = torch.full((1, 3, 16, 16), 0.4)
    image[..., 8:] = 1.0
    masks = torch.zeros(1, 1, 16, 16)
    masks[..., 2:14, 4:12] = 1.0
    sketches = torch.zeros(1, 1, 16, 16)
    sketches[..., :, 8] = 1.0  # drawn through the hole and beyond it
    return image, masks, sketches


def test_fidelity_is_the_share_of_drawn_hole_pixels_on_an_edge():
    image, masks, sketches = line_scene()
    flat = torch.full_like(image, 0.7)
    assert sketch_fidelity(image, sketches, masks).item() == 1.0
    assert sketch_fidelity(flat, sketches, masks).item() == 0.0
    half = flat.clone()
    half[..., :8, 8:] = 1.0  # the edge drawn in the upper half only
    assert 0.3 < sketch_fidelity(half, sketches, masks).item() < 0.7
    assert math.isnan(sketch_fidelity(image, torch.zeros_like(sketches), masks).item())


def test_fidelity_metric_skips_images_without_a_drawn_line_in_the_hole():
    image, masks, sketches = line_scene()
    flat = torch.full_like(image, 0.7)
    metric = SketchFidelity(buckets=())
    metric.update(
        image.repeat(2, 1, 1, 1),
        flat.repeat(2, 1, 1, 1),
        image.repeat(2, 1, 1, 1),
        torch.cat([sketches, torch.zeros_like(sketches)]),
        masks.repeat(2, 1, 1, 1),
    )
    values = metric.compute()
    assert values.counts[-1] == 1
    assert values.total == {
        "sketch_fidelity": 1.0,
        "sketch_fidelity_without": 0.0,
        "sketch_fidelity_target": 1.0,
    }
