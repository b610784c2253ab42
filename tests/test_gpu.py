"""On a CUDA device: training in bf16-mixed with previews, metrics kept on the device, and a checkpoint of
0.1.0 inpainting on the GPU like on the CPU. Deselected by default (``gpu`` marker): ``pytest -m gpu``."""

from __future__ import annotations

import numpy as np
import torch

from mtmsa.evaluation.metrics import HeadStatistics, InpaintingMetrics
from mtmsa.inference.checkpoints import load_generator
from mtmsa.inference.inpainter import Inpainter
from tests.helpers.run_if import RunIf
from tests.helpers.runs import CHECKPOINT_V0_1, run_training


@RunIf(min_gpus=1)
def test_bf16_training_on_the_gpu_writes_previews_and_a_checkpoint_that_loads_on_the_cpu(
    tmp_path, sample_data_dir
):
    metrics, run = run_training(
        tmp_path, sample_data_dir, ["trainer=gpu", "trainer.max_steps=4", "trainer.val_check_interval=2"]
    )
    assert all(np.isfinite(v) for v in metrics.values()) and "temperature/head0_mean" in metrics
    for name in ("inpainting", "temperature", "attention"):
        assert list((run / "previews").glob(f"{name}_step*.png")), name
    generator, _ = load_generator(run / "checkpoints" / "last.ckpt", "cpu")
    assert all(p.device.type == "cpu" for p in generator.parameters())


@RunIf(min_gpus=1)
def test_bucketed_metrics_and_head_statistics_stay_on_the_gpu():
    device = torch.device("cuda")
    metric, heads = InpaintingMetrics().to(device), HeadStatistics().to(device)
    target = torch.rand(6, 3, 16, 16, device=device)
    masks = torch.zeros(6, 1, 16, 16, device=device)
    masks[3:, :, :4] = 1
    metric.update((target + 0.05 * masks).clamp(0, 1), target, masks)
    heads.update(torch.rand(6, 4, 4, 4, device=device))
    values = metric.compute()
    assert values.counts == (3, 0, 3, 0, 0, 0, 6) and values["psnr_hole_20-30%"].device.type == "cuda"
    assert len(heads.compute()) == 12


@RunIf(min_gpus=1)
def test_a_checkpoint_of_version_0_1_inpaints_on_the_gpu_as_on_the_cpu():
    image = np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8)
    hole = np.zeros((48, 40), bool)
    hole[10:26, 8:24] = True
    results = {
        device: Inpainter(load_generator(CHECKPOINT_V0_1, device).generator, 32, device)(image, hole)
        for device in ("cpu", "cuda")
    }
    assert np.array_equal(results["cuda"][~hole], image[~hole])
    assert np.abs(results["cuda"].astype(int) - results["cpu"].astype(int)).max() <= 2
