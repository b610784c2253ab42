"""Training end to end on CPU with the real configs: every attention option, DDP, resume, errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import wandb

from mtmsa.train import train
from tests.conftest import compose_config
from tests.wandb_records import history

TINY = [
    "dataset.image_size=32",
    "dataset.resize=40",
    "dataset.batch_size=4",
    "dataset.val_batch_size=6",
    "model.generator.width=4",
    "model.discriminator.width=8",
    "model.discriminator.layers=4",
    "callbacks.previews.every_n_steps=4",
    "callbacks.previews.num_samples=2",
]


def run_training(tmp_path: Path, data_dir: Path, overrides: list[str]) -> tuple[dict[str, float], Path]:
    cfg = compose_config(TINY + overrides, tmp_path / "run", data_dir)
    return train(cfg), tmp_path / "run"


@pytest.mark.parametrize("attention", ["mtmsa", "contextual", "none"])
def test_fast_dev_run_with_each_attention(attention, tmp_path, sample_data_dir):
    metrics, _ = run_training(tmp_path, sample_data_dir, [f"model/attention={attention}", "debug=fdr"])
    assert {"val/psnr", "val/psnr_hole", "val/ssim", "val/l1", "val/l1_hole"} <= metrics.keys()
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())


def test_short_run_writes_checkpoints_previews_and_metrics(tmp_path, sample_data_dir):
    metrics, run = run_training(
        tmp_path, sample_data_dir, ["trainer.max_steps=8", "trainer.val_check_interval=2"]
    )
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert list((run / "checkpoints").glob("best-*.ckpt"))
    assert list((run / "previews").glob("inpainting_step*.png"))
    assert list((run / "previews").glob("temperature_step*.png"))
    csv = (run / "csv" / "version_0" / "metrics.csv").read_text()
    for name in (
        "train/g_loss",
        "train/d_loss",
        "val/psnr_hole",
        "val/psnr_hole_mean_fill",
        "temperature/head0_mean",
    ):
        assert name in csv
    bucket_metrics = [k for k in metrics if k.startswith("val/psnr_") and k.endswith("%")]
    assert bucket_metrics, metrics.keys()
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


def logged_steps(run: Path) -> list[int]:
    """The step column of a run's CSV metrics (Lightning logs the number of training batches done)."""
    lines = (run / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    column = lines[0].split(",").index("step")
    return [int(line.split(",")[column]) for line in lines[1:]]


def test_model_beats_mean_fill_on_sample_photos(tmp_path, sample_data_dir):
    """The quickstart's claim at a smaller size: trained briefly, the model fills holes better than the
    mean colour of the known pixels (hole PSNR on the held-out photos, same masks)."""
    metrics, _ = run_training(
        tmp_path,
        sample_data_dir,
        [
            "model.generator.width=8",
            "trainer.max_steps=240",
            "trainer.val_check_interval=1000",
            "model.optimizer_g.lr=2e-3",
            "callbacks.previews.every_n_steps=100000",
            "dataset.batch_size=8",
        ],
    )
    assert metrics["val/psnr_hole"] > metrics["val/psnr_hole_mean_fill"] + 0.5, metrics


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(
    args: list[str], cwd: Path, data_dir: Path | None = None, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """``python -m mtmsa.train args`` in ``cwd`` (also MTMSA_ROOT), data from ``data_dir`` when given."""
    environment = {
        **os.environ,
        "MTMSA_ROOT": str(cwd),
        "PYTHONUNBUFFERED": "1",
        "MASTER_PORT": str(free_port()),
        **(env or {}),
    }
    if data_dir is not None:
        environment["MTMSA_DATA"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "mtmsa.train", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
