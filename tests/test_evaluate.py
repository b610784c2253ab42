"""mtmsa.evaluate end to end on the sample photos, FID against a reference computation, LPIPS fallback."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from mtmsa.data.datasets import DatasetNotFoundError
from mtmsa.evaluate import evaluate
from mtmsa.evaluation.fid import FID, InceptionFeatures, PrecomputedFeatures, inception_weights_path
from mtmsa.evaluation.lpips import LPIPS, lpips_unavailable_reason
from mtmsa.visualization.grids import MIN_TILE_WIDTH, PADDING, TITLE_HEIGHT
from tests.helpers.runs import CHECKPOINT_V0_1, evaluate_config, run_cli

TINY_DATA = ["dataset.image_size=32", "dataset.resize=40"]


def test_checkpoint_evaluation_writes_bucketed_tables_and_samples(checkpoint, sample_data_dir, tmp_path):
    overrides = [f"ckpt_path={checkpoint}", "limit=7", "batch_size=4", "samples=5"]
    results = evaluate(evaluate_config(TINY_DATA + overrides, tmp_path, sample_data_dir))
    assert results["method"] == "model" and results["images"] == 7
    rows = {row[0]: row for row in results["rows"]}
    # Sample i gets bucket i % 6: the first bucket holds images 0 and 6, the others one each.
    assert list(rows) == ["0-10%", "10-20%", "20-30%", "30-40%", "40-50%", "50-60%", "all"]
    assert [row[1] for row in rows.values()] == [2, 1, 1, 1, 1, 1, 7]
    metrics = results["metrics"]
    assert 5 < metrics["psnr_hole"] < metrics["psnr"] < 60 and 0 < metrics["ssim"] <= 1
    assert metrics["fid"] > 0 and metrics["fid_0-10%"] is None  # buckets need fid_min_images (2048)
    assert metrics["lpips"] is None and any(note.startswith("LPIPS unavailable") for note in results["notes"])
    assert json.loads((tmp_path / "metrics.json").read_text())["rows"] == results["rows"]
    csv_lines = (tmp_path / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("hole ratio,images,psnr,psnr_hole") and csv_lines[-1].startswith("all,7,")
    markdown = (tmp_path / "metrics.md").read_text()
    assert "| 10-20% | 1 |" in markdown and "n/a" in markdown and "unavailable" in markdown
    # Every image's own row, by file name, whose mean is the table's "all" row.
    with open(tmp_path / "per_image.csv", newline="") as file:
        images = list(csv.DictReader(file))
    names = [row["image"] for row in images]
    assert len(names) == 7 and names == sorted(names) and all(name.endswith(".png") for name in names)
    assert list(images[0]) == [
        "image",
        "hole_ratio",
        "psnr",
        "psnr_hole",
        "ssim",
        "ssim_hole",
        "l1",
        "l1_hole",
    ]
    for name in ("psnr_hole", "l1_hole"):
        assert np.mean([float(row[name]) for row in images]) == pytest.approx(metrics[name], rel=1e-4)
    assert [float(row["hole_ratio"]) < 0.1 for row in images] == [True] + [False] * 5 + [True]  # images 0, 6
    samples = sorted((tmp_path / "samples").glob("*.png"))
    assert [p.name for p in samples] == [f"sample_{i:06d}.png" for i in range(5)]  # across two batches
    # input | sketch | output | target, 32 px tiles shown at 64 px under a title strip
    tile = MIN_TILE_WIDTH
    picture = np.asarray(Image.open(samples[0]))
    assert picture.shape == (TITLE_HEIGHT + PADDING + tile, 4 * tile + 3 * PADDING, 3)
    assert (picture[:TITLE_HEIGHT] < 128).any() and (picture[:TITLE_HEIGHT] == 255).mean() > 0.8  # titles


def test_classical_baselines_on_the_same_images_and_a_mask_folder(sample_data_dir, tmp_path):
    masks = tmp_path / "masks"
    masks.mkdir()
    hole = np.zeros((64, 64), np.uint8)
    hole[8:40, 16:48] = 255  # 25% of the image
    Image.fromarray(hole).save(masks / "box.png")
    results = {}
    for baseline in ("telea", "mean"):
        overrides = [f"baseline={baseline}", f"mask_dir={masks}", "fid=false", "samples=0", "limit=8"]
        results[baseline] = evaluate(
            evaluate_config(TINY_DATA + overrides, tmp_path / baseline, sample_data_dir)
        )
        assert [row[:2] for row in results[baseline]["rows"]] == [["20-30%", 8], ["all", 8]]
        assert not (tmp_path / baseline / "samples").exists()
        assert f"{baseline} on sample (val, 8 images)" in (tmp_path / baseline / "metrics.md").read_text()
    assert results["telea"]["metrics"]["psnr_hole"] > results["mean"]["metrics"]["psnr_hole"] + 1.0
    assert results["telea"]["metrics"]["fid"] is None  # fid=false
    overrides = ["baseline=mean", "dataset.val_dir=holdout", "fid=false", "samples=0", "limit=2"]
    evaluate(evaluate_config(TINY_DATA + overrides, tmp_path / "holdout", sample_data_dir))
    assert "(val: folder holdout, 2 images)" in (tmp_path / "holdout" / "metrics.md").read_text()


def test_with_sketches_the_same_holes_are_scored_without_them_too(checkpoint, sample_data_dir, tmp_path):
    """sketch=edges adds the lift and the fidelity per bucket; a classical fill ignores sketches, so its lift is
    exactly 0 and its fidelity the same with and without, while the model's fills differ."""
    sketched = ["sketch=edges", "sketch.p=1.0", "fid=false", "samples=0", "limit=12", "batch_size=6"]
    telea = evaluate(
        evaluate_config(TINY_DATA + sketched + ["baseline=telea"], tmp_path / "t", sample_data_dir)
    )
    model = evaluate(
        evaluate_config(TINY_DATA + sketched + [f"ckpt_path={checkpoint}"], tmp_path / "m", sample_data_dir)
    )
    for results in (telea, model):
        assert results["columns"][-7:] == [
            "psnr_hole_without_sketch",
            "l1_hole_without_sketch",
            "sketch_lift_psnr_hole",
            "sketch_lift_psnr_hole_se",
            "sketch_fidelity",
            "sketch_fidelity_without",
            "sketch_fidelity_target",
        ]
        metrics = results["metrics"]
        assert metrics["sketch_lift_psnr_hole"] == pytest.approx(
            metrics["psnr_hole"] - metrics["psnr_hole_without_sketch"], abs=1e-4
        )
        assert "sketch_lift_psnr_hole_10-20%" in metrics and "sketch_fidelity_target" in metrics
        assert 0.3 < metrics["sketch_fidelity_target"] <= 1.0  # sketches are drawn on real edges
        assert (
            "| sketch_fidelity |"
            in (tmp_path / ("t" if results is telea else "m") / "metrics.md").read_text()
        )
    assert telea["metrics"]["sketch_lift_psnr_hole"] == 0.0
    assert telea["metrics"]["sketch_lift_psnr_hole_se"] == 0.0  # every image's lift is 0
    assert model["metrics"]["sketch_lift_psnr_hole_se"] > 0.0
    with open(tmp_path / "m" / "per_image.csv", newline="") as file:
        images = list(csv.DictReader(file))
    assert len(images) == 12 and list(images[0])[-5:] == [
        "psnr_hole_without_sketch",
        "l1_hole_without_sketch",
        "sketch_fidelity",
        "sketch_fidelity_without",
        "sketch_fidelity_target",
    ]
    without = np.mean([float(row["l1_hole_without_sketch"]) for row in images])
    assert without == pytest.approx(model["metrics"]["l1_hole_without_sketch"], rel=1e-4)
    drawn = [row for row in images if row["sketch_fidelity"]]  # empty where the sketch misses the hole
    assert drawn
    for name in ("sketch_fidelity", "sketch_fidelity_without", "sketch_fidelity_target"):
        assert np.mean([float(row[name]) for row in drawn]) == pytest.approx(model["metrics"][name], rel=1e-4)
    missed = f"{12 - len(drawn)} of 12 images' sketches have no pixel in the hole"
    assert any(missed in note for note in model["notes"]) == (len(drawn) < 12), model["notes"]
    assert telea["metrics"]["sketch_fidelity"] == telea["metrics"]["sketch_fidelity_without"]
    assert (
        model["metrics"]["l1_hole"] != model["metrics"]["l1_hole_without_sketch"]
    )  # the sketch reaches the model
    plain = evaluate(
        evaluate_config(
            TINY_DATA + ["baseline=telea", "fid=false", "samples=0", "limit=4"],
            tmp_path / "p",
            sample_data_dir,
        )
    )
    assert "sketch_fidelity" not in plain["columns"]


def test_missing_inputs_are_clear_errors(sample_data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt does not exist"):
        evaluate(evaluate_config([f"ckpt_path={tmp_path / 'missing.ckpt'}"], tmp_path, sample_data_dir))
    with pytest.raises(DatasetNotFoundError, match="celebahq"):
        evaluate(evaluate_config(["dataset=celebahq", "baseline=mean"], tmp_path, sample_data_dir))


def test_command_line_error_is_one_message_and_exit_2(tmp_path):
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint at all")
    env = {**os.environ, "MTMSA_ROOT": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.evaluate", f"ckpt_path={tmp_path / 'broken.ckpt'}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: ckpt_path={tmp_path / 'broken.ckpt'} is not a torch checkpoint: it is not the zip archive "
        "torch.save writes (truncated, or another kind of file)"
    ]
    assert not (tmp_path / "logs").exists()


def test_a_checkpoint_written_by_version_0_1_still_evaluates_from_the_command_line(sample_data_dir, tmp_path):
    overrides = [f"ckpt_path={CHECKPOINT_V0_1}", "limit=6", "batch_size=3", "samples=1", "fid=false"]
    result = run_cli(
        [*overrides, f"hydra.run.dir={tmp_path / 'run'}"], tmp_path, sample_data_dir, module="mtmsa.evaluate"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert report["method"] == "model" and report["trained_on"] == "sample at 32 px" and report["images"] == 6
    assert [row[1] for row in report["rows"]] == [1, 1, 1, 1, 1, 1, 6]
    assert 10 < report["metrics"]["psnr_hole"] < report["metrics"]["psnr"] < 60
    assert (tmp_path / "run" / "samples" / "sample_000000.png").is_file()


def reference_fid(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two feature sets (N, D) with numpy/scipy, as in the original TTUR implementation."""
    mu1, mu2 = real.mean(0), fake.mean(0)
    sigma1, sigma2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean))


class FixedFeatures(nn.Module):
    """A small stand-in feature extractor: 4x4 average-pooled pixels, projected, (B,3,H,W) uint8 -> (B,32)."""

    num_features = 32

    def __init__(self):
        super().__init__()
        self.projection = torch.randn(48, 32, generator=torch.Generator().manual_seed(0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(images.float() / 255.0, 4).flatten(1)
        return pooled @ self.projection


def test_bucketed_fid_matches_a_scipy_reference_per_bucket():
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(24, 3, 16, 16, generator=generator)
    preds = (target + 0.2 * torch.rand(24, 3, 16, 16, generator=generator)).clamp(0, 1)
    masks = torch.zeros(24, 1, 16, 16)
    masks[12:, :, :4] = 1  # images 12..23 have 25% holes, 0..11 none
    features = FixedFeatures()
    fid = FID(buckets=((0.0, 0.1), (0.2, 0.3)), min_images=12, features=features)
    fid.update(preds[:10], target[:10], masks[:10])
    fid.update(preds[10:], target[10:], masks[10:])
    values = fid.compute()
    quantised = [features((x * 255 + 0.5).to(torch.uint8)).double().numpy() for x in (target, preds)]
    for key, rows in (("fid", slice(None)), ("fid_0-10%", slice(0, 12)), ("fid_20-30%", slice(12, None))):
        assert values[key] == pytest.approx(reference_fid(quantised[0][rows], quantised[1][rows]), rel=1e-3)
    fewer = FID(((0.0, 0.1),), min_images=13, features=features)
    fewer.update(preds[:12], target[:12], masks[:12])
    assert fewer.compute().values[0] is None and "fid_0-10%" not in fewer.compute()  # 12 < 13 images


def test_inception_fid_is_zero_for_identical_sets_and_large_for_noise(sample_data_dir):
    assert inception_weights_path().name == "default_1.pt"
    photos = [
        np.asarray(Image.open(p)) for p in sorted((sample_data_dir / "sample" / "val").glob("*.png"))[:6]
    ]
    real = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2)
    noise = torch.randint(0, 256, real.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    features = InceptionFeatures()
    real_features, noise_features = features(real).double(), features(noise).double()
    assert real_features.shape == (6, 2048) and (real_features >= 0).all()  # pool3 after ReLU
    same, different = (FrechetInceptionDistance(feature=PrecomputedFeatures()) for _ in range(2))
    for metric, fake in ((same, real_features), (different, noise_features)):
        metric.update(real_features, real=True)
        metric.update(fake, real=False)
    assert abs(float(same.compute())) < 1e-2
    assert float(different.compute()) > 100


def test_lpips_says_why_it_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert "torchvision is not installed" in lpips_unavailable_reason("alex")
    monkeypatch.undo()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: object())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    reason = lpips_unavailable_reason("vgg")
    assert "vgg backbone weights are not in the torch cache" in reason and "vgg16-397923af.pth" in reason
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"")
    assert lpips_unavailable_reason("vgg") is None


def test_lpips_is_the_mean_per_image_distance_per_bucket():
    target = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    preds = target.clone()
    preds[1:] += torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1, 1)
    masks = torch.zeros(4, 1, 16, 16)
    masks[2:, :, :4] = 1  # images 2 and 3: 25% holes

    def mean_absolute_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # a stand-in distance
        return (a - b).abs().flatten(1).mean(1)

    lpips = LPIPS(buckets=((0.0, 0.1), (0.2, 0.3)), scorer=mean_absolute_error)
    lpips.update(preds, target, masks)
    values = {key: float(value) for key, value in lpips.compute().items()}
    distances = mean_absolute_error(preds.clamp(0, 1), target).tolist()
    assert values["lpips_0-10%"] == pytest.approx((distances[0] + distances[1]) / 2, rel=1e-6)
    assert values["lpips_20-30%"] == pytest.approx((distances[2] + distances[3]) / 2, rel=1e-6)
    assert values["lpips"] == pytest.approx(sum(distances) / 4, rel=1e-6) and values["lpips"] > 0.05
