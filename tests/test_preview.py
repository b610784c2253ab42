"""The data preview entry point (mtmsa.data.preview) and the OpenCV reference generators of
experiments/bench_data.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from PIL import Image

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.preview import sketch_steps, write_pictures
from mtmsa.data.sketch import EdgeSketches
from mtmsa.utils.filters import window_max
from mtmsa.utils.images import hole_ratio
from mtmsa.visualization.grids import PADDING, PADDING_GREY, TITLE_HEIGHT

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench_data():
    spec = importlib.util.spec_from_file_location("bench_data", REPO / "experiments" / "bench_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_preview_writes_grid_histograms_and_sketch_steps(sample_data_dir, tmp_path):
    overrides = [
        f"paths.data_dir={sample_data_dir}",
        f"out_dir={tmp_path}",
        "dataset.image_size=64",
        "num_samples=3",
        "sketch_step_samples=2",
        "histogram_samples=10",
        "histogram_batch_size=4",
        "all_masks=true",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("preview", overrides=overrides, return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        written = write_pictures(cfg)

    assert written["samples"] == tmp_path / "preview_sample.png"
    grid = np.asarray(Image.open(written["samples"]))
    # a title strip, then 3 rows and 4 columns (image | mask | sketch | input) of 64 px tiles, 2 px apart
    assert grid.shape == (TITLE_HEIGHT + PADDING + 3 * 66 - 2, 4 * 66 - 2, 3)
    tiles = grid[TITLE_HEIGHT + PADDING :]
    grey = round(PADDING_GREY * 255)  # the lines between tiles
    assert (tiles[:, 64:66] == grey).all() and (tiles[64:66] == grey).all()
    rows = np.concatenate([np.arange(r * 66, r * 66 + 64) for r in range(3)])  # the tiles, not the lines
    mask_tiles = tiles[rows, 66:130, 0]
    assert set(np.unique(mask_tiles)) <= {0, 255} and mask_tiles.max() == 255  # binary masks, holes white
    inputs = tiles[rows, 3 * 66 :]
    assert np.array_equal(inputs[mask_tiles == 255], np.full(((mask_tiles == 255).sum(), 3), 255))
    histogram = Image.open(written["histograms"])
    assert written["histograms"].name == "hole_ratio_histograms.png"
    assert histogram.width == 3 * 4 * 80 and histogram.height == 2 * 3 * 80  # all 6 mask configs: 2x3 panels
    assert Image.open(written["sketch_steps"]).height == 2 * 2 * 80  # 2 images, 2 inches a row at 80 dpi


def test_sketch_steps_end_in_the_sketch_that_draw_makes():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 48, 48) * 2 - 1
    masks = torch.zeros(2, 1, 48, 48)
    masks[..., 10:30, 5:40] = 1
    sketcher = EdgeSketches(p=1.0)
    steps = sketch_steps(sketcher, images, masks, seed=3)
    assert len(steps) == 7 and all(step.shape[-2:] == (48, 48) for step in steps)
    assert all(float(step.min()) >= 0 and float(step.max()) <= 1 for step in steps)
    expected = sketcher.draw(images, masks, torch.Generator().manual_seed(3))
    assert torch.equal(steps[-1], expected)


def test_missing_dataset_exits_with_code_2_and_names_the_path(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "MTMSA_DATA"}
    env["MTMSA_ROOT"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.data.preview", "dataset=celebahq"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"dataset.root={tmp_path / 'data' / 'celebahq'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "logs").exists()  # refused before the run folder is made


@pytest.mark.parametrize("name", ["box", "deepfill", "lama_medium", "lama_thick", "lama_thin", "mixed"])
def test_opencv_reference_masks_match_the_batched_hole_ratios(bench_data, name):
    masks = bench_data.load_config("mask", name)
    reference = bench_data.reference_masks(masks, 64, 96, 96, np.random.default_rng(0))
    assert reference.shape == (64, 1, 96, 96)
    assert set(np.unique(reference)) == {0, 1}
    batched = hole_ratio(masks(64, 96, 96, generator=torch.Generator().manual_seed(0)))
    reference_ratios = reference.reshape(64, -1).mean(1)
    assert abs(reference_ratios.mean() - batched.mean().item()) < 0.06
    assert abs(np.median(reference_ratios) - batched.median().item()) < 0.06
    assert reference_ratios.std() > 0.02  # not one repeated mask


def test_opencv_reference_sketches_stay_inside_the_dilated_hole(bench_data):
    sketcher = EdgeSketches(p=1.0)
    images = bench_data.photo_crops(4, 96)
    masks = np.zeros((4, 1, 96, 96), np.uint8)
    masks[..., 20:70, 10:60] = 1
    sketches = bench_data.reference_sketches(sketcher, images, masks, np.random.default_rng(0))
    assert sketches.shape == (4, 1, 96, 96) and set(np.unique(sketches)) == {0, 1}
    outside = window_max(torch.from_numpy(masks).float(), sketcher.margin_pixels(96, 96)).numpy() == 0
    assert sketches[outside].sum() == 0
