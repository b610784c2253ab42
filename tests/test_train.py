"""Training end to end on CPU with the real configs: every attention option, DDP, resume, errors."""

from __future__ import annotations

import json
from csv import DictReader

import pytest
import torch
import wandb

from tests.helpers.runs import TINY, logged_steps, run_cli, run_training
from tests.helpers.wandb_records import history


@pytest.mark.parametrize("attention", ["mtmsa", "contextual", "none"])
def test_fast_dev_run_with_each_attention(attention, tmp_path, sample_data_dir):
    metrics, _ = run_training(tmp_path, sample_data_dir, [f"model/attention={attention}", "debug=fdr"])
    assert {"val/psnr", "val/psnr_hole", "val/ssim", "val/l1", "val/l1_hole"} <= metrics.keys()
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_short_run_writes_checkpoints_previews_and_metrics(tmp_path, sample_data_dir):
    metrics, run = run_training(
        tmp_path,
        sample_data_dir,
        [
            "trainer.max_steps=8",
            "trainer.val_check_interval=2",
            "trainer.log_every_n_steps=1",
            "model.loss.adversarial_warmup_steps=2",
            "model.generator.fill_blend=true",
        ],
    )
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    assert list((run / "previews").glob("inpainting_step*.png"))
    assert list((run / "previews").glob("temperature_step*.png"))
    logged = (run / "csv" / "version_0" / "metrics.csv").read_text()
    for name in (
        "train/g_loss",
        "train/d_loss",
        "val/psnr_hole",
        "val/psnr_hole_mean_fill",
        "val/l1_hole_pull_push_fill",
        "val/psnr_hole_harmonic_fill",
        "temperature/head0_mean",
        "grad_norm/attention",
        "grad_norm/discriminator",
        "attention/entropy_head0",
        "train/residual_hole_step",
        "train/network_residual_hole_step",
        "val/psnr_hole_blend",
        "val/l1_hole_blend",
        "val/psnr_hole_sketch",
        "val/sketch_lift_psnr_hole",
        "val/sketch_lift_psnr_hole_se",
        "val/sketch_fidelity_without",
    ):
        assert name in logged
    with open(run / "csv" / "version_0" / "metrics.csv", newline="") as file:
        scales = [
            float(row["train/gan_scale_step"]) for row in DictReader(file) if row["train/gan_scale_step"]
        ]
    assert scales == [0.0, 0.5, 1.0, 1.0]  # the GAN terms' weights rise over the 2 warm-up generator steps
    bucket_metrics = [k for k in metrics if k.startswith("val/psnr_") and k.endswith("%")]
    assert bucket_metrics, metrics.keys()
    assert [k for k in metrics if k.startswith("val/sketch_lift_psnr_hole_") and k.endswith("%")], (
        metrics.keys()
    )
    assert [k for k in metrics if k.startswith("val/sketch_fidelity_") and k.endswith("%")], metrics.keys()
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["mtmsa_config"]["model"]["generator"]["width"] == 4
    assert any(k.startswith("generator_ema.") for k in checkpoint["state_dict"])


def test_resume_continues_the_step_count(tmp_path, sample_data_dir):
    _, first = run_training(
        tmp_path / "a", sample_data_dir, ["trainer.max_steps=6", "trainer.val_check_interval=3"]
    )
    last = first / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 6
    _, second = run_training(
        tmp_path / "b",
        sample_data_dir,
        ["trainer.max_steps=10", "trainer.val_check_interval=3", f"ckpt_path={last}"],
    )
    resumed = torch.load(second / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 10
    assert max(logged_steps(second)) > max(logged_steps(first)) >= 2
    assert min(logged_steps(second)) >= max(logged_steps(first))  # logging continued, not from zero


def test_missing_dataset_is_one_clear_error(tmp_path):
    result = run_cli(["dataset=celebahq", "trainer.max_steps=2"], tmp_path, timeout=120)
    assert result.returncode == 2
    message = result.stderr
    assert "Traceback" not in message
    assert str(tmp_path / "data" / "celebahq") in message
    assert "celebahq/train" in message  # the expected layout


def test_two_process_ddp_on_cpu(tmp_path, sample_data_dir):
    result = run_cli(
        TINY
        + [
            "trainer=ddp_cpu",
            "trainer.max_steps=4",
            "trainer.val_check_interval=2",
            f"paths.data_dir={sample_data_dir}",
            "hydra.run.dir=" + str(tmp_path / "run"),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    checkpoint = torch.load(
        tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    assert checkpoint["global_step"] == 4


def test_wandb_offline_run_holds_images_tables_and_metrics(tmp_path, sample_data_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    _, run = run_training(
        tmp_path, sample_data_dir, ["logger=wandb", "trainer.max_steps=4", "trainer.val_check_interval=2"]
    )
    # run.finish() hands the last records to wandb's service process, which writes them on its own time;
    # on a loaded machine they can still be in flight. teardown() waits for that process to finish.
    wandb.teardown()
    (offline_run,) = (run / "wandb").glob("offline-run-*")
    logged = history(next(offline_run.glob("run-*.wandb")))
    assert "val/psnr_hole" in logged, sorted(logged)  # on failure, say what the run file did hold
    assert len(logged["val/psnr_hole"]) == 2  # one validation during fit (after 2 batches), one after it
    assert all(value > 0 for value in logged["val/psnr_hole"])
    assert {
        "val/psnr_hole_mean_fill",
        "temperature/head0_mean",
        "train/g_loss_epoch",
        "val/psnr_0-10%",
    } <= logged.keys()
    files = offline_run / "files" / "media"
    for name in ("inpainting", "temperature", "attention"):
        assert list(files.glob(f"images/previews/{name}_*.png")), name
    table = json.loads(sorted(files.glob("table/val/buckets_*.table.json"))[-1].read_text())
    assert table["columns"][:2] == ["hole ratio", "psnr"] and table["data"][-1][0] == "all"
    sketch_table = json.loads(sorted(files.glob("table/val/sketch_buckets_*.table.json"))[-1].read_text())
    assert sketch_table["columns"][:3] == ["hole ratio", "images", "sketch_lift_psnr_hole"]
    assert sketch_table["data"][-1][0] == "all" and len(sketch_table["data"]) > 1
