"""Evaluate a checkpoint (or a classical fill) on a dataset, per hole-ratio bucket and in total.

``python -m mtmsa.evaluate ckpt_path=<run>/checkpoints/last.ckpt [dataset=places2] [baseline=telea]``,
``python -m mtmsa.evaluate export_masks=DIR`` and ``predictions=DIR`` (another method's fills of those files,
:mod:`mtmsa.evaluation.outside`)
(``mtmsa-evaluate``; config: mtmsa/conf/evaluate.yaml). The images are the dataset's validation split with
the evaluation transform and the fixed evaluation masks of training validation (or the masks of
``mask_dir``), through the same DataModule. Reports PSNR, SSIM and L1 over the whole image and the hole,
FID and LPIPS (:mod:`mtmsa.evaluation`) as a table on the terminal and as ``metrics.json``, ``metrics.csv``
and ``metrics.md`` in the run folder, every image's own metrics in ``per_image.csv``, with sample pictures
in ``samples/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.conf.schema.run import SPLITS
from mtmsa.utils.entry import hydra_entry

if TYPE_CHECKING:
    import torch

    from mtmsa.data.datamodule import InpaintingDataModule

# Torch and the model are imported inside the functions: the command line is checked before they load.


def evaluation_datamodule(cfg: DictConfig) -> InpaintingDataModule:
    """The dataset's DataModule with ``split`` as its validation set and the chosen masks and sketches."""
    from mtmsa.data.datamodule import build_datamodule
    from mtmsa.evaluation.evaluator import EvaluationSettingError
    from mtmsa.evaluation.masks import MaskFolder

    if cfg.split not in SPLITS:
        raise EvaluationSettingError(f"split={cfg.split!r} is unknown; use one of {', '.join(SPLITS)}")
    overrides: dict[str, Any] = {"val_batch_size": int(cfg.batch_size)}
    if cfg.split == "train":
        overrides.update(val_dir=cfg.dataset.train_dir, val_list=cfg.dataset.train_list)
    if cfg.mask_dir is not None:
        overrides["eval_masks"] = MaskFolder(cfg.mask_dir, convention=cfg.mask_convention)
    datamodule = build_datamodule(cfg, **overrides)
    datamodule.prepare_data()
    datamodule.setup("validate")
    return datamodule


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Run the evaluation of ``cfg`` (mtmsa/conf/evaluate.yaml); write the reports and return what they hold."""
    import torch

    with torch.inference_mode():
        return _evaluate(cfg)


def _evaluate(cfg: DictConfig) -> dict[str, Any]:
    import torch
    from tqdm.auto import tqdm

    from mtmsa.evaluation.evaluator import Evaluation, build_fill
    from mtmsa.evaluation.outside import PredictionFolder
    from mtmsa.evaluation.report import print_table, write_per_image, write_reports
    from mtmsa.utils.cli import resolve_device
    from mtmsa.visualization.grids import inpainting_grid, save_png

    device = resolve_device(cfg.device)
    fill, description = (None, {}) if cfg.export_masks is not None else build_fill(cfg, device)
    datamodule = evaluation_datamodule(cfg)
    total = len(datamodule.val_set) if cfg.limit is None else min(int(cfg.limit), len(datamodule.val_set))
    if cfg.export_masks is not None:
        return export_evaluation_set(datamodule, total, Path(cfg.export_masks), device)
    if isinstance(fill, PredictionFolder):
        fill.check_names(range(total))
    output_dir = Path(cfg.paths.output_dir)
    guided = not cfg.sketch._target_.endswith("NoSketches")
    evaluation = Evaluation(cfg, device, guided=guided)
    seen = 0
    with tqdm(total=total, desc=f"evaluating {description['method']}", unit="img") as progress:
        for batch in datamodule.val_dataloader():
            if seen >= total:
                break
            take = min(total - seen, len(batch["index"]))
            batch = {"image": batch["image"][:take].to(device), "index": batch["index"][:take]}
            batch = datamodule.add_evaluation_masks(batch)
            images, masks, sketches = batch["image"], batch["mask"], batch["sketch"]
            completed = fill(images, masks, sketches, batch["index"])
            unguided = fill(images, masks, torch.zeros_like(sketches), batch["index"]) if guided else None
            evaluation.update(
                completed, images, masks, unguided, sketches, image_names(datamodule, batch["index"])
            )
            for row, index in enumerate(batch["index"][: max(0, cfg.samples - seen)].tolist()):
                shown = slice(row, row + 1)
                grid = inpainting_grid(images[shown], masks[shown], sketches[shown], completed[shown])
                save_png(grid, output_dir / "samples" / f"sample_{index:06d}.png")
            seen += take
            progress.update(take)
    results = {
        **description,
        "dataset": cfg.dataset.name,
        "split": cfg.split,
        "folder": str(cfg.dataset.train_dir if cfg.split == "train" else cfg.dataset.val_dir),
        "images": seen,
        "masks": str(cfg.mask_dir)
        if cfg.mask_dir is not None
        else "fixed evaluation masks (dataset.eval_seed)",
        "sketch": cfg.sketch._target_.rsplit(".", 1)[-1],
        **evaluation.results(),
    }
    write_reports(results, output_dir)
    write_per_image(*evaluation.per_image(), output_dir)
    print_table(results)
    return results


def image_names(datamodule: InpaintingDataModule, indices: torch.Tensor) -> list[str]:
    """The evaluation images' file names, relative to their data set folder."""
    images = datamodule.val_set
    return [str(images.path(index).relative_to(images.root)) for index in indices.tolist()]


def export_evaluation_set(
    datamodule: InpaintingDataModule, total: int, folder: Path, device: torch.device
) -> dict[str, Any]:
    """``export_masks=DIR``: the first ``total`` evaluation images and their masks as files for other methods
    (:mod:`mtmsa.evaluation.outside`); nothing is scored."""
    from tqdm.auto import tqdm

    from mtmsa.evaluation.evaluator import EvaluationSettingError
    from mtmsa.evaluation.outside import MASK_SUFFIX, write_evaluation_set

    if folder.exists() and any(folder.iterdir()):
        raise EvaluationSettingError(f"export_masks={folder} is not empty; give a new or empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    seen = 0
    for batch in tqdm(datamodule.val_dataloader(), desc="exporting", unit="batch"):
        take = min(total - seen, len(batch["index"]))
        if take <= 0:
            break
        batch = datamodule.add_evaluation_masks(
            {"image": batch["image"][:take].to(device), "index": batch["index"][:take]}
        )
        write_evaluation_set(folder, batch["image"], batch["mask"], batch["index"])
        seen += take
    print(f"wrote {seen} images and masks to {folder} (<name>.png, <name>{MASK_SUFFIX}.png)")
    return {"exported": seen, "folder": str(folder.resolve())}


@hydra_entry("evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
