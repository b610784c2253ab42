"""Configs and runs for the tests: the tiny model, training in-process or as a command, a tiny checkpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

from mtmsa.utils.config import compose_config

TINY = [
    "model=small",
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
"""Overrides of the tiny model at 32 px that most training tests use: the small model (not the sample data
set's, whose fill blend would make every step and every export far slower), narrower still."""

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CHECKPOINT_V0_1 = FIXTURES / "checkpoint_v0_1.ckpt"
"""A checkpoint written by mtmsa 0.1.0 before the package was grouped into folders (fixtures/README.md)."""


def train_config(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """mtmsa/conf/train.yaml as ``python -m mtmsa.train <overrides>`` would compose it, writing under output_dir."""
    return compose_config("train", overrides, output_dir, data_dir)


def evaluate_config(overrides: list[str], output_dir: Path, data_dir: Path) -> DictConfig:
    """mtmsa/conf/evaluate.yaml as ``python -m mtmsa.evaluate <overrides>`` would compose it."""
    return compose_config("evaluate", overrides, output_dir, data_dir)


def run_training(tmp_path: Path, data_dir: Path, overrides: list[str]) -> tuple[dict[str, float], Path]:
    """Train the tiny model with ``overrides`` in ``tmp_path/run``: (final validation metrics, run folder)."""
    from mtmsa.train import train

    cfg = train_config(TINY + overrides, tmp_path / "run", data_dir)
    return train(cfg), tmp_path / "run"


_TINY_CHECKPOINTS: dict[str, Path] = {}


def tiny_checkpoint(tmp_path_factory, data_dir: Path) -> Path:
    """last.ckpt of a 2-step training run of the tiny model at 32 px, made once per test session."""
    if "last" not in _TINY_CHECKPOINTS:
        run = tmp_path_factory.mktemp("tiny_run")
        run_training(run, data_dir, ["trainer.max_steps=2"])
        _TINY_CHECKPOINTS["last"] = run / "run" / "checkpoints" / "last.ckpt"
    return _TINY_CHECKPOINTS["last"]


def logged_steps(run: Path) -> list[int]:
    """The step column of a run's CSV metrics (Lightning logs the number of training batches done)."""
    lines = (run / "csv" / "version_0" / "metrics.csv").read_text().splitlines()
    column = lines[0].split(",").index("step")
    return [int(line.split(",")[column]) for line in lines[1:]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(
    args: list[str],
    cwd: Path,
    data_dir: Path | None = None,
    env: dict | None = None,
    timeout: int = 300,
    module: str = "mtmsa.train",
) -> subprocess.CompletedProcess:
    """``python -m <module> args`` in ``cwd`` (also MTMSA_ROOT), data from ``data_dir`` when given."""
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
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def inpaint_in_process(arguments: list[str], capture) -> tuple[int, str]:
    """(exit code, stderr) of ``mtmsa.inpaint.main(arguments)`` run in this process; ``capture`` is pytest's
    capsys or capfd (what it held before the call is dropped)."""
    from mtmsa.inpaint import main as inpaint_main

    capture.readouterr()
    try:
        inpaint_main(arguments)
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capture.readouterr().err
