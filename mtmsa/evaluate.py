"""Evaluate a checkpoint (or a classical fill) on a dataset, per hole-ratio bucket and in total.

``python -m mtmsa.evaluate ckpt_path=<run>/checkpoints/last.ckpt [dataset=places2] [baseline=telea]``
(config: conf/evaluate.yaml). The images are the dataset's validation split with the evaluation
transform and the fixed evaluation masks of training validation (or the masks of ``mask_dir``), through
the same DataModule. Reports PSNR, SSIM and L1 over the whole image and the hole
(:class:`mtmsa.metrics.InpaintingMetrics`), FID (:mod:`mtmsa.fid`) and LPIPS (:mod:`mtmsa.lpips`) as a
table on the terminal and as ``metrics.json``, ``metrics.csv`` and ``metrics.md`` in the run folder.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from tqdm.auto import tqdm

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.baselines import BASELINES
from mtmsa.checkpoints import load_generator
from mtmsa.conf import CONFIG_PATH
from mtmsa.data.datamodule import InpaintingDataModule
from mtmsa.data.masks import DEFAULT_BUCKETS, MaskFolder, bucket_labels
from mtmsa.fid import BucketedFID
from mtmsa.lpips import BucketedLPIPS, lpips_unavailable_reason
from mtmsa.metrics import METRIC_NAMES, InpaintingMetrics
from mtmsa.previews import image_grid, save_png
from mtmsa.utils.cli import exit_on_user_error
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.images import composite, to_unit_range

log = logging.getLogger(__name__)

COLUMNS = ("hole ratio", "images", *METRIC_NAMES, "fid", "lpips")
SPLITS = ("val", "train")
Fill = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``fill(images, masks, sketches) -> completed images``: (B,3,H,W) in [-1, 1], known pixels unchanged."""


class EvaluationSettingError(UserInputError):
    """An evaluation option with a value that cannot work; the message names the option and the fix."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise EvaluationSettingError(f"device={name!r} is not a device; use auto, cpu or cuda[:N]") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationSettingError(f"device={name!r} asks for CUDA, which is not available; use device=cpu")
    return device


def build_fill(cfg: DictConfig, device: torch.device) -> tuple[Fill, dict[str, Any]]:
    """The method to evaluate (the checkpoint's EMA generator, or ``cfg.baseline``) and a description of it."""
    if cfg.baseline is not None:
        if cfg.baseline not in BASELINES:
            raise EvaluationSettingError(
                f"baseline={cfg.baseline!r} is unknown; use one of {', '.join(BASELINES)}, or null for the checkpoint"
            )
        baseline = BASELINES[cfg.baseline]
        return (lambda images, masks, sketches: composite(baseline(images, masks), images, masks)), {
            "method": cfg.baseline
        }
    if cfg.ckpt_path is None:
        raise EvaluationSettingError(
            "nothing to evaluate: pass ckpt_path=<run>/checkpoints/last.ckpt, or baseline=telea|ns|mean"
        )
    generator, run_config = load_generator(cfg.ckpt_path, device)

    def fill(images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        return composite(generator(images, masks, sketches).refined, images, masks)

    trained_on = run_config.get("dataset", {})
    return fill, {
        "method": "model",
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "trained_on": f"{trained_on.get('name')} at {trained_on.get('image_size')} px",
    }


def build_datamodule(cfg: DictConfig) -> InpaintingDataModule:
    """The dataset's DataModule with ``split`` as its validation set and the chosen masks and sketches."""
    if cfg.split not in SPLITS:
        raise EvaluationSettingError(f"split={cfg.split!r} is unknown; use one of {', '.join(SPLITS)}")
    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    dataset["val_batch_size"] = int(cfg.batch_size)
    if cfg.split == "train":
        dataset["val_dir"], dataset["val_list"] = dataset["train_dir"], dataset["train_list"]
    datamodule = instantiate(dataset, masks=instantiate(cfg.mask), sketches=instantiate(cfg.sketch))
    datamodule.prepare_data()
    datamodule.setup("validate")
    if cfg.mask_dir is not None:
        datamodule.eval_masks = MaskFolder(cfg.mask_dir, convention=cfg.mask_convention)
    return datamodule


class Evaluation:
    """All metrics of one evaluation: update with each batch, then :meth:`results`."""

    def __init__(self, cfg: DictConfig, device: torch.device) -> None:
        self.notes: list[str] = []
        self.pixels = InpaintingMetrics(buckets=DEFAULT_BUCKETS).to(device)
        self.fid = BucketedFID(DEFAULT_BUCKETS, min_images=cfg.fid_min_images).to(device) if cfg.fid else None
        self.fid_min_images = int(cfg.fid_min_images)
        self.lpips_missing = (
            "skipped (lpips=null)" if cfg.lpips is None else lpips_unavailable_reason(cfg.lpips)
        )
        self.lpips = (
            BucketedLPIPS(DEFAULT_BUCKETS, cfg.lpips).to(device) if self.lpips_missing is None else None
        )

    def update(self, completed: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> None:
        """completed, images: (B,3,H,W) in [-1, 1]; masks (B,1,H,W), 1 = hole."""
        preds, target = to_unit_range(completed), to_unit_range(images)
        self.pixels.update(preds, target, masks)
        for metric in (self.fid, self.lpips):
            if metric is not None:
                metric.update(preds, target, masks)

    def results(self) -> dict[str, Any]:
        """``{"metrics": {name: value or None}, "columns": [...], "rows": [[...]], "notes": [...]}``."""
        metrics = {name: float(value) for name, value in self.pixels.compute().items()}
        counts = self.pixels.counts.long().tolist()
        labels = [*bucket_labels(DEFAULT_BUCKETS), "all"]
        for name, metric in (("fid", self.fid), ("lpips", self.lpips)):
            metrics.update(
                metric.compute() if metric is not None else {_key(name, label): None for label in labels}
            )
        rows = [
            [label, count, *(metrics.get(_key(name, label)) for name in COLUMNS[2:])]
            for label, count in zip(labels, counts, strict=True)
            if count > 0
        ]
        return {"metrics": metrics, "columns": list(COLUMNS), "rows": rows, "notes": self._notes(counts[-1])}

    def _notes(self, images: int) -> list[str]:
        notes = []
        if self.fid is None:
            notes.append("FID: skipped (fid=false).")
        else:
            notes.append(
                f"FID: TF-Inception pool3 features, bilinear resize to 299 px; per bucket only with >= "
                f"{self.fid_min_images} images (n/a below)."
            )
            if images < self.fid_min_images:
                notes.append(
                    f"FID of all {images} images is biased upwards (fewer than {self.fid_min_images}); "
                    "compare it only with FID on the same images."
                )
        if self.lpips_missing is not None:
            notes.append(f"LPIPS unavailable: {self.lpips_missing}.")
        return notes


def _key(metric: str, label: str) -> str:
    """Metric key of a table cell: ``psnr`` for the total, ``psnr_20-30%`` for a bucket."""
    return metric if label == "all" else f"{metric}_{label}"


def save_samples(
    folder: Path,
    indices: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    sketches: torch.Tensor,
    completed: torch.Tensor,
) -> None:
    """One PNG per sample: masked input (hole white) | sketch (black strokes on white) | output | target."""
    target = to_unit_range(images)
    masked = target * (1.0 - masks) + masks
    for row, index in enumerate(indices.tolist()):
        columns = [masked, 1.0 - sketches, to_unit_range(completed), target]
        save_png(image_grid([c[row : row + 1] for c in columns]), folder / f"sample_{index:06d}.png")


@torch.inference_mode()
def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the evaluation of ``cfg`` (conf/evaluate.yaml); write the reports and return what they hold."""
    device = resolve_device(cfg.device)
    fill, description = build_fill(cfg, device)
    datamodule = build_datamodule(cfg)
    total = len(datamodule.val_set) if cfg.limit is None else min(int(cfg.limit), len(datamodule.val_set))
    output_dir = Path(cfg.paths.output_dir)
    evaluation = Evaluation(cfg, device)
    seen = 0
    with tqdm(total=total, desc=f"evaluating {description['method']}", unit="img") as progress:
        for batch in datamodule.val_dataloader():
            if seen >= total:
                break
            take = min(total - seen, len(batch["index"]))
            batch = {"image": batch["image"][:take].to(device), "index": batch["index"][:take]}
            batch = datamodule.add_evaluation_masks(batch)
            images, masks, sketches = batch["image"], batch["mask"], batch["sketch"]
            completed = fill(images, masks, sketches)
            evaluation.update(completed, images, masks)
            if seen < cfg.samples:
                keep = slice(0, min(take, cfg.samples - seen))
                save_samples(
                    output_dir / "samples",
                    batch["index"][keep],
                    images[keep],
                    masks[keep],
                    sketches[keep],
                    completed[keep],
                )
            seen += take
            progress.update(take)
    results = {
        **description,
        "dataset": cfg.dataset.name,
        "split": cfg.split,
        "images": seen,
        "masks": str(cfg.mask_dir)
        if cfg.mask_dir is not None
        else "fixed evaluation masks (dataset.eval_seed)",
        "sketch": cfg.sketch._target_.rsplit(".", 1)[-1],
        **evaluation.results(),
    }
    write_reports(results, output_dir)
    print_table(results)
    return results


def _cell(value: Any, column: str, results: dict[str, Any]) -> str:
    if value is None:
        return "unavailable" if column == "lpips" and results["metrics"].get("lpips") is None else "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if column.startswith(("ssim", "l1", "lpips")) else f"{value:.2f}"
    return str(value)


def formatted_rows(results: dict[str, Any]) -> list[list[str]]:
    """The table's rows as strings: numbers rounded, missing values as "n/a" or "unavailable"."""
    return [
        [_cell(v, c, results) for v, c in zip(row, results["columns"], strict=True)]
        for row in results["rows"]
    ]


def _title(results: dict[str, Any]) -> str:
    source = results.get("checkpoint", results["method"])
    return f"{source} on {results['dataset']} ({results['split']}, {results['images']} images)"


def write_reports(results: dict[str, Any], folder: Path) -> None:
    """metrics.json (everything, missing values null), metrics.csv (the table), metrics.md (table + notes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=1))
    rows = formatted_rows(results)
    with open(folder / "metrics.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(results["columns"])
        writer.writerows([[_csv_value(v) for v in row] for row in results["rows"]])
    lines = [
        f"# Evaluation: {_title(results)}",
        "",
        "| " + " | ".join(results["columns"]) + " |",
        "|" + "---|" * len(results["columns"]),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    (folder / "metrics.md").write_text("\n".join(lines) + "\n")
    log.info("wrote %s/metrics.{json,csv,md}", folder)


def _csv_value(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=_title(results), caption="\n".join(results["notes"]), caption_justify="left")
    for column in results["columns"]:
        table.add_column(column, justify="left" if column == "hole ratio" else "right")
    for row in formatted_rows(results):
        table.add_row(*row)
    Console(width=max(120, Console().width)).print(table)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        evaluate(cfg)


if __name__ == "__main__":
    main()
