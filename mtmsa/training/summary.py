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


BASELINE_LABELS = {
    "harmonic": "harmonic fill",
    "pull_push": "pull-push fill",
    "telea": "OpenCV Telea",
    "ns": "OpenCV Navier-Stokes",
    "biharmonic": "biharmonic fill (scikit-image)",
    "bounded_biharmonic": "biharmonic fill within the border's range",
    "mean": "the mean colour fill",
}
"""The classical fills a run is compared with (``model.validation_baselines``), as the summary names them."""


def print_run_summary(
    trainer: pl.Trainer,
    metrics: dict[str, float],
    output_dir: Path,
    seconds: float,
    initial_fill: str | None = None,
) -> None:
    """Print the run folder, checkpoints, previews, metric files, and the model's hole PSNR and L1 beside those
    of the classical fills it was validated against (on the same images and masks); ``initial_fill`` (the
    generator's) is marked as its own."""
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
    for name in ("val/psnr", "val/ssim", "val/l1", "val/psnr_hole", "val/l1_hole"):
        if name in metrics:
            table.add_row(name, f"{metrics[name]:.4f}")
    console.print(table)
    comparison = comparison_table(metrics, initial_fill)
    if comparison is not None:
        console.print(comparison)


def comparison_table(metrics: dict[str, float], initial_fill: str | None = None) -> Table | None:
    """The model's hole PSNR and L1 on the validation images beside those of each classical fill validated
    on the same images and masks, ``initial_fill`` named as the model's own, and with a learned blend of the
    smooth fills as its base, that blend alone (None without the model's scores)."""
    model_psnr, model_l1 = metrics.get("val/psnr_hole"), metrics.get("val/l1_hole")
    if model_psnr is None or model_l1 is None:
        return None
    table = Table(title="held-out validation images: the model beside classical fills (same holes)")
    for column in ("fill", "hole PSNR (dB)", "hole L1", "the model"):
        table.add_column(column)
    table.add_row("the model", f"{model_psnr:.2f}", f"{model_l1:.4f}", "")
    for fill, label in BASELINE_LABELS.items():
        psnr, l1 = metrics.get(f"val/psnr_hole_{fill}_fill"), metrics.get(f"val/l1_hole_{fill}_fill")
        if psnr is not None and l1 is not None:
            verdict = "beats it" if model_psnr > psnr and model_l1 < l1 else "does NOT beat it"
            if fill == initial_fill:
                label = f"its initial fill: {label}"
            table.add_row(label, f"{psnr:.2f}", f"{l1:.4f}", verdict)
    psnr, l1 = metrics.get("val/psnr_hole_blend"), metrics.get("val/l1_hole_blend")
    if psnr is not None and l1 is not None:  # a learned base (fill_blend): what the networks add to it
        table.add_row(
            "its learned blend alone",
            f"{psnr:.2f}",
            f"{l1:.4f}",
            f"its networks add {model_psnr - psnr:+.2f} dB",
        )
    return table
