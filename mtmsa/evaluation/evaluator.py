"""What ``python -m mtmsa.evaluate`` scores and how: the fill (a checkpoint's generator or a classical fill)
and every metric of one evaluation, per hole-ratio bucket and in total."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from mtmsa.evaluation.baselines import BASELINES
from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, BucketedValues, metric_key
from mtmsa.evaluation.fid import FID
from mtmsa.evaluation.lpips import LPIPS, lpips_unavailable_reason
from mtmsa.evaluation.metrics import HOLE_L1, HOLE_PSNR, METRIC_NAMES, InpaintingMetrics
from mtmsa.evaluation.outside import PredictionFolder
from mtmsa.evaluation.sketch_fidelity import FIDELITY_NAMES, LIFT, LIFT_ERROR, SketchFidelity, SketchLift
from mtmsa.inference.pretrained import load_pretrained
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.images import composite, hole_ratio, to_unit_range

COLUMNS = ("hole ratio", "images", *METRIC_NAMES, "fid", "lpips", *(f"{name}_std" for name in METRIC_NAMES))
SKETCH_COLUMNS = (
    "psnr_hole_without_sketch",
    "l1_hole_without_sketch",
    LIFT,
    LIFT_ERROR,
    *FIDELITY_NAMES,
)
"""With sketches, the same holes filled again without them: the lift in hole PSNR with its standard error, and
the share of the drawn line that shows up as an edge with the sketch, without it and in the real image (over images whose sketch
reaches into the hole)."""
Fill = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``fill(images, masks, sketches, indices) -> completed images``: (B,3,H,W) in [-1, 1], known pixels
unchanged; ``indices`` (B,) are the images' places in the split (what a folder of predictions is named by)."""


class EvaluationSettingError(UserInputError):
    """An evaluation option with a value that cannot work; the message names the option and the fix."""


def build_fill(cfg: DictConfig, device: torch.device) -> tuple[Fill, dict[str, Any]]:
    """The method to evaluate (the checkpoint's EMA generator, ``cfg.baseline``, or the files of
    ``cfg.predictions``: a :class:`PredictionFolder`) and a description of it."""
    chosen = [f"{k}={cfg.get(k)}" for k in ("ckpt_path", "baseline", "predictions") if cfg.get(k) is not None]
    if len(chosen) > 1:
        raise EvaluationSettingError(f"{' and '.join(chosen)} name two methods; give one of them")
    if cfg.get("predictions") is not None:
        return PredictionFolder(cfg.predictions), {
            "method": "predictions",
            "predictions": str(Path(cfg.predictions).resolve()),
        }
    if cfg.baseline is not None:
        if cfg.baseline not in BASELINES:
            raise EvaluationSettingError(
                f"baseline={cfg.baseline!r} is unknown; use one of {', '.join(BASELINES)}, or null for the checkpoint"
            )
        baseline = BASELINES[cfg.baseline]
        return (lambda images, masks, sketches, indices: composite(baseline(images, masks), images, masks)), {
            "method": cfg.baseline
        }
    if cfg.ckpt_path is None:
        raise EvaluationSettingError(
            "nothing to evaluate: pass ckpt_path=<run>/checkpoints/last.ckpt, baseline=telea|ns|mean, or "
            "predictions=DIR"
        )
    trained = load_pretrained(cfg.ckpt_path, device)

    def fill(
        images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        return composite(trained.generator(images, masks, sketches).refined, images, masks)

    return fill, {
        "method": "model",
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "trained_on": f"{trained.dataset_name} at {trained.image_size} px",
    }


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class Evaluation:
    """All metrics of one evaluation: update with each batch, then :meth:`results`."""

    def __init__(self, cfg: DictConfig, device: torch.device, guided: bool = False) -> None:
        self.pixels = InpaintingMetrics(DEFAULT_BUCKETS, spread=True).to(device)
        self.unguided = InpaintingMetrics(DEFAULT_BUCKETS).to(device) if guided else None
        self.fidelity = SketchFidelity(DEFAULT_BUCKETS).to(device) if guided else None
        self.lift = SketchLift(DEFAULT_BUCKETS).to(device) if guided else None
        self.fid = FID(DEFAULT_BUCKETS, min_images=cfg.fid_min_images).to(device) if cfg.fid else None
        self.fid_min_images = int(cfg.fid_min_images)
        self.lpips_missing = (
            "skipped (lpips=null)" if cfg.lpips is None else lpips_unavailable_reason(cfg.lpips)
        )
        self.lpips = LPIPS(DEFAULT_BUCKETS, cfg.lpips).to(device) if self.lpips_missing is None else None
        self.image_rows: list[list] = []

    @property
    def guided(self) -> bool:
        return self.unguided is not None

    def update(
        self,
        completed: torch.Tensor,
        images: torch.Tensor,
        masks: torch.Tensor,
        unguided: torch.Tensor | None = None,
        sketches: torch.Tensor | None = None,
        names: Sequence[str] | None = None,
    ) -> None:
        """completed, images: (B,3,H,W) in [-1, 1]; masks (B,1,H,W), 1 = hole; when guided, also the same holes
        ``unguided`` (filled without sketches) and the ``sketches`` (B,1,H,W). ``names`` (B of them): the
        images' names, for the table of :meth:`per_image` (none: no row)."""
        preds, target = to_unit_range(completed), to_unit_range(images)
        values = self.pixels.update(preds, target, masks)
        for metric in (self.fid, self.lpips):
            if metric is not None:
                metric.update(preds, target, masks)
        if self.unguided is not None and self.fidelity is not None and self.lift is not None:
            without = to_unit_range(unguided)
            unguided_values = self.unguided.update(without, target, masks)
            fidelity = self.fidelity.update(preds, without, target, sketches, masks)
            self.lift.update(values[:, HOLE_PSNR], unguided_values[:, HOLE_PSNR], masks)
            values = torch.cat([values, unguided_values[:, [HOLE_PSNR, HOLE_L1]], fidelity], dim=1)
        if names is not None:
            for name, ratio, row in zip(names, hole_ratio(masks).tolist(), values.tolist(), strict=True):
                self.image_rows.append([name, ratio, *row])

    def per_image(self) -> tuple[list[str], list[list]]:
        """(columns, rows): one row per image given with ``names``, in the order seen: its name, hole ratio
        and :data:`METRIC_NAMES` (and, when guided, the hole PSNR and L1 without the sketch and the fidelities,
        NaN where the image's sketch misses the hole)."""
        columns = ["image", "hole_ratio", *METRIC_NAMES]
        if self.guided:
            columns += ["psnr_hole_without_sketch", "l1_hole_without_sketch", *FIDELITY_NAMES]
        return columns, self.image_rows

    def results(self) -> dict[str, Any]:
        """``{"metrics": {name: value or None}, "columns": [...], "rows": [[...]], "notes": [...]}``: a row per
        bucket with images and one for all images; a metric's name with its bucket as in ``psnr_20-30%``."""
        values = self.pixels.compute().merged(*(m.compute() for m in (self.fid, self.lpips) if m is not None))
        columns = (*COLUMNS, *SKETCH_COLUMNS) if self.guided else COLUMNS
        if self.guided:
            values = values.merged(self._sketch_values(values))
        names = columns[2:]
        metrics = {
            metric_key(name, bucket): _number((row or {}).get(name))
            for bucket, count, row in zip((*values.buckets, None), values.counts, values.values, strict=True)
            if count > 0
            for name in names
        }
        rows = [[label, count, *map(_number, row)] for label, count, *row in values.rows(names, counts=True)]
        return {
            "metrics": metrics,
            "columns": list(columns),
            "rows": rows,
            "notes": self._notes(values.counts[-1]),
        }

    def _sketch_values(self, guided: BucketedValues) -> BucketedValues:
        """:data:`SKETCH_COLUMNS` for each bucket of ``guided`` (the fidelity None where no image's sketch reached
        into the hole)."""
        unguided, fidelity, lift = self.unguided.compute(), self.fidelity.compute(), self.lift.compute()
        rows = []
        for without, lifted, drawn, count in zip(
            unguided.values, lift.values, fidelity.values, fidelity.counts, strict=True
        ):
            if without is None:
                rows.append(None)
                continue
            row = {
                "psnr_hole_without_sketch": without["psnr_hole"],
                "l1_hole_without_sketch": without["l1_hole"],
                **(lifted or {}),
            }
            rows.append(
                {**row, **{name: (drawn or {}).get(name) if count else None for name in FIDELITY_NAMES}}
            )
        return BucketedValues(guided.buckets, guided.counts, tuple(rows))

    def _notes(self, images: int) -> list[str]:
        notes = [
            "*_std: the standard deviation of a metric over the images of the row (divided by their number)."
        ]
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
        if self.guided:
            notes.append(
                "Sketches: every metric with each image's sketch; *_without_sketch the same holes filled without "
                "it; sketch_fidelity*: share of the sketch's hole pixels on an output edge (with, without the "
                "sketch, and in the real image), over the images whose sketch reaches into the hole; "
                f"{LIFT_ERROR}: the lift's standard error over the images, which treats them as independent "
                "(tiles of the same few photos are not: then it understates the uncertainty)."
            )
            missed = images - self.fidelity.compute().counts[-1]
            if missed:
                notes.append(
                    f"{missed} of {images} images' sketches have no pixel in the hole: their lift is 0 by "
                    f"construction, and {LIFT} counts them (per_image.csv: sketch_fidelity empty)."
                )
        return notes
