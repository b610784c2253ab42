import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from skimage.data import astronaut

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.sketch import EdgeSketches, NoSketches, label_components
from mtmsa.utils.filters import window_max
from mtmsa.utils.images import to_model_range

SKETCH_CONFIGS = sorted((CONFIG_DIR / "sketch").glob("*.yaml"))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Four copies of the astronaut photo at 64 px, in [-1, 1]."""
    photo = torch.from_numpy(np.ascontiguousarray(astronaut())).permute(2, 0, 1)[None].float() / 255
    return to_model_range(F.interpolate(photo, (64, 64), mode="area")).repeat(4, 1, 1, 1)


def half_holes(batch: int, size: int = 64) -> torch.Tensor:
    """Holes over the left half of the image."""
    masks = torch.zeros(batch, 1, size, size)
    masks[..., : size // 2] = 1
    return masks


def test_full_probability_gives_sketches_inside_the_dilated_hole(images):
    sketcher = EdgeSketches(p=1.0)
    masks = half_holes(4)
    sketches = sketcher(images, masks, generator=seeded(0))
    assert sketches.shape == (4, 1, 64, 64) and sketches.dtype == torch.float32
    assert set(sketches.unique().tolist()) == {0.0, 1.0}
    assert (sketches.flatten(1).sum(1) > 20).all()  # every sample has strokes
    margin = sketcher.margin_pixels(64, 64)
    assert margin == 1  # 4/256 of 64 px
    assert sketches[..., 32 + margin :].sum() == 0  # nothing right of the hole's dilated edge


def test_sketches_look_like_sparse_lines(images):
    sketches = EdgeSketches(p=1.0)(images, torch.ones(4, 1, 64, 64), generator=seeded(0))
    density = sketches.mean().item()
    assert 0.02 < density < 0.25
    neighbours = F.avg_pool2d(sketches, 3, 1, 1) * 9  # stroke pixels in each 3x3 window
    assert (sketches * (neighbours > 8.5)).sum() <= 0.02 * sketches.sum()  # lines, not filled regions
    assert (sketches * (neighbours < 1.5)).sum() <= 0.02 * sketches.sum()  # hardly any lone pixels


def test_zero_probability_gives_zeros(images):
    assert EdgeSketches(p=0.0)(images, torch.ones(4, 1, 64, 64), generator=seeded(0)).sum() == 0


def test_probability_decides_per_sample(images):
    batch = images.repeat(8, 1, 1, 1)
    sketches = EdgeSketches(p=0.5)(batch, torch.ones(32, 1, 64, 64), generator=seeded(3))
    given = (sketches.flatten(1).sum(1) > 0).sum().item()
    assert 8 <= given <= 24


def test_sketches_are_deterministic_per_seed(images):
    sketcher = EdgeSketches(p=1.0)
    masks = torch.ones(4, 1, 64, 64)
    first = sketcher(images, masks, generator=seeded(5))
    assert torch.equal(first, sketcher(images, masks, generator=seeded(5)))
    assert not torch.equal(first, sketcher(images, masks, generator=seeded(6)))


def test_flat_images_give_no_strokes():
    flat = torch.full((2, 3, 64, 64), 0.3)
    assert EdgeSketches(p=1.0)(flat, torch.ones(2, 1, 64, 64), generator=seeded(0)).sum() == 0


def test_short_fragments_are_removed():
    picture = torch.ones(1, 3, 128, 128)
    picture[..., 20:100, 60:70] = -1  # a long dark bar: long edges
    picture[..., 110:112, 20:22] = -1  # a 2x2 dot: a short closed edge
    strokes, _ = EdgeSketches(p=1.0, high_threshold=(0.3, 0.3), low_ratio=(0.5, 0.5)).strokes(
        picture, seeded(0)
    )
    assert strokes[..., 100:, :40].sum() == 0
    assert strokes[..., 20:100, 50:80].sum() > 100


def test_label_components_separates_and_joins():
    support = torch.zeros(1, 1, 8, 8)
    support[0, 0, 1, 1:5] = 1
    support[0, 0, 2, 5] = 1  # diagonal neighbour: same component
    support[0, 0, 6, 0:3] = 1
    labels = label_components(support)[0, 0]
    first, second = labels[1, 1].item(), labels[6, 0].item()
    assert labels[1, 1:5].eq(first).all() and labels[2, 5] == first
    assert labels[6, 0:3].eq(second).all() and first != second
    assert labels[support[0, 0] == 0].eq(0).all()


@pytest.mark.parametrize("radius", [0, 1, 2, 4, 6])
def test_window_max_matches_max_pool(radius):
    values = torch.randn(
        2, 3, 9, 13
    )  # negative values too: the padding must never win; a window wider than H
    assert torch.equal(window_max(values, radius), F.max_pool2d(values, 2 * radius + 1, 1, radius))


def test_no_sketches_are_zeros(images):
    masks = torch.ones(4, 1, 64, 64)
    sketches = NoSketches()(images, masks, generator=seeded(0))
    assert sketches.shape == masks.shape and sketches.sum() == 0


@pytest.mark.parametrize("path", SKETCH_CONFIGS, ids=lambda p: p.stem)
def test_sketch_configs_instantiate_and_give_valid_sketches(path, images):
    sketcher = instantiate(OmegaConf.load(path))
    masks = half_holes(4)
    sketches = sketcher(images, masks, generator=seeded(0))
    assert sketches.shape == (4, 1, 64, 64) and sketches.device == images.device
    assert set(sketches.unique().tolist()) <= {0.0, 1.0}
    assert sketches[..., 40:].sum() == 0


def test_bad_probability_is_an_error():
    with pytest.raises(ValueError, match="probability p"):
        EdgeSketches(p=1.5)


def test_sparse_sketches_are_a_few_whole_strokes(images):
    masks = torch.ones(4, 1, 64, 64)
    dense = EdgeSketches(p=1.0, sparse=0.0, drop=(0.0, 0.0), warp=0.0)
    sparse = EdgeSketches(p=1.0, sparse=1.0, sparse_strokes=(1, 1), drop=(0.0, 0.0), warp=0.0)
    cleaned, fragments = dense.strokes(images, generator=seeded(0))
    strokes_in_image = len(fragments[0][cleaned[0] > 0].unique())
    drawn = sparse.draw(images, masks, generator=seeded(0))
    assert strokes_in_image >= 3
    for sample in range(4):  # one stroke: the longest, whole
        kept = fragments[sample][drawn[sample] > 0].unique()
        sizes = torch.bincount(fragments[sample][cleaned[sample] > 0].flatten())
        assert len(kept) == 1 and int(kept) == int(sizes.argmax())
        assert torch.equal(drawn[sample] > 0, (fragments[sample] == kept) & (cleaned[sample] > 0))
    assert drawn.sum() < 0.6 * dense.draw(images, masks, generator=seeded(0)).sum()


def test_sparse_strokes_are_checked():
    with pytest.raises(ValueError, match="sparse_strokes"):
        EdgeSketches(sparse_strokes=(0, 2))
    with pytest.raises(ValueError, match="sparse must be"):
        EdgeSketches(sparse=1.5)
