"""How far the shipped biharmonic fill (:data:`~mtmsa.models.initial_fill.BIHARMONIC_CG_STEPS` conjugate-gradient
steps per pyramid level, single precision) is from the converged solution of the same equations, and what that
does to hole PSNR without and with each image's own sketch.

Each split's images are filled (their evaluation masks, their own edge sketches as barriers) by the biharmonic
fill and the one kept within its border's range, with the shipped steps, with more, and converged (double
precision, up to one step per pixel of each level, the residual down by 1e-14). Prints hole PSNR without / with
the sketch and the lift per fill, the seconds the four fills took, and how far the shipped fills lie from the
converged ones in the holes.

    python experiments/biharmonic_convergence.py                      # val, holdout, train (sample_long's 42)
    python experiments/biharmonic_convergence.py --splits val --steps 150 1000
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import torch
from line_preference import SPLITS, per_image_psnr, split_data

import mtmsa.models.initial_fill as initial_fill
from mtmsa.models.initial_fill import smooth_fills
from mtmsa.utils.images import masked_input

CONVERGED = 0
"""The ``--steps`` value that stands for the converged solve."""


def biharmonic_fills(
    known: torch.Tensor, masks: torch.Tensor, lines: torch.Tensor, steps: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{fill name: (without the sketch, with it)}, each (B,3,H,W) in single precision."""
    converged = steps == CONVERGED
    dtype = torch.float64 if converged else torch.float32
    known, masks, lines = (x.to(dtype) for x in (known, masks, lines))
    with (
        mock.patch.object(
            initial_fill, "BIHARMONIC_CG_STEPS", known.shape[-2] * known.shape[-1] if converged else steps
        ),
        mock.patch.object(initial_fill, "CG_TOLERANCE", 1e-28 if converged else initial_fill.CG_TOLERANCE),
    ):
        fills = {
            name: tuple(
                smooth_fills(known, masks, sketches=sketches, harmonic=False, bounded=bounded)[1].float()
                for sketches in (None, lines)
            )
            for name, bounded in (("biharmonic", False), ("bounded biharmonic", True))
        }
    return fills


def report(split: str, steps: list[int]) -> None:
    images, masks, lines, photos = split_data(split)
    known = masked_input(images, masks)
    print(f"\n{split}: {images.shape[0]} tiles of {len(set(photos))} photos\n")
    print("| fill | steps per level | without the sketch | with it | lift | seconds (4 fills) |")
    print("|---|---|---|---|---|---|")
    results = {}
    for count in steps:
        start = time.perf_counter()
        results[count] = biharmonic_fills(known, masks, lines, count)
        seconds = time.perf_counter() - start
        for name, pair in results[count].items():
            without, with_sketch = (float(per_image_psnr(fill, images, masks).mean()) for fill in pair)
            label = "converged (float64)" if count == CONVERGED else str(count)
            print(
                f"| {name} | {label} | {without:.2f} | {with_sketch:.2f} | {with_sketch - without:+.2f} | {seconds:.1f} |"
            )
    if CONVERGED in results:
        shipped = results.get(initial_fill.BIHARMONIC_CG_STEPS)
        if shipped is not None:
            holes = masks.expand_as(images)
            for name, pair in shipped.items():
                for index, way in enumerate(("without", "with")):
                    distance = (pair[index] - results[CONVERGED][name][index]).abs()[holes > 0.5]
                    print(
                        f"{name}, {way} the sketch: shipped minus converged in the holes, mean |d| "
                        f"{float(distance.mean()):.4f}, max {float(distance.max()):.3f}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=["val", "holdout", "train"])
    parser.add_argument(
        "--steps",
        nargs="+",
        type=int,
        default=[initial_fill.BIHARMONIC_CG_STEPS, 300, 600, CONVERGED],
        help=f"conjugate-gradient steps per level; {CONVERGED}: converged",
    )
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    for split in args.splits:
        report(split, args.steps)


if __name__ == "__main__":
    main()
