"""Kills, preemption and non-finite steps: training loses no work and never writes a bad checkpoint."""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mtmsa.data.datamodule import build_datamodule
from mtmsa.models.losses import InpaintingLoss
from mtmsa.training.fault_tolerance import AtomicCheckpointIO, LastCheckpoint, resume_checkpoint
from mtmsa.training.module import TrainingDivergedError
from tests.helpers.runs import TINY, free_port, logged_steps, run_training, train_config

SAVER = """
import sys, torch
from mtmsa.training.fault_tolerance import AtomicCheckpointIO
io, path = AtomicCheckpointIO(), sys.argv[1]
print("ready", flush=True)
version = 1
while True:
    io.save_checkpoint({"version": version, "weights": torch.full((4_000_000,), float(version))}, path)
    version += 1
"""


def test_a_kill_while_saving_never_leaves_a_truncated_checkpoint(tmp_path):
    """A process saving 16 MB checkpoints in a loop is SIGKILLed at random moments, five times: the file is
    always a complete checkpoint (of some version), and the next save clears the partial file left behind."""
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"version": 0, "weights": torch.zeros(4_000_000)}, path)
    rng = random.Random(0)
    versions = []
    for _ in range(5):
        saver = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True)
        assert saver.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.6))
        saver.send_signal(signal.SIGKILL)
        saver.wait()
        checkpoint = torch.load(path, weights_only=True)
        assert torch.all(checkpoint["weights"] == checkpoint["version"])
        versions.append(checkpoint["version"])
    assert len(set(versions)) > 1  # the kills did land between different saves
    AtomicCheckpointIO().save_checkpoint({"version": -1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_a_failing_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"version": 1}, path)

    def disk_full(obj, file):
        file.write(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        AtomicCheckpointIO().save_checkpoint({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"version": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_resume_checkpoint_choice(tmp_path):
    assert resume_checkpoint(None, tmp_path) is None
    assert resume_checkpoint("last", tmp_path) is None  # a job script may always say last
    assert resume_checkpoint("/x/y.ckpt", tmp_path) == "/x/y.ckpt"
    last = tmp_path / "checkpoints" / "last.ckpt"
    last.parent.mkdir()
    last.write_bytes(b"")
    assert resume_checkpoint(None, tmp_path) == str(last)
    assert resume_checkpoint("last", tmp_path) == str(last)
    requeued = tmp_path / "hpc_ckpt_1.ckpt"  # written by Lightning on SLURM's requeue signal, after last.ckpt
    requeued.write_bytes(b"")
    os.utime(last, (1, 1))
    assert resume_checkpoint("last", tmp_path) == str(requeued)


class RecordingTrainer:
    """The part of a Trainer that LastCheckpoint uses; records the steps it saved at."""

    fast_dev_run = False

    def __init__(self, global_step: int) -> None:
        self.global_step = global_step
        self.saved: list[int] = []

    def save_checkpoint(self, path, weights_only: bool | None = None) -> None:
        assert weights_only is False, "last.ckpt must hold the optimizers and loops to resume from"
        self.saved.append(self.global_step)


def test_last_checkpoint_every_n_steps_counts_from_the_start_and_never_saves_a_step_twice(tmp_path):
    callback = LastCheckpoint(tmp_path, every_n_train_steps=4)
    trainer = RecordingTrainer(global_step=100)  # resumed at step 100: that state is on disk already
    callback.on_train_start(trainer, None)
    for step in range(102, 121, 2):
        trainer.global_step = step
        callback.on_train_batch_end(trainer)
    callback.on_train_end(trainer, None)
    assert trainer.saved == [104, 108, 112, 116, 120]


def start_training(run: Path, data_dir: Path, overrides: list[str]) -> subprocess.Popen:
    """``python -m mtmsa.train`` at the tests' tiny size into the run folder ``run`` (Hydra keeps the last
    of repeated overrides: ``overrides`` come after TINY's)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mtmsa.train", *TINY, *overrides, f"paths.data_dir={data_dir}",
         f"hydra.run.dir={run}", "dataset.num_workers=0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def checkpoint_step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def test_sigkill_at_random_moments_then_resume_reaches_the_end(tmp_path, sample_data_dir):
    """Training is SIGKILLed three times at a random moment after its first checkpoint, and restarted each
    time with ckpt_path=last in the same folder: every restart continues from the last checkpoint (never
    from zero), the checkpoint always loads, and the run ends at max_steps with its state complete."""
    run, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    overrides = [
        "trainer.max_steps=120",
        "trainer.val_check_interval=2",
        "ckpt_path=last",
        "callbacks.previews.every_n_steps=1000",
    ]
    rng = random.Random(1)
    steps = [0]
    for _ in range(3):
        process = start_training(run, sample_data_dir, overrides)
        wait_for(lambda: last.is_file() and checkpoint_step(last) > steps[-1], process)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        steps.append(checkpoint_step(last))
    assert steps == sorted(steps) and steps[-1] < 120, steps
    process = start_training(run, sample_data_dir, overrides)
    assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 120
    assert all(state["state"] for state in final["optimizer_states"])  # both Adams, restored and carried on
    assert final["InpaintingDataModule"]["mask_rng_states"].shape[0] == 1
    assert any(k.startswith("generator_ema.") for k in final["state_dict"])
    # Every start appended to the run's one CSV log, which reaches the last iterations.
    assert max(logged_steps(run)) >= 55


def test_sigterm_saves_last_checkpoint_and_ckpt_path_last_continues(tmp_path, sample_data_dir):
    run, last = tmp_path / "run", tmp_path / "run" / "checkpoints" / "last.ckpt"
    # No checkpoint before the SIGTERM; a preview after every batch shows that training is under way.
    overrides = [
        "trainer.max_steps=20000",
        "trainer.val_check_interval=100000",
        "callbacks.previews.every_n_steps=2",
    ]
    process = start_training(run, sample_data_dir, overrides)
    wait_for(lambda: list((run / "previews").glob("inpainting_step*.png")), process)
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    stopped_at = checkpoint_step(last)
    assert 0 < stopped_at < 20000
    process = start_training(
        run, sample_data_dir, ["trainer.max_steps=" + str(stopped_at + 4), "ckpt_path=last"]
    )
    assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    assert checkpoint_step(last) == stopped_at + 4


def test_datamodule_restores_each_process_mask_stream(tmp_path, sample_data_dir):
    cfg = train_config(TINY, tmp_path, sample_data_dir)

    def datamodule():
        return build_datamodule(cfg, seed=3)

    images = {"image": torch.zeros(4, 3, 32, 32)}
    first = datamodule()
    first.add_training_masks(dict(images), first.training_generator(torch.device("cpu")))
    state = first.state_dict()
    expected = first.add_training_masks(dict(images), first.training_generator(torch.device("cpu")))
    resumed = datamodule()
    resumed.load_state_dict(state)
    again = resumed.add_training_masks(dict(images), resumed.training_generator(torch.device("cpu")))
    assert torch.equal(again["mask"], expected["mask"]) and torch.equal(again["sketch"], expected["sketch"])
    fresh = datamodule()
    other = fresh.add_training_masks(dict(images), fresh.training_generator(torch.device("cpu")))
    assert not torch.equal(other["mask"], expected["mask"])


def poisoned_loss(bad_calls: set[int]):
    """InpaintingLoss.generator_loss whose total is NaN on the given (0-based) calls."""
    original = InpaintingLoss.generator_loss
    calls = {"n": 0}

    def generator_loss(self, *args, **kwargs):
        terms = original(self, *args, **kwargs)
        if calls["n"] in bad_calls:
            terms["loss"] = terms["loss"] * float("nan")
        calls["n"] += 1
        return terms

    return generator_loss


def test_nonfinite_steps_are_skipped_and_counted(tmp_path, sample_data_dir, monkeypatch):
    monkeypatch.setattr(InpaintingLoss, "generator_loss", poisoned_loss({2, 3, 7}))
    _, run = run_training(tmp_path, sample_data_dir, ["trainer.max_steps=20", "trainer.val_check_interval=5"])
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    # Lightning counts the optimizer steps taken: generator steps were skipped in batches 3, 4 and 8, so 12
    # batches (24 steps less 3) were needed to pass max_steps.
    assert checkpoint["global_step"] == 21
    assert checkpoint["mtmsa_skipped_steps"] == 3
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    csv = (run / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    column = csv[0].split(",").index("train/skipped_steps")
    skipped = [float(row.split(",")[column]) for row in csv[1:] if row.split(",")[column]]
    assert skipped[-1] == 3


def test_a_run_of_nonfinite_steps_stops_with_a_message_and_finite_checkpoints(
    tmp_path, sample_data_dir, monkeypatch
):
    monkeypatch.setattr(InpaintingLoss, "generator_loss", poisoned_loss(set(range(5, 1000))))
    with pytest.raises(TrainingDivergedError, match="4 generator steps in a row had a non-finite") as error:
        run_training(
            tmp_path,
            sample_data_dir,
            ["trainer.max_steps=40", "trainer.val_check_interval=2", "model.max_nonfinite_steps=4"],
        )
    assert "Lower model.optimizer_g.lr" in str(error.value)
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    assert not math.isnan(float(checkpoint["global_step"]))
