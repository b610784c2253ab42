from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.masks import (
    Boxes,
    BrushStrokes,
    FreeFormMasks,
    IrregularStrokes,
    MixedMasks,
    Segments,
    fit_hole_ratio,
    rasterize_boxes,
    rasterize_segments,
)
from mtmsa.data.masks import rasterize as rasterize_module
from mtmsa.utils.images import hole_ratio

MASK_CONFIGS = sorted((CONFIG_DIR / "mask").glob("*.yaml"))
# Mean hole ratio of each config (batch of 32, seed 0), measured at 64 and 256 px: 0.34/0.34, 0.27/0.27, ...
EXPECTED_MEAN_RATIO = {
    "box": (0.10, 0.25),
    "deepfill": (0.27, 0.42),
    "lama_thin": (0.20, 0.35),
    "lama_medium": (0.18, 0.32),
    "lama_thick": (0.25, 0.42),
    "mixed": (0.25, 0.42),
}


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def load(path: Path):
    return instantiate(OmegaConf.load(path))


def test_every_mask_config_has_an_expected_ratio():
    assert {path.stem for path in MASK_CONFIGS} == set(EXPECTED_MEAN_RATIO)


@pytest.mark.parametrize("path", MASK_CONFIGS, ids=lambda p: p.stem)
def test_mask_config_gives_binary_deterministic_masks(path):
    masks_of = load(path)
    masks = masks_of(6, 48, 40, generator=seeded(1))
    assert masks.shape == (6, 1, 48, 40)
    assert masks.dtype == torch.float32 and masks.device.type == "cpu"
    assert set(masks.unique().tolist()) <= {0.0, 1.0}
    assert (hole_ratio(masks) > 0).all()
    assert torch.equal(masks, masks_of(6, 48, 40, generator=seeded(1)))
    assert not torch.equal(masks, masks_of(6, 48, 40, generator=seeded(2)))


@pytest.mark.parametrize("path", MASK_CONFIGS, ids=lambda p: p.stem)
def test_mask_config_hole_ratio_mean_at_64_px(path):
    low, high = EXPECTED_MEAN_RATIO[path.stem]
    mean = hole_ratio(load(path)(32, 64, 64, generator=seeded(0))).mean().item()
    assert low < mean < high


@pytest.mark.parametrize("name", ["deepfill", "lama_thick"])
def test_hole_ratio_does_not_depend_on_resolution(name):
    masks_of = load(CONFIG_DIR / "mask" / f"{name}.yaml")
    small = hole_ratio(masks_of(32, 64, 64, generator=seeded(0))).mean().item()
    large = hole_ratio(masks_of(32, 256, 256, generator=seeded(0))).mean().item()
    low, high = EXPECTED_MEAN_RATIO[name]
    assert low < large < high
    assert abs(small - large) < 0.03


def test_no_generator_uses_the_default_rng():
    masks = FreeFormMasks(boxes=Boxes())(3, 16, 16)
    assert masks.shape == (3, 1, 16, 16) and masks.device.type == "cpu"


def test_segment_rasterisation_draws_capsules():
    segments = Segments(
        starts=torch.tensor([[[10.0, 10.0], [0.0, 0.0]]]),
        ends=torch.tensor([[[20.0, 10.0], [31.0, 31.0]]]),
        radius=torch.tensor([[2.5, -1.0]]),  # the second segment is unused
    )
    mask = rasterize_segments(segments, 32, 32)[0, 0]  # indexed [y, x]
    assert mask[10, 15] == 1 and mask[12, 15] == 1 and mask[13, 15] == 0
    assert mask[10, 8] == 1 and mask[10, 7] == 0 and mask[8, 9] == 1 and mask[8, 8] == 0  # round cap
    assert mask[10, 22] == 1 and mask[10, 23] == 0
    assert mask.sum() == 11 * 5 + 2 * 8  # 5 px wide body over x = 10..20, two caps of 8 px


def test_segment_rasterisation_matches_a_direct_distance():
    segments = BrushStrokes()(3, 40, 50, generator=seeded(5))
    ys, xs = torch.meshgrid(torch.arange(40.0), torch.arange(50.0), indexing="ij")
    pixels = torch.stack([xs, ys], -1).view(1, 1, 40, 50, 2)
    a, b = segments.starts[:, :, None, None], segments.ends[:, :, None, None]
    t = (((pixels - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1).clamp(min=1e-6)).clamp(0, 1)
    distance = (pixels - a - t[..., None] * (b - a)).norm(dim=-1)
    expected = (distance <= segments.radius[:, :, None, None]).any(1, keepdim=True).float()
    assert (rasterize_segments(segments, 40, 50) != expected).float().mean() < 1e-3  # ties may round apart


def test_segment_rasterisation_in_chunks_matches(monkeypatch):
    segments = BrushStrokes()(4, 40, 40, generator=seeded(3))
    whole = rasterize_segments(segments, 40, 40)
    monkeypatch.setattr(rasterize_module, "_RASTER_BUDGET", 40 * 40 * 4 * 3)  # three segments per chunk
    assert torch.equal(rasterize_segments(segments, 40, 40), whole)


def test_box_rasterisation_is_half_open():
    boxes = torch.tensor([[[2.0, 3.0, 6.0, 5.0], [7.0, 7.0, 7.0, 9.0]]])  # second box is empty
    mask = rasterize_boxes(boxes, 10, 10)[0, 0]
    expected = torch.zeros(10, 10)
    expected[3:5, 2:6] = 1
    assert torch.equal(mask, expected)


def test_boxes_stay_within_the_margin():
    boxes = Boxes(count=(3, 3), size=(0.2, 0.9), margin=0.1)(64, 50, 100, generator=seeded(0))
    assert (boxes[..., :2] >= 5 - 1e-4).all()
    assert (boxes[..., 2] <= 95 + 1e-4).all() and (boxes[..., 3] <= 45 + 1e-4).all()


@pytest.mark.parametrize("strokes", [BrushStrokes(), IrregularStrokes()], ids=["brush", "irregular"])
def test_stroke_vertices_stay_in_the_image(strokes):
    segments = strokes(16, 30, 60, generator=seeded(0))
    for points in (segments.starts, segments.ends):
        assert (points >= 0).all() and (points[..., 0] <= 59).all() and (points[..., 1] <= 29).all()


def test_hole_ratio_range_is_respected():
    masks_of = FreeFormMasks(strokes=BrushStrokes(), hole_ratio=(0.2, 0.3))
    ratio = hole_ratio(masks_of(32, 64, 64, generator=seeded(0)))
    assert ((ratio >= 0.2) & (ratio < 0.3)).all()
    assert ratio.std() > 0.01  # not all pushed to one value


def test_unreachable_hole_ratio_range_is_fitted():
    masks_of = FreeFormMasks(boxes=Boxes(size=(0.1, 0.2)), hole_ratio=(0.7, 0.75), max_attempts=2)
    ratio = hole_ratio(masks_of(8, 32, 32, generator=seeded(0)))
    assert ((ratio >= 0.7) & (ratio < 0.75)).all()


def test_fit_hole_ratio_grows_supersets_and_shrinks_subsets():
    masks = FreeFormMasks(strokes=BrushStrokes())(8, 32, 32, generator=seeded(4))
    grown = fit_hole_ratio(masks, 0.75, 0.9)
    shrunk = fit_hole_ratio(masks, 0.01, 0.02)
    assert (hole_ratio(grown) == 0.75).all()  # the nearest ratio in range
    assert (hole_ratio(shrunk) == torch.tensor(20 / 1024)).all()  # 0.02 excluded: 20 of 1024 pixels
    assert (grown >= masks).all() and (shrunk <= masks).all()
    assert torch.equal(fit_hole_ratio(masks, 0.0, 1.0), masks)


def test_fit_hole_ratio_grows_an_empty_mask_from_the_centre():
    grown = fit_hole_ratio(torch.zeros(1, 1, 9, 9), 9 / 81, 10 / 81)[0, 0]
    expected = torch.zeros(9, 9)
    expected[3:6, 3:6] = 1
    assert torch.equal(grown, expected)


def test_too_narrow_hole_ratio_range_is_an_error():
    with pytest.raises(ValueError, match="hole ratio range"):
        fit_hole_ratio(torch.zeros(1, 1, 4, 4), 0.51, 0.55)  # between 8/16 and 9/16


def test_mixed_masks_follow_probabilities():
    boxes_only = FreeFormMasks(boxes=Boxes(count=(1, 1)))
    strokes_only = FreeFormMasks(strokes=BrushStrokes())
    mixed = MixedMasks({"boxes": boxes_only, "strokes": strokes_only}, {"boxes": 1.0, "strokes": 0.0})
    masks = mixed(8, 32, 32, generator=seeded(0))
    rows, columns = masks.amax(3), masks.amax(2)
    rectangles = rows[..., :, None] * columns[..., None, :]
    assert torch.equal(masks, rectangles)  # every mask is exactly one box


def test_mixed_masks_reject_mismatched_names():
    with pytest.raises(ValueError, match="one probability per generator"):
        MixedMasks({"a": FreeFormMasks(boxes=Boxes())}, {"b": 1.0})


def test_free_form_masks_need_a_shape():
    with pytest.raises(ValueError, match="strokes, boxes or both"):
        FreeFormMasks()
