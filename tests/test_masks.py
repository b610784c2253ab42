from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from mtmsa.conf import CONFIG_DIR
from mtmsa.data import masks as mask_module
from mtmsa.data.masks import (
    DEFAULT_BUCKETS,
    Boxes,
    BrushStrokes,
    EvaluationMasks,
    FreeFormMasks,
    IrregularStrokes,
    MaskFolder,
    MixedMasks,
    Segments,
    bucket_labels,
    bucket_of,
    fit_hole_ratio,
    hole_ratio,
    rasterize_boxes,
    rasterize_segments,
)

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
    monkeypatch.setattr(mask_module, "_RASTER_BUDGET", 40 * 40 * 4 * 3)  # three segments per chunk
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


def test_bucket_labels_and_bucket_of():
    assert bucket_labels() == ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%"]
    masks = torch.zeros(4, 1, 10, 10)
    masks[1].view(-1)[:20] = 1  # exactly 0.2: bucket [0.2, 0.3)
    masks[2].view(-1)[:59] = 1
    masks[3].view(-1)[:70] = 1  # above every bucket
    assert bucket_of(masks).tolist() == [0, 2, 5, -1]


def test_evaluation_masks_are_a_pure_function_of_seed_and_index():
    evaluation = EvaluationMasks(load(MASK_CONFIGS[0].with_name("deepfill.yaml")), seed=123)
    pair = evaluation(torch.tensor([3, 7]), 48, 48)
    single = EvaluationMasks(load(MASK_CONFIGS[0].with_name("deepfill.yaml")), seed=123)(
        torch.tensor([7]), 48, 48
    )
    assert torch.equal(pair[1], single[0])
    other_seed = EvaluationMasks(evaluation.masks, seed=124)(torch.tensor([7]), 48, 48)
    assert not torch.equal(single, other_seed)
    assert pair.device.type == "cpu" and set(pair.unique().tolist()) <= {0.0, 1.0}


def test_evaluation_masks_land_in_their_buckets():
    small_boxes = FreeFormMasks(boxes=Boxes(size=(0.1, 0.3)))  # needs fitting for the large buckets
    evaluation = EvaluationMasks(small_boxes, seed=0, max_attempts=4, attempts_per_draw=2)
    indices = torch.arange(12)
    masks = evaluation(indices, 32, 32)
    assert evaluation.bucket_of(masks).tolist() == (indices % len(DEFAULT_BUCKETS)).tolist()
    assert evaluation.labels[2] == "20-30%"


def write_png(path: Path, pixels: np.ndarray) -> None:
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def test_mask_folder_reads_both_conventions(tmp_path):
    white_square = np.zeros((8, 8), dtype=np.uint8)
    white_square[2:6, 2:6] = 255
    write_png(tmp_path / "a.png", white_square)
    write_png(tmp_path / "b.png", 255 - white_square)
    (tmp_path / "notes.txt").write_text("not a mask")
    square = torch.zeros(8, 8)
    square[2:6, 2:6] = 1

    white = MaskFolder(tmp_path, convention="hole-white")(torch.tensor([0, 1]), 8, 8)
    black = MaskFolder(tmp_path, convention="hole-black")(torch.tensor([0, 1, 2]), 8, 8)
    assert len(MaskFolder(tmp_path)) == 2
    assert torch.equal(white[0, 0], square) and torch.equal(white[1, 0], 1 - square)
    assert torch.equal(black[0, 0], 1 - square) and torch.equal(black[1, 0], square)
    assert torch.equal(black[2], black[0])  # indices wrap around


def test_mask_folder_resizes_with_nearest(tmp_path):
    half = np.zeros((4, 4), dtype=np.uint8)
    half[:, :2] = 255
    write_png(tmp_path / "half.png", half)
    resized = MaskFolder(tmp_path)(torch.tensor([0]), 16, 8)
    assert resized.shape == (1, 1, 16, 8)
    assert (resized[0, 0, :, :4] == 1).all() and (resized[0, 0, :, 4:] == 0).all()


def test_mask_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MaskFolder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="holds no mask images"):
        MaskFolder(tmp_path)
    write_png(tmp_path / "a.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="hole-white"):
        MaskFolder(tmp_path, convention="white")


def test_evaluation_masks_cache_returns_the_same_masks():
    from mtmsa.data.masks import Boxes, EvaluationMasks, FreeFormMasks

    made = EvaluationMasks(FreeFormMasks(boxes=Boxes(count=(1, 2), size=(0.2, 0.5))), seed=5, cache_size=2)
    indices = torch.tensor([0, 1, 2])
    first = made(indices, 48, 40)
    assert len(made._cache) == 2  # bounded
    assert torch.equal(made(indices, 48, 40), first)
    assert torch.equal(EvaluationMasks(made.masks, seed=5)(indices, 48, 40), first)
