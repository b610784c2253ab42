"""The fixed masks of validation and evaluation, mask folders, and the hole-ratio buckets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.masks import Boxes, FreeFormMasks
from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, bucket_labels, bucket_of, metric_key
from mtmsa.evaluation.masks import EvaluationMasks, MaskFolder

DEEPFILL = CONFIG_DIR / "mask" / "deepfill.yaml"


def load(path: Path):
    return instantiate(OmegaConf.load(path))


def test_bucket_labels_and_bucket_of():
    assert bucket_labels() == ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%"]
    masks = torch.zeros(4, 1, 10, 10)
    masks[1].view(-1)[:20] = 1  # exactly 0.2: bucket [0.2, 0.3)
    masks[2].view(-1)[:59] = 1
    masks[3].view(-1)[:70] = 1  # above every bucket
    assert bucket_of(masks).tolist() == [0, 2, 5, -1]
    assert metric_key("psnr_hole", (0.2, 0.3)) == "psnr_hole_20-30%" and metric_key("psnr") == "psnr"


def test_evaluation_masks_are_a_pure_function_of_seed_and_index():
    evaluation = EvaluationMasks(load(DEEPFILL), seed=123)
    pair = evaluation(torch.tensor([3, 7]), 48, 48)
    single = EvaluationMasks(load(DEEPFILL), seed=123)(torch.tensor([7]), 48, 48)
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


def test_evaluation_masks_cache_returns_the_same_masks():
    made = EvaluationMasks(FreeFormMasks(boxes=Boxes(count=(1, 2), size=(0.2, 0.5))), seed=5, cache_size=2)
    indices = torch.tensor([0, 1, 2])
    first = made(indices, 48, 40)
    assert len(made._cache) == 2  # bounded
    assert torch.equal(made(indices, 48, 40), first)
    assert torch.equal(EvaluationMasks(made.masks, seed=5)(indices, 48, 40), first)


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
