"""Pictures: titled grids drawn one way everywhere, temperature and attention maps with their colour bars,
and the attention found by what it returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.patches import Rectangle

from mtmsa.models.attention import IdentityAttention, TemperatureMaskedAttention
from mtmsa.models.generator import InpaintGenerator
from mtmsa.visualization.attention_maps import (
    attention_pictures,
    attention_plot,
    pick_hole_query,
    run_with_attention,
    temperature_plot,
)
from mtmsa.visualization.grids import (
    MIN_TILE_WIDTH,
    PADDING,
    PADDING_GREY,
    TITLE_HEIGHT,
    hole_view,
    mask_view,
    sketch_view,
    titled_grid,
    training_sample_grid,
)


def inputs(batch: int = 2, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    masks = torch.zeros(batch, 1, size, size)
    masks[..., 8:20, 4:28] = 1
    sketches = torch.zeros(batch, 1, size, size)
    sketches[..., 14, 4:28] = 1
    return images, masks, sketches


def test_titled_grid_puts_a_title_over_each_column_and_enlarges_small_tiles():
    images, masks, sketches = inputs(batch=3, size=16)
    grid = training_sample_grid(images, masks, sketches)
    tile = MIN_TILE_WIDTH  # 16 px tiles shown 4x
    assert grid.shape == (3, TITLE_HEIGHT + PADDING + 3 * tile + 2 * PADDING, 4 * tile + 3 * PADDING)
    strip = grid[:, :TITLE_HEIGHT]
    for column in range(4):  # some dark title pixels over every column, none over the gaps
        left = column * (tile + PADDING)
        assert (strip[:, :, left : left + tile] < 0.5).any()
    assert (strip[:, :, tile : tile + PADDING] == 1).all()
    assert (
        grid[:, TITLE_HEIGHT + PADDING :, tile : tile + PADDING] == PADDING_GREY
    ).all()  # lines between tiles
    first = grid[:, TITLE_HEIGHT + PADDING :, :tile]
    torch.testing.assert_close(
        first[:, 4:8, 4:8], ((images[0, :, 1, 1] + 1) / 2).view(3, 1, 1).expand(3, 4, 4)
    )
    large = titled_grid({"only": torch.rand(1, 3, 80, 100)})
    assert large.shape == (3, TITLE_HEIGHT + PADDING + 80, 100)  # wide enough: not enlarged


def test_holes_masks_and_sketches_are_drawn_one_way():
    images, masks, sketches = inputs()
    hole = masks.bool().expand(-1, 3, -1, -1)
    shown = hole_view(images, masks)
    assert (shown[hole] == 1).all() and torch.equal(shown[~hole], ((images + 1) / 2)[~hole])
    assert torch.equal(mask_view(masks)[hole], torch.ones(int(hole.sum())))  # the hole white
    assert (mask_view(masks)[~hole] == 0).all()
    strokes = sketches.bool().expand(-1, 3, -1, -1)
    assert (sketch_view(sketches)[strokes] == 0).all() and (sketch_view(sketches)[~strokes] == 1).all()


def test_temperature_maps_get_titled_columns_and_a_log_colour_bar_over_the_range():
    temperature = torch.full((2, 4, 8, 8), 0.1)
    temperature[:, 1] = 0.01
    inputs = torch.rand(2, 3, 32, 32)
    figure = temperature_plot(inputs, temperature, (0.01, 1.0))
    image, bar = figure.axes
    assert [text.get_text() for text in image.texts] == ["input", "head 0", "head 1", "head 2", "head 3"]
    mosaic = image.images[0].get_array()
    assert mosaic.shape == (2 * 34 - 2, 5 * 34 - 2, 3)  # 2 rows, 5 columns of 32 px tiles, 2 px apart
    np.testing.assert_allclose(mosaic[:32, :32], inputs[0].permute(1, 2, 0).numpy(), atol=1e-6)
    magma = colormaps["magma"]
    np.testing.assert_allclose(mosaic[40, 2 * 34 + 5], magma(0.0)[:3], atol=1e-6)  # head 1 at t_min: darkest
    np.testing.assert_allclose(mosaic[40, 34 + 5], magma(0.5)[:3], atol=2e-2)  # head 0 at 0.1: mid-scale
    assert bar.get_ylabel() == "temperature t (log scale)"
    assert bar.get_yscale() == "log" and bar.get_ylim() == pytest.approx((0.01, 1.0))
    assert {0.01, 0.1, 1.0} <= {round(t, 6) for t in bar.get_yticks()}  # the decades are labelled
    flat = temperature_plot(torch.rand(1, 3, 16, 16), torch.full((1, 2, 4, 4), 0.2))
    low, high = flat.axes[1].get_ylim()
    assert low < 0.2 < high  # a constant temperature without a range still gets a scale


def test_attention_map_outlines_the_query_in_every_tile_and_scales_each_head_to_its_largest_weight():
    attention = torch.softmax(torch.randn(1, 2, 16, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    figure = attention_plot(torch.rand(1, 3, 32, 32), attention, query_index=6, feature_hw=(4, 4))
    image, bar = figure.axes
    assert bar.get_ylabel() == "weight / head's max" and bar.get_ylim() == (0.0, 1.0)
    outlines = [p for p in image.patches if isinstance(p, Rectangle)]
    assert [o.get_xy() for o in outlines] == [
        (t * 34 + 2 * 8 - 0.5, 1 * 8 - 0.5) for t in range(3)
    ]  # row 1, col 2
    viridis = colormaps["viridis"]
    heads = image.images[0].get_array()[:, 34:]
    brightest = [heads[:, h * 34 : h * 34 + 32].reshape(-1, 3) for h in range(2)]
    assert all(np.isclose(tile, viridis(1.0)[:3], atol=1e-6).all(1).any() for tile in brightest)  # max = 1


def tiny_generator(attention) -> InpaintGenerator:
    torch.manual_seed(0)
    return InpaintGenerator(width=4, attention=attention).eval()


def test_the_attention_is_found_by_its_record_not_its_class():
    images, masks, sketches = inputs()

    def mtmsa(channels: int, guide_channels: int) -> TemperatureMaskedAttention:
        return TemperatureMaskedAttention(
            channels, heads=2, temperature_range=(0.05, 2.0), patch_size=3, guide_channels=guide_channels
        )

    with torch.no_grad():
        output, details = run_with_attention(tiny_generator(mtmsa), images, masks, sketches)
    assert output.refined.shape == images.shape and output.aux.temperature.shape == (2, 2, 8, 8)
    assert details.attention.shape == (1, 2, 64, 64)  # sample 0, with probabilities
    torch.testing.assert_close(details.attention.sum(-1), torch.ones(1, 2, 64))
    pictures = attention_pictures(hole_view(images, masks), output.aux, details)
    assert sorted(pictures) == ["attention", "temperature"]
    assert all(p.dim() == 3 and p.shape[0] == 3 and p.min() >= 0 and p.max() <= 1 for p in pictures.values())
    with torch.no_grad():
        output, details = run_with_attention(tiny_generator(IdentityAttention), images, masks, sketches)
    assert details is not None and details.attention is None  # found, but it has nothing to show
    assert attention_pictures(hole_view(images, masks), output.aux, details) == {}
    with torch.no_grad():
        assert run_with_attention(tiny_generator(None), images, masks, sketches)[1] is None


def test_hole_query_is_inside_the_hole():
    hole = torch.zeros(2, 1, 8, 8)
    hole[0, 0, 2:5, 3:6] = 1.0
    assert pick_hole_query(hole) == 3 * 8 + 4
    ring = torch.ones(1, 1, 5, 5)
    ring[0, 0, 1:4, 1:4] = 0.0
    index = pick_hole_query(ring)
    assert ring.flatten()[index] == 1.0
