"""Logger factories that need more than a constructor call, and sending tables and images to loggers."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from pytorch_lightning.loggers import Logger, TensorBoardLogger, WandbLogger

from mtmsa.visualization.grids import as_hwc

log = logging.getLogger(__name__)


def wandb_credentials_available() -> bool:
    """True when wandb could log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    return netrc.is_file() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def wandb_logger(save_dir: str, offline: bool | None = None, **kwargs) -> WandbLogger:
    """A WandbLogger that goes offline by itself where no credentials exist (or WANDB_MODE=offline).

    ``offline=None`` decides automatically; the log then says where the run is and how to sync it.
    """
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if offline is None:
        offline = os.environ.get("WANDB_MODE") in ("offline", "dryrun") or not wandb_credentials_available()
    if offline:
        log.warning(
            "wandb: no credentials found, logging offline to %s/wandb; upload later with "
            "`wandb sync %s/wandb/offline-run-*` (after `wandb login`).",
            save_dir,
            save_dir,
        )
    return WandbLogger(save_dir=save_dir, offline=offline, **kwargs)


def log_table(loggers: Sequence[Logger], key: str, columns: list[str], rows: list[list], step: int) -> None:
    """Send a table to the loggers that take tables (wandb); the CSV log has the same values as scalars."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=columns, data=rows, step=step)


def finish_wandb_runs(loggers: Sequence[Logger]) -> None:
    """Close the wandb runs of these loggers, so that the next job of a multirun starts its own run."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            logger.experiment.finish()


def log_image(loggers: Sequence[Logger], key: str, image: torch.Tensor, step: int) -> None:
    """Send a (3,H,W) [0, 1] image to every logger that takes images (wandb, TensorBoard)."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[as_hwc(image)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, image.clamp(0, 1), global_step=step)
