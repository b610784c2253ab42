"""The summary a training run prints at its end: where things are and how good the model is."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from rich.console import Console
from rich.table import Table

from mtmsa.training.fault_tolerance import LastCheckpoint


def checkpoint_paths(trainer: pl.Trainer) -> dict[str, str]:
    """The run's "last" and "best" (by the monitored metric) checkpoints; empty when there is none."""
    paths = {}
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, LastCheckpoint) and callback.path.is_file():
            paths["last"] = str(callback.path)
        elif isinstance(callback, ModelCheckpoint) and callback.best_model_path:
            paths["best"] = callback.best_model_path
    return paths


def print_run_summary(
    trainer: pl.Trainer, metrics: dict[str, float], output_dir: Path, seconds: float
) -> None:
    """Print the run folder, checkpoints, previews, metric files and hole PSNR beside the mean-fill baseline."""
    console = Console()
    table = Table(
        title=f"mtmsa run finished in {seconds / 60:.1f} min ({trainer.global_step // 2} iterations)"
    )
    table.add_column("what")
    table.add_column("where / value")
    table.add_row("run folder", str(output_dir))
    for name, path in checkpoint_paths(trainer).items():
        table.add_row(f"{name} checkpoint", path)
    table.add_row("previews", str(output_dir / "previews"))
    for logger in trainer.loggers:
        table.add_row(f"{type(logger).__name__}", str(logger.log_dir or logger.save_dir))
    for name in ("val/psnr", "val/ssim", "val/l1", "val/psnr_hole"):
        if name in metrics:
            table.add_row(name, f"{metrics[name]:.4f}")
    model_psnr, baseline_psnr = metrics.get("val/psnr_hole"), metrics.get("val/psnr_hole_mean_fill")
    if model_psnr is not None and baseline_psnr is not None:
        verdict = "beats" if model_psnr > baseline_psnr else "does NOT beat"
        table.add_row(
            "hole PSNR vs mean fill",
            f"model {model_psnr:.2f} dB vs mean colour fill {baseline_psnr:.2f} dB: the model {verdict} the baseline",
        )
    console.print(table)
