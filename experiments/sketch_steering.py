"""The same photo and hole filled without a sketch and with two different sketches: two different results.

    python experiments/sketch_steering.py --checkpoint logs/train/runs/<run>/checkpoints/last.ckpt
    python experiments/sketch_steering.py --checkpoint <ckpt> --photo coins --out docs/images/sketch_steering.png

The photo is one of the bundled ones (``mtmsa.data.sample``: the validation photos ``chelsea`` and ``coffee``,
the holdout ``camera``, ``coins``, ``grace_hopper``), centre-cropped and resized to ``--size``; the hole is a
square in its middle. Sketch A is the photo's own edges in the hole, drawn by the run's sketch generator,
sketch B a straight line drawn across the hole. The picture's panels: the photo, the input, the fill without a
sketch, with A and with B (each sketch drawn in red over the input beside its fill); the title gives each
fill's hole PSNR.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra.utils import instantiate

from mtmsa.data.sample import HOLDOUT_PHOTOS, SAMPLE_PHOTOS
from mtmsa.data.sketch import EdgeSketches
from mtmsa.evaluation.metrics import per_image_metrics
from mtmsa.inference.checkpoints import load_generator
from mtmsa.utils.images import composite, to_model_range, to_unit_range
from mtmsa.visualization.figures import new_figure, save_figure, show_tile

PHOTOS = {**SAMPLE_PHOTOS, **HOLDOUT_PHOTOS}


def square_photo(name: str, size: int) -> torch.Tensor:
    """(1,3,size,size) in [-1, 1]: the centre square of a bundled photo, resized."""
    photo = PHOTOS[name]()
    side = min(photo.shape[:2])
    top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    square = cv2.resize(
        photo[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
    )
    return to_model_range(torch.from_numpy(square).permute(2, 0, 1)[None].float() / 255.0)


def central_hole(size: int, fraction: float) -> torch.Tensor:
    """(1,1,size,size): a square hole of ``fraction`` of the side in the middle."""
    masks = torch.zeros(1, 1, size, size)
    side = round(size * fraction)
    start = (size - side) // 2
    masks[..., start : start + side, start : start + side] = 1.0
    return masks


def line_sketch(size: int, start: tuple[float, float], end: tuple[float, float]) -> torch.Tensor:
    """(1,1,size,size): a one-pixel line between two points given as fractions of the side (x, y)."""
    canvas = np.zeros((size, size), np.uint8)
    corner = lambda point: (round(point[0] * (size - 1)), round(point[1] * (size - 1)))  # noqa: E731
    cv2.line(canvas, corner(start), corner(end), 1, 1)
    return torch.from_numpy(canvas).float()[None, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an mtmsa training checkpoint (.ckpt)")
    parser.add_argument("--photo", default="camera", choices=sorted(PHOTOS))
    parser.add_argument("--size", type=int, default=128, help="side in pixels (a multiple of 4)")
    parser.add_argument(
        "--hole", type=float, default=0.4, help="the hole's side as a fraction of the image's"
    )
    parser.add_argument("--out", default="docs/images/sketch_steering.png")
    args = parser.parse_args()

    generator, config = load_generator(args.checkpoint)
    images, masks = square_photo(args.photo, args.size), central_hole(args.size, args.hole)
    edge_sketches = instantiate(config["sketch"]) if config.get("sketch") else EdgeSketches()
    own = edge_sketches.draw(images, masks, generator=torch.Generator().manual_seed(0)) * masks
    across = line_sketch(args.size, (0.2, 0.7), (0.8, 0.3)) * masks
    sketches = {
        "no sketch": torch.zeros_like(masks),
        "sketch A: its own edges": own,
        "sketch B: a line": across,
    }
    fills = {}
    with torch.no_grad():
        for name, sketch in sketches.items():
            completed = composite(generator(images, masks, sketch).refined, images, masks)
            psnr = float(per_image_metrics(to_unit_range(completed), to_unit_range(images), masks)[0, 1])
            fills[name] = (to_unit_range(completed)[0], psnr)

    figure = new_figure(15, 3.6)
    axes = figure.subplots(1, 5)
    show_tile(axes[0], to_unit_range(images)[0], "the photo")
    show_tile(axes[1], to_unit_range(images * (1 - masks) + masks)[0], "input (hole white)")
    for axis, (name, (image, psnr)) in zip(axes[2:], fills.items(), strict=True):
        shown = image.clone()
        drawn = sketches[name][0, 0] > 0.5
        shown[:, drawn] = torch.tensor([1.0, 0.0, 0.0])[:, None]  # the sketch in red over its fill
        show_tile(axis, shown, f"{name}\nhole PSNR {psnr:.2f} dB")
    figure.suptitle(
        f"One hole in '{args.photo}', three fills: each sketch (red) gives its own result "
        f"({Path(args.checkpoint).name})"
    )
    print(save_figure(figure, args.out))
    for name, (_, psnr) in fills.items():
        print(f"{name}: hole PSNR {psnr:.2f} dB")


if __name__ == "__main__":
    main()
