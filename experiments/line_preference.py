"""Which smooth fill the pixels next to a sketch's lines prefer, on each split and for each photo: why a fill
blend learned on the training tiles lifts the holdout photos far more than the validation tiles.

Each image of a split is filled (its evaluation mask) without and with its own sketch by the harmonic fill, the
biharmonic one and the biharmonic one within its border's range (all with the sketch's lines as barriers), and
by a fixed rule: the harmonic fill within ``k`` pixels of a line, the bounded biharmonic one elsewhere. Prints
hole PSNR without / with the sketch per split; then, per photo, the lift of the harmonic and the bounded fill
and what the rule at ``--near`` pixels gains over the bounded fill with the sketch; and a bootstrap 90 %
interval of the bounded fill's mean lift over the split's tiles (tiles resampled, 2,000 draws).

    python experiments/line_preference.py                    # train (sample_long's 42 tiles), val, holdout
    python experiments/line_preference.py --splits val --near 1

``train`` is sample_long's training list (``dataset.train_list``) scored like a held-out split: its own
evaluation masks and edge sketches, no augmentation.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from mtmsa.data.sample import photo_of
from mtmsa.evaluate import evaluation_datamodule, image_names
from mtmsa.evaluation.metrics import HOLE_PSNR, per_image_metrics
from mtmsa.models.initial_fill import smooth_fills
from mtmsa.utils.config import compose_config
from mtmsa.utils.images import composite, masked_input, to_unit_range

SPLITS = {"train": ["dataset.val_dir=train", "dataset.val_list=train_scenes.txt"], "val": [], "holdout": []}
DISTANCES = (0, 1, 2, 3, 4, 6)


def split_data(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """Images, evaluation masks, own sketches (B,1,H,W) and the photo each tile was cut from."""
    overrides = [
        "sketch=edges",
        "sketch.p=1.0",
        "fid=false",
        *(SPLITS[split] or [f"dataset.val_dir={split}"]),
    ]
    datamodule = evaluation_datamodule(compose_config("evaluate", overrides))
    batches = [datamodule.add_evaluation_masks(batch) for batch in datamodule.val_dataloader()]
    images, masks, sketches, indices = (
        torch.cat([batch[key] for batch in batches]) for key in ("image", "mask", "sketch", "index")
    )
    photos = [photo_of(name) for name in image_names(datamodule, indices)]
    return images, masks, sketches.amax(dim=1, keepdim=True), photos


def near_lines(lines: torch.Tensor, distance: int) -> torch.Tensor:
    """1 within ``distance`` pixels (a square window) of a line's pixel, else 0: (B,1,H,W)."""
    on = (lines > 0.5).float()
    return F.max_pool2d(on, 2 * distance + 1, 1, distance) if distance else on


def per_image_psnr(fill: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    completed = to_unit_range(composite(fill, images, masks))
    return per_image_metrics(completed, to_unit_range(images), masks)[:, HOLE_PSNR]


def report(split: str, near: int) -> None:
    images, masks, lines, photos = split_data(split)
    known = masked_input(images, masks)
    harmonic, biharmonic = smooth_fills(known, masks)
    _, bounded = smooth_fills(known, masks, harmonic=False, bounded=True)
    harmonic_lines, biharmonic_lines = smooth_fills(known, masks, sketches=lines)
    _, bounded_lines = smooth_fills(known, masks, sketches=lines, harmonic=False, bounded=True)
    fills = {
        "harmonic": (harmonic, harmonic_lines),
        "biharmonic": (biharmonic, biharmonic_lines),
        "bounded biharmonic": (bounded, bounded_lines),
    }
    rule_name = "harmonic within {} px of a line, else bounded".format
    for distance in sorted({*DISTANCES, near}):
        weight = near_lines(lines, distance)
        fills[rule_name(distance)] = (bounded, weight * harmonic_lines + (1 - weight) * bounded_lines)
    psnr = {name: [per_image_psnr(fill, images, masks) for fill in pair] for name, pair in fills.items()}
    share = float(((lines > 0.5).float() * masks).sum() / masks.sum())
    print(
        f"\n{split}: {images.shape[0]} tiles of {len(set(photos))} photos, {share:.3f} of the hole on a line\n"
    )
    print("| fill | without the sketch | with it | lift |\n|---|---|---|---|")
    for name, (without, with_sketch) in psnr.items():
        before, after = float(without.mean()), float(with_sketch.mean())
        print(f"| {name} | {before:.2f} | {after:.2f} | {after - before:+.2f} |")

    (h, h_lines), (c, c_lines) = psnr["harmonic"], psnr["bounded biharmonic"]
    rule = psnr[rule_name(near)][1]
    print(
        f"\n| photo | tiles | lift: harmonic | lift: bounded | rule at {near} px - bounded, with the sketch |"
    )
    print("|---|---|---|---|---|")
    for photo in dict.fromkeys(photos):
        chosen = torch.tensor([p == photo for p in photos])
        lift_h = (h_lines - h)[chosen].mean()
        lift_c = (c_lines - c)[chosen].mean()
        gain = (rule - c_lines)[chosen].mean()
        print(f"| {photo} | {int(chosen.sum())} | {lift_h:+.2f} | {lift_c:+.2f} | {gain:+.2f} |")
    lifts = c_lines - c
    draws = torch.Generator().manual_seed(0)
    means = torch.stack(
        [lifts[torch.randint(0, len(lifts), (len(lifts),), generator=draws)].mean() for _ in range(2000)]
    )
    low, high = means.quantile(0.05), means.quantile(0.95)
    print(
        f"\nbounded biharmonic fill's lift: {lifts.mean():+.2f} dB, tiles' standard deviation {lifts.std():.2f}, "
        f"bootstrap 90 % interval [{low:+.2f}, {high:+.2f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    parser.add_argument("--near", type=int, default=2, help="the rule's distance in the per-photo table")
    args = parser.parse_args()
    for split in args.splits:
        report(split, args.near)


if __name__ == "__main__":
    main()
