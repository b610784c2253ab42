"""Which part of a trained generator makes its gain over the initial fill: the learned blend of the smooth
fills (``model.generator.fill_blend``) or the convolutional networks and the attention after it.

For each checkpoint and held-out split, fills the validation images (their evaluation masks) without and
with each image's own sketch, and scores in the hole: the initial fill (harmonic), the blend alone
(``GeneratorOutput.base``), the model, and the mean size of the networks' residual over the blend.

    python experiments/what_learns.py logs/train/runs/<run>/checkpoints/last.ckpt [more checkpoints]
    python experiments/what_learns.py <ckpt> --splits val holdout
    python experiments/what_learns.py --fills         # no checkpoint: the smooth fills and their headroom
    python experiments/what_learns.py --fills --tension 0.1   # the biharmonic fill as a spline in tension

Prints one markdown table: hole PSNR (dB) / hole L1 per image, averaged, in [0, 1] units. ``--fills`` prints
another: the harmonic and the biharmonic fill (also kept within the border's range, ``bounded``), each without
and with the sketch's lines as barriers, and the best of the first two chosen per pixel with the real image's
help (an oracle: the most any per-pixel choice among them could reach, not something a model can).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mtmsa.evaluate import evaluation_datamodule
from mtmsa.evaluation.metrics import HOLE_L1, HOLE_PSNR, per_image_metrics
from mtmsa.inference.pretrained import load_pretrained
from mtmsa.models.initial_fill import smooth_fills
from mtmsa.utils.config import compose_config
from mtmsa.utils.images import composite, masked_input, to_unit_range


def hole_scores(filled: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> tuple[float, float]:
    """Mean over images of the hole PSNR and hole L1 that ``mtmsa.evaluate`` reports, images in [-1, 1]."""
    completed = to_unit_range(composite(filled, images, masks))
    values = per_image_metrics(completed, to_unit_range(images), masks).mean(dim=0)
    return float(values[HOLE_PSNR]), float(values[HOLE_L1])


def held_out(
    split: str, checkpoint: Path | None = None, file_list: Path | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A split's images, evaluation masks and own sketches (the sample data set unless a checkpoint says);
    ``file_list`` (an absolute path) names the split's images to take, one per line, instead of all."""
    overrides = ["sketch=edges", "sketch.p=1.0", "fid=false", f"dataset.val_dir={split}"]
    if checkpoint is not None:
        overrides.append(f"ckpt_path={checkpoint}")
    if file_list is not None:
        overrides.append(f"dataset.val_list={file_list}")
    datamodule = evaluation_datamodule(compose_config("evaluate", overrides))
    batches = [datamodule.add_evaluation_masks(batch) for batch in datamodule.val_dataloader()]
    images, masks, sketches = (
        torch.cat([batch[key] for batch in batches]) for key in ("image", "mask", "sketch")
    )
    return images, masks, sketches


def per_pixel_best(fills: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """At each pixel, the fill nearest the real image (squared error over the channels)."""
    errors = torch.stack([((fill - images) ** 2).sum(dim=1, keepdim=True) for fill in fills])
    best = errors.argmin(dim=0)
    return sum(torch.where(best == index, fill, 0.0) for index, fill in enumerate(fills))


def fill_rows(split: str, tension: float = 0.0) -> list[str]:
    """The smooth fills of one split, without and with the sketches' barriers, and their per-pixel best;
    ``tension`` the biharmonic fill's."""
    images, masks, sketches = held_out(split)
    known = masked_input(images, masks)
    harmonic, biharmonic = smooth_fills(known, masks, tension=tension)
    lines = sketches.amax(dim=1, keepdim=True)
    harmonic_lines, biharmonic_lines = smooth_fills(known, masks, sketches=lines, tension=tension)
    pair, pair_lines = [harmonic, biharmonic], [harmonic_lines, biharmonic_lines]
    _, bounded = smooth_fills(known, masks, harmonic=False, tension=tension, bounded=True)
    _, bounded_lines = smooth_fills(
        known, masks, sketches=lines, harmonic=False, tension=tension, bounded=True
    )
    fills = {
        "harmonic": harmonic,
        "biharmonic": biharmonic,
        "biharmonic within the border's range": bounded,
        "harmonic, the sketch as barriers": harmonic_lines,
        "biharmonic, the sketch as barriers": biharmonic_lines,
        "biharmonic within the border's range, the sketch as barriers": bounded_lines,
        "per-pixel best of the two without the sketch": per_pixel_best(pair, images),
        "per-pixel best of the two with the sketch": per_pixel_best(pair_lines, images),
        "per-pixel best of all four": per_pixel_best(pair + pair_lines, images),
    }
    rows = []
    for name, fill in fills.items():
        psnr, l1 = hole_scores(fill, images, masks)
        rows.append(f"| {split} | {name} | {psnr:.2f} / {l1:.4f} |")
    return rows


def split_rows(checkpoint: Path, split: str) -> list[str]:
    """The table's rows of one checkpoint on one split: without and with the images' own sketches."""
    images, masks, sketches = held_out(split, checkpoint)
    generator = load_pretrained(checkpoint, torch.device("cpu")).generator
    rows = []
    for guided in (False, True):
        with torch.no_grad():
            output = generator(images, masks, sketches if guided else torch.zeros_like(sketches))
        scores = [
            hole_scores(fill, images, masks) for fill in (output.initial_fill, output.base, output.refined)
        ]
        residual = ((output.refined - output.base).abs() / 2.0 * masks).sum() / (3.0 * masks.sum())
        cells = " | ".join(f"{psnr:.2f} / {l1:.4f}" for psnr, l1 in scores)
        rows.append(
            f"| {checkpoint.parent.parent.name} | {split} | {'own' if guided else 'none'} | {cells} | "
            f"{scores[2][0] - scores[1][0]:+.2f} | {float(residual):.4f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--splits", nargs="+", default=["val", "holdout"])
    parser.add_argument("--fills", action="store_true", help="the smooth fills' table (no checkpoint needed)")
    parser.add_argument("--tension", type=float, default=0.0, help="of the biharmonic fill in --fills' table")
    args = parser.parse_args()
    if args.fills:
        print("| split | fill | hole PSNR / L1 |\n|---|---|---|")
        for split in args.splits:
            print("\n".join(fill_rows(split, args.tension)))
    if not args.checkpoints:
        return
    print(
        "| run | split | sketch | initial fill | blend alone | model | model - blend (dB) | "
        "networks' residual |\n|---|---|---|---|---|---|---|---|"
    )
    for checkpoint in args.checkpoints:
        for split in args.splits:
            print("\n".join(split_rows(checkpoint, split)))


if __name__ == "__main__":
    main()
