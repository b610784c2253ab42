"""Attention under stress: masks that are empty, full, one pixel, one known pixel, thin lines and free-form
strokes, in float32 and in bfloat16 autocast on the CPU, for every attention option. Nothing may come out
non-finite.

Default suite: 1,000 masks at 32 px through each attention module on its own (features of the
generator's attention slot at 1/4 resolution, of ordinary and of very large magnitude), and 120 masks (20 of each kind)
at 32 px through the whole generator. ``slow``: 1,000 masks through the whole generator.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mtmsa.inference.checkpoints import build_generator
from tests.helpers.runs import train_config

ATTENTION_OPTIONS = {
    "mtmsa_learned_map": ["model/attention=mtmsa", "model.attention.temperature.mode=learned_map"],
    "mtmsa_learned_scalar": ["model/attention=mtmsa", "model.attention.temperature.mode=learned_scalar"],
    "contextual": ["model/attention=contextual"],
}
PRECISIONS = {"float32": None, "bf16_autocast": torch.bfloat16}
NOT_WRITTEN = Path("not-written")  # the run folder of the composed configs; nothing is written there
MASK_KINDS = ("empty", "full", "one_hole_pixel", "one_known_pixel", "thin_line", "free_form")


@functools.cache
def stress_masks(count: int, size: int, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """(count,1,size,size) masks cycling through MASK_KINDS, and the kind of each.

    Thin lines are 1 px rows, columns or diagonals; free-form masks are the training masks of the
    ``mask=mixed`` config (DeepFill strokes and boxes, LaMa thin/medium/thick strokes).
    """
    rng = torch.Generator().manual_seed(seed)
    free_form = instantiate(train_config(["mask=mixed"], NOT_WRITTEN).mask)
    masks = torch.zeros(count, 1, size, size)
    kinds = [MASK_KINDS[i % len(MASK_KINDS)] for i in range(count)]
    free_form_indices = [i for i, kind in enumerate(kinds) if kind == "free_form"]
    masks[free_form_indices] = free_form(len(free_form_indices), size, size, generator=rng)
    for i, kind in enumerate(kinds):
        row, column = torch.randint(0, size, (2,), generator=rng).tolist()
        if kind == "full":
            masks[i] = 1
        elif kind == "one_hole_pixel":
            masks[i, 0, row, column] = 1
        elif kind == "one_known_pixel":
            masks[i] = 1
            masks[i, 0, row, column] = 0
        elif kind == "thin_line":
            line = i // len(MASK_KINDS) % 3
            if line == 0:
                masks[i, 0, row, :] = 1
            elif line == 1:
                masks[i, 0, :, column] = 1
            else:
                masks[i, 0] = torch.eye(size)
    return masks, kinds


def stress_images(count: int, size: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [-1, 1] (noise, flat grey, saturated black/white) and sketches (none or random strokes)."""
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(count, 3, size, size, generator=rng) * 2 - 1
    images[1::4] = 0.0  # flat: zero variance everywhere
    images[2::4] = torch.sign(images[2::4])  # saturated at -1 / 1
    sketches = (torch.rand(count, 1, size, size, generator=rng) > 0.97).float()
    sketches[::2] = 0.0
    return images, sketches


def generator_for(option: str, width: int) -> torch.nn.Module:
    cfg = train_config([*ATTENTION_OPTIONS[option], f"model.generator.width={width}"], NOT_WRITTEN)
    torch.manual_seed(0)
    return build_generator(OmegaConf.to_container(cfg.model, resolve=True)).eval()


def non_finite_samples(run, inputs: tuple[torch.Tensor, ...], kinds: list[str], batch_size: int) -> dict:
    """``{"<precision>/<mask kind>": count}`` of samples with any non-finite output of ``run(*inputs)``
    (a tuple of tensors whose first dimension is the batch), in float32 and in bf16 autocast."""
    bad: dict[str, int] = {}
    with torch.inference_mode():
        for precision, dtype in PRECISIONS.items():
            for start in range(0, len(kinds), batch_size):
                part = [tensor[start : start + batch_size] for tensor in inputs]
                with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                    outputs = run(*part)
                finite = torch.stack([t.float().isfinite().flatten(1).all(1) for t in outputs]).all(0)
                assert len(finite) == len(part[0])
                for offset in torch.nonzero(~finite).flatten().tolist():
                    key = f"{precision}/{kinds[start + offset]}"
                    bad[key] = bad.get(key, 0) + 1
    return bad


def generator_stress(option: str, count: int, size: int, width: int, batch_size: int) -> dict[str, int]:
    """Non-finite samples per precision and mask kind after ``count`` masks through the generator."""
    generator = generator_for(option, width)
    masks, kinds = stress_masks(count, size)
    images, sketches = stress_images(count, size)

    def run(images, masks, sketches):
        output = generator(images, masks, sketches)
        return [output.coarse, output.refined, *output.aux.values()]

    return non_finite_samples(run, (images, masks, sketches), kinds, batch_size)


def test_stress_masks_cover_every_kind():
    masks, kinds = stress_masks(60, 32)
    ratios = masks.mean((1, 2, 3))
    by_kind = {kind: ratios[[i for i, k in enumerate(kinds) if k == kind]] for kind in MASK_KINDS}
    assert (by_kind["empty"] == 0).all() and (by_kind["full"] == 1).all()
    assert torch.allclose(by_kind["one_hole_pixel"], torch.tensor(1 / 1024))
    assert torch.allclose(by_kind["one_known_pixel"], torch.tensor(1 - 1 / 1024))
    assert torch.allclose(by_kind["thin_line"], torch.tensor(32 / 1024))
    assert ((by_kind["free_form"] > 0) & (by_kind["free_form"] < 1)).all()
    assert set(masks.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("option", ATTENTION_OPTIONS)
def test_thousand_masks_through_the_attention_module_give_finite_output(option):
    attention = generator_for(option, width=8).refinement.attention  # channels 32, as in the generator
    masks, kinds = stress_masks(1000, 32)
    rng = torch.Generator().manual_seed(2)
    features = torch.randn(1000, 32, 8, 8, generator=rng)
    guides = torch.randn(1000, 48, 8, 8, generator=rng)  # the known image the generator hands over
    for tensor in (features, guides):
        tensor[1::3] *= 1000.0  # large activations: softmax logits far outside the usual range
        tensor[2::3] = 0.0  # identical keys everywhere

    def run(features, masks, guides):
        output, aux = attention(features, masks, guide=guides)
        assert output.shape == features.shape
        return [output, *aux.values()]

    assert non_finite_samples(run, (features, masks, guides), kinds, batch_size=250) == {}


@pytest.mark.parametrize("option", ATTENTION_OPTIONS)
def test_masks_through_the_generator_give_finite_output(option):
    assert generator_stress(option, count=120, size=32, width=4, batch_size=120) == {}


@pytest.mark.slow
@pytest.mark.parametrize("option", ATTENTION_OPTIONS)
@pytest.mark.parametrize("size", [32, 64])
def test_thousand_masks_through_the_generator_give_finite_output(option, size):
    assert generator_stress(option, count=1000, size=size, width=4, batch_size=125) == {}
