"""Dashboard figures: attention entropy, reach and masking, gradient norms per part, the temperature warning."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from mtmsa.models.outputs import AttentionOutput
from mtmsa.training.dashboards import (
    attention_statistics,
    gradient_norms,
    heads_at_upper_bound,
    warn_if_temperature_at_upper_bound,
)


def one_hole_details(head_rows: list[torch.Tensor]) -> tuple[AttentionOutput, torch.Tensor]:
    """A 1x4 feature grid whose position 0 is the hole (key hole = position 0), masks at 4x the size."""
    attention = torch.zeros(1, len(head_rows), 4, 4)
    for head, row in enumerate(head_rows):
        attention[0, head, 0] = row
    hole = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 4)
    masks = torch.zeros(1, 1, 4, 16)
    masks[..., :4] = 1.0
    return AttentionOutput(attention=attention, hole=hole), masks


def test_attention_statistics_on_known_rows():
    uniform = torch.tensor([0.0, 1 / 3, 1 / 3, 1 / 3])
    peaked = torch.tensor([0.0, 0.0, 0.0, 1.0])
    statistics = attention_statistics(*one_hole_details([uniform, peaked]))
    assert statistics["entropy_head0"] == pytest.approx(1.0)  # uniform over the 3 usable keys
    assert statistics["entropy_head1"] == pytest.approx(0.0, abs=1e-6)
    assert statistics["distance_head0"] == pytest.approx(2.0)  # keys 1, 2, 3 positions away
    assert statistics["distance_head1"] == pytest.approx(3.0)
    assert statistics["mass_on_known"] == pytest.approx(1.0)
    leaking = torch.tensor([0.25, 0.25, 0.25, 0.25])
    assert attention_statistics(*one_hole_details([leaking]))["mass_on_known"] == pytest.approx(0.75)


def test_attention_statistics_need_probabilities_and_a_hole():
    details, masks = one_hole_details([torch.tensor([0.0, 1.0, 0.0, 0.0])])
    assert attention_statistics(AttentionOutput(hole=details.hole), masks) == {}
    assert attention_statistics(details, torch.zeros_like(masks)) == {}


def test_gradient_norms_per_part():
    first, second = nn.Linear(2, 1, bias=False), nn.Linear(2, 1, bias=False)
    first.weight.grad = torch.tensor([[3.0, 4.0]])
    assert {k: float(v) for k, v in gradient_norms({"a": first, "b": second}).items()} == {"a": 5.0}


def test_the_generator_parts_hold_every_parameter_so_their_norms_make_the_clipping_norm():
    """The training step clips with the total norm made from the per-part norms it logs."""
    from functools import partial

    from mtmsa.models.attention import build_mtmsa
    from mtmsa.models.generator import InpaintGenerator

    temperature = {"mode": "learned_map", "range": [0.01, 1.0], "init": 0.03}
    attention = partial(build_mtmsa, heads=2, temperature=temperature, patch_size=5, merge="replace_hole")
    generator = InpaintGenerator(width=4, attention=attention)
    part_parameters = {id(p) for part in generator.parts().values() for p in part.parameters()}
    assert part_parameters == {id(p) for p in generator.parameters()}
    images, masks = torch.rand(2, 3, 32, 32) * 2 - 1, torch.zeros(2, 1, 32, 32)
    masks[..., 8:20, 8:24] = 1.0
    generator(images, masks, torch.zeros_like(masks)).refined.square().mean().backward()
    from_parts = torch.linalg.vector_norm(torch.stack(list(gradient_norms(generator.parts()).values())))
    total = torch.nn.utils.get_total_norm([p.grad for p in generator.parameters() if p.grad is not None])
    assert float(from_parts) == pytest.approx(float(total), rel=1e-5)


def test_a_temperature_at_its_upper_bound_is_named_in_a_warning(caplog):
    temperatures = {"head0_mean": 0.05, "head0_max": 0.9, "head1_mean": 0.8, "head2_mean": 1.0}
    # log range 0.01..1: 0.8 is at 95% of it, 0.05 at 35%; only the means count
    assert heads_at_upper_bound(temperatures, (0.01, 1.0)) == [1, 2]
    with caplog.at_level(logging.WARNING):
        assert warn_if_temperature_at_upper_bound(temperatures, (0.01, 1.0), step=40) == [1, 2]
    assert "head(s) [1, 2]" in caplog.text and "not informative" in caplog.text
    assert warn_if_temperature_at_upper_bound({"head0_mean": math.sqrt(0.01)}, (0.01, 1.0), step=1) == []
