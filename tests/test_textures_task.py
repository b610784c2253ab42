"""The near-periodic texture task: reproducible batches, a hole on the attention grid inside known texture, and
an oracle copy that beats a mean fill by far without being exact."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "long_range_copy"))

import textures  # noqa: E402

from mtmsa.evaluation.baselines import mean_fill  # noqa: E402
from mtmsa.utils.images import to_unit_range  # noqa: E402


def _batch(seed: int, size: int = 48, count: int = 16) -> textures.TextureBatch:
    return textures.texture_batch(count, size, torch.Generator().manual_seed(seed))


def _boxes(masks: torch.Tensor) -> torch.Tensor:
    """(B,4) top, left, height, width of each mask's hole."""
    rows, columns = masks[:, 0].amax(dim=2), masks[:, 0].amax(dim=1)
    return torch.stack([rows.argmax(1), columns.argmax(1), rows.sum(1).long(), columns.sum(1).long()], dim=1)


def _hole_psnr(filled: torch.Tensor, batch: textures.TextureBatch) -> torch.Tensor:
    """(B,) PSNR in dB over the hole pixels, measured in [0, 1]."""
    squared = (to_unit_range(filled) - to_unit_range(batch.images)) ** 2 * batch.masks
    return 10 * torch.log10(1 / (squared.sum(dim=(1, 2, 3)) / (3 * batch.masks.sum(dim=(1, 2, 3)))))


def test_same_seed_same_batch_other_seed_other_batch():
    first, again, other = _batch(3), _batch(3), _batch(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("size", [32, 48, 96])
def test_shapes_ranges_and_periods(size):
    batch = _batch(0, size, count=8)
    assert batch.images.shape == batch.oracle.shape == (8, 3, size, size)
    assert batch.masks.shape == (8, 1, size, size) and batch.periods.shape == (8, 2)
    assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0
    assert set(batch.masks.unique().tolist()) == {0.0, 1.0}
    known = 1 - batch.masks
    assert torch.equal(batch.oracle * known, batch.images * known)
    assert batch.periods.dtype == torch.float32
    assert (batch.periods >= size / 5).all() and (batch.periods <= size / 3).all()
    assert (batch.periods >= 8).all()


@pytest.mark.parametrize("size", [32, 48, 96])
def test_hole_is_a_box_on_the_cell_grid_inside_known_texture(size):
    batch = _batch(1, size, count=32)
    boxes = _boxes(batch.masks)
    top, left, height, width = boxes.unbind(1)
    assert torch.equal(batch.masks.sum(dim=(1, 2, 3)), (height * width).float()), "one box per image"
    assert (boxes % textures.CELL == 0).all() and (boxes[:, 2:] >= 2 * textures.CELL).all()
    margins = (batch.periods / textures.CELL).ceil() * textures.CELL  # a period rounded up to cells
    assert (top >= margins[:, 0]).all() and (size - top - height >= margins[:, 0]).all()
    assert (left >= margins[:, 1]).all() and (size - left - width >= margins[:, 1]).all()
    sides = boxes[:, 2:].float() / batch.periods
    assert (sides >= 0.69).all() and (sides <= 1.5).all()
    assert (sides >= 1.0).any(dim=1).all(), "a period or more along one axis"
    assert (boxes[:, 2:] <= batch.periods.round()).any(dim=1).all(), "a period's shift clears the other axis"


def test_oracle_is_the_best_translation_copy_off_the_hole():
    batch = _batch(2, size=32, count=3)
    filled, shifts = textures.best_copy_fill(batch.images, batch.masks)
    assert torch.equal(filled, batch.oracle)
    boxes = _boxes(batch.masks).tolist()
    for image, (top, left, height, width), shift in zip(batch.images, boxes, shifts, strict=True):
        hole = image[:, top : top + height, left : left + width]
        errors = {}
        for dy in range(-15, 16):
            for dx in range(-15, 16):
                inside = 0 <= top + dy <= 32 - height and 0 <= left + dx <= 32 - width
                if inside and (abs(dy) >= height or abs(dx) >= width):
                    source = image[:, top + dy : top + dy + height, left + dx : left + dx + width]
                    errors[dy, dx] = float(((source - hole) ** 2).mean())
        assert errors[tuple(shift.tolist())] == pytest.approx(min(errors.values()), abs=1e-9)


def test_oracle_beats_mean_fill_by_far_but_is_not_exact():
    batch = _batch(5, size=48, count=64)
    oracle, mean = _hole_psnr(batch.oracle, batch), _hole_psnr(mean_fill(batch.images, batch.masks), batch)
    assert (oracle - mean).mean() > 8.0
    errors = ((batch.oracle - batch.images) ** 2 * batch.masks).sum(dim=(1, 2, 3))
    assert (errors > 0).all(), "no copy is exact: the texture is only near-periodic"


@pytest.mark.parametrize("size", [28, 30, 50, 100])
def test_bad_size_is_a_clear_error(size):
    with pytest.raises(ValueError, match=f"size={size}"):
        textures.texture_batch(2, size, torch.Generator().manual_seed(0))


def test_periods_span_several_cells_at_every_size():
    for size in textures.SIZES:
        low, high = textures.period_range(size)
        assert 8 <= low <= high <= size / 3 and low >= size / 5
        assert 3 * math.ceil(high / textures.CELL) <= size // textures.CELL, "a period's hole and margins fit"
