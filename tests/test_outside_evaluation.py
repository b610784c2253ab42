"""mtmsa.evaluate export_masks=DIR and predictions=DIR: another method's fills, scored on our images and masks."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from mtmsa.evaluate import evaluate
from mtmsa.evaluation.buckets import DEFAULT_BUCKETS
from mtmsa.utils.errors import UserInputError
from tests.helpers.runs import evaluate_config

SETTINGS = [
    "dataset.image_size=32",
    "dataset.resize=40",
    "limit=6",
    "batch_size=4",
    "fid=false",
    "lpips=null",
]
NAMES = [f"{i:06d}" for i in range(6)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, sample_data_dir):
    folder = tmp_path_factory.mktemp("exported") / "set"
    run = tmp_path_factory.mktemp("export_run")
    result = evaluate(evaluate_config([*SETTINGS, f"export_masks={folder}"], run, sample_data_dir))
    assert result["exported"] == 6
    return folder


def test_export_writes_images_and_masks_in_lamas_layout(exported):
    names = sorted(p.name for p in exported.iterdir())
    assert names == sorted([f"{n}.png" for n in NAMES] + [f"{n}_mask000.png" for n in NAMES])
    for index, name in enumerate(NAMES):
        image = np.asarray(Image.open(exported / f"{name}.png"))
        mask = np.asarray(Image.open(exported / f"{name}_mask000.png"))
        assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
        assert set(np.unique(mask)) <= {0, 255}
        low, high = DEFAULT_BUCKETS[index % len(DEFAULT_BUCKETS)]  # image i gets bucket i % 6
        assert low <= (mask == 255).mean() < high


def test_telea_filled_outside_scores_like_the_built_in_baseline(exported, sample_data_dir, tmp_path):
    predictions = tmp_path / "telea"
    predictions.mkdir()
    for name in NAMES:  # what a user does with any other method: read the files, fill, write <name>.png
        image = np.asarray(Image.open(exported / f"{name}.png"))
        hole = (np.asarray(Image.open(exported / f"{name}_mask000.png")) > 127).astype(np.uint8)
        Image.fromarray(cv2.inpaint(image, hole, 3.0, cv2.INPAINT_TELEA)).save(predictions / f"{name}.png")
    outside = evaluate(
        evaluate_config([*SETTINGS, f"predictions={predictions}"], tmp_path / "a", sample_data_dir)
    )
    built_in = evaluate(evaluate_config([*SETTINGS, "baseline=telea"], tmp_path / "b", sample_data_dir))
    assert outside["method"] == "predictions" and outside["images"] == 6
    for mine, theirs in zip(outside["rows"], built_in["rows"], strict=True):  # every bucket, every metric
        assert [m is None for m in mine] == [t is None for t in theirs] and mine[:2] == theirs[:2]
        assert [m for m in mine[2:] if m is not None] == pytest.approx(
            [t for t in theirs[2:] if t is not None], rel=1e-6
        )
    assert 10 < outside["metrics"]["psnr_hole"] < 40
    assert 0 < outside["metrics"]["psnr_hole_std"] < 10  # six images of six hole sizes differ
    assert outside["metrics"]["psnr_hole_std_0-10%"] == 0.0  # one image per bucket: no spread


def test_prediction_folders_that_do_not_match_are_refused_in_one_line(exported, sample_data_dir, tmp_path):
    folder = tmp_path / "predictions"
    folder.mkdir()
    for name in NAMES[:-1]:
        Image.open(exported / f"{name}.png").save(folder / f"{name}.png")
    config = evaluate_config([*SETTINGS, f"predictions={folder}"], tmp_path / "run", sample_data_dir)
    with pytest.raises(UserInputError, match=r"lacks 1 \(e.g. 000005.png\) of the 6 files named like"):
        evaluate(config)
    Image.open(exported / "000005.png").resize((30, 32)).save(folder / "000005.png")
    with pytest.raises(UserInputError, match="000005.png is 30x32 but its image is 32x32"):
        evaluate(config)
    Image.open(exported / "000005.png").save(folder / "000005.png")
    Image.open(exported / "000005.png").save(folder / "holiday.png")
    with pytest.raises(UserInputError, match=r"has 1 unexpected \(e.g. holiday.png\)"):
        evaluate(config)
    with pytest.raises(UserInputError, match="is not empty; give a new or empty folder"):
        evaluate(evaluate_config([*SETTINGS, f"export_masks={folder}"], tmp_path / "run2", sample_data_dir))
    with pytest.raises(UserInputError, match="baseline=telea and predictions=.* name two methods"):
        evaluate(
            evaluate_config(
                [*SETTINGS, "baseline=telea", f"predictions={folder}"], tmp_path / "r3", sample_data_dir
            )
        )
