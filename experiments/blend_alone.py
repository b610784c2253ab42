"""Train the generator's fill blend alone, as in sample_long, and score it on both held-out sets.

On the sample photos all of sample_long's gain over its initial fill is the blend's (the networks' residual over
it is about 1e-4: ``experiments/what_learns.py``), so training the blend without the networks comes close to the
recipe's figures in a fraction of its time (``experiments/README.md``, "What learns in sample_long"), and a
change to the blend can be screened here first.

The training stream is sample_long's (its 42 training tiles of people and things since the fourteenth session,
``dataset.train_list=null`` for all 96 as in the tables before it; its augmentations, masks, sketches on half the
samples), the loss the
generator's hole L1 and L2 at its weights (``model.loss.hole_l1_weight``, ``model.loss.hole_l2_weight``), the
optimizer its Adam (lr 1e-3, betas 0.5 / 0.999), and what is scored its moving average of the weights
(``model.ema_decay``, with the module's warm-up), as sample_long validates (``--ema-decay 0``: the weights
themselves, as the tables before the twelfth session). Every ``--every`` iterations the blend fills the
validation tiles and the holdout photos (evaluation masks) without and with each image's own sketch: hole
PSNR / L1 without, with, and the lift.

    python experiments/blend_alone.py                              # the product's blend: harmonic, biharmonic
    python experiments/blend_alone.py --candidates hbHB [--seed S] [--iterations 2000]
    python experiments/blend_alone.py dataset.scale=[0.25,1.0]    # Hydra overrides of the training stream
    python experiments/blend_alone.py --tension 0.1 --width 32     # biharmonic fills in tension, a wider blend
    python experiments/blend_alone.py --stroke-context              # the distance to the sketch as an input
    python experiments/blend_alone.py --hold-out-photo rocket       # leave one training photo out
    python experiments/blend_alone.py --hold-out-photo all          # each in turn, then pooled

``--hold-out-photo`` trains on the training tiles of the other photographs and scores the blend, beside the two
held-out sets, on that photo's tiles (their evaluation masks and edge sketches, no augmentation): one fold of a
leave-one-photo-out cross-validation, which tells how the training photos judge a recipe without looking at
either held-out set. With ``all`` every training photo is left out in turn (one process, seeded alike, so
each fold repeats its single-photo run), and the left-out tiles' scores are pooled at the end.

Candidates, the first is where the blend starts: ``h`` / ``b`` the harmonic / biharmonic fill with the sketch's
lines as barriers (the product's), ``c`` the biharmonic one within the border's range (``bounded``, also with
barriers), ``H`` / ``B`` the harmonic / biharmonic fill without barriers (identical when there is no sketch).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from what_learns import held_out, hole_scores  # this folder's script: the same held-out sets and scores

from mtmsa.data.datamodule import build_datamodule
from mtmsa.data.sample import photo_of
from mtmsa.models.fill_blend import FillBlend
from mtmsa.models.initial_fill import smooth_fills
from mtmsa.models.losses import hole_l1, hole_l2
from mtmsa.utils.config import compose_config
from mtmsa.utils.images import masked_input


def candidate_fills(
    letters: str, known: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor, tension: float = 0.0
) -> list:
    """The fills named by ``letters`` (see the module docstring), each (B,3,H,W); ``tension`` the biharmonic
    fills' (:func:`~mtmsa.models.initial_fill.biharmonic_fill`)."""
    lines = sketches.amax(dim=1, keepdim=True)
    bounded_only = "c" in letters and "b" not in letters  # one biharmonic solve: the bounded one
    second = "c" if bounded_only else "b"
    pair = smooth_fills(known, masks, sketches=lines, tension=tension, bounded=bounded_only)
    fills = dict(zip("h" + second, pair, strict=True))
    if "c" in letters and "c" not in fills:
        fills["c"] = smooth_fills(
            known, masks, sketches=lines, harmonic=False, tension=tension, bounded=True
        )[1]
    if set(letters) & set("HB"):
        fills.update(zip("HB", smooth_fills(known, masks, tension=tension), strict=True))
    return [fills[letter] for letter in letters]


STROKE_REACH = 16
"""Pixels over which :func:`with_stroke_context` measures the distance to the nearest stroke."""


def with_stroke_context(masks: torch.Tensor, sketches: torch.Tensor, enabled: bool) -> torch.Tensor:
    """The blend's sketch input: ``sketches`` (B,1,H,W), and with ``enabled`` two more channels of what its few
    convolutions cannot see for themselves (``--stroke-context``): each pixel's chessboard distance to the
    nearest sketched pixel over :data:`STROKE_REACH` (1 there and farther, and everywhere without a sketch), and
    the sketched share of the hole's pixels times 10, constant per sample (none, a few strokes, most edges: how
    much a line's absence near a pixel says) -> (B,3,H,W)."""
    if not enabled:
        return sketches
    lines = (sketches > 0.5).to(masks.dtype)
    distance, reached = torch.zeros_like(lines), lines
    for _ in range(STROKE_REACH):
        distance = distance + (1.0 - reached)
        reached = F.max_pool2d(reached, 3, 1, 1)
    hole_pixels = masks.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    coverage = (lines * masks).sum(dim=(2, 3), keepdim=True) / hole_pixels
    return torch.cat([sketches, distance / STROKE_REACH, (10.0 * coverage).expand_as(lines)], dim=1)


FILL_NAMES = {
    "h": "harmonic",
    "b": "biharmonic",
    "c": "bounded biharmonic",
    "H": "harmonic, no barriers",
    "B": "biharmonic, no barriers",
}


Scores = tuple[float, float, float, float]
"""Mean hole PSNR and L1 over a split's images: without the sketch, then with it."""


@torch.no_grad()
def score(
    fill: Callable[..., torch.Tensor],
    letters: str,
    tension: float,
    images: torch.Tensor,
    masks: torch.Tensor,
    sketches: torch.Tensor,
) -> Scores:
    """A split's :data:`Scores`, its images filled by ``fill(known, masks, sketches, candidate fills)``."""
    known, results = masked_input(images, masks), []
    for guided in (False, True):
        given = sketches if guided else torch.zeros_like(sketches)
        filled = fill(known, masks, given, candidate_fills(letters, known, masks, given, tension))
        results.extend(hole_scores(filled, images, masks))
    return tuple(results)


def cells(scores: Scores) -> str:
    """ "PSNR / L1 without the sketch | with it | the lift"."""
    without, without_l1, with_sketch, with_l1 = scores
    return (
        f"{without:.2f} / {without_l1:.4f} | {with_sketch:.2f} / {with_l1:.4f} | {with_sketch - without:+.2f}"
    )


def candidate(index: int) -> Callable[..., torch.Tensor]:
    """A ``fill`` for :func:`score`: the candidate fill ``index`` alone."""
    return lambda known, masks, sketches, fills: fills[index]


def training_tiles(cfg) -> list[str]:
    if cfg.dataset.train_list is None:
        raise SystemExit("--hold-out-photo needs a training list (dataset.train_list); sample_long sets one")
    return (Path(cfg.dataset.root) / cfg.dataset.train_list).read_text().split()


def training_photos(cfg) -> list[str]:
    """The photographs of ``cfg``'s training list, in its order."""
    return list(dict.fromkeys(photo_of(tile) for tile in training_tiles(cfg)))


def photo_fold(cfg, photo: str, folder: Path) -> tuple[Path, Path]:
    """Two tile lists in ``folder`` for leaving ``photo`` out of ``cfg``'s training list: the other photos'
    tiles, and ``photo``'s."""
    tiles = training_tiles(cfg)
    left_out = [tile for tile in tiles if photo_of(tile) == photo]
    if not left_out:
        raise SystemExit(
            f"--hold-out-photo {photo!r} has no tiles in the training list; choose 'all' or one of "
            f"{training_photos(cfg)}"
        )
    lists = folder / "rest.txt", folder / "photo.txt"
    lists[0].write_text("\n".join(tile for tile in tiles if tile not in left_out) + "\n")
    lists[1].write_text("\n".join(left_out) + "\n")
    return lists


def train_blend(
    args: argparse.Namespace, cfg, splits: dict[str, tuple[torch.Tensor, ...]]
) -> dict[str, dict[str, Scores]]:
    """Trains a blend on ``cfg``'s training stream and prints its table: first each candidate fill alone, then
    the blend every ``args.every`` iterations, on each of ``splits``. Returns the rows: {label: {split: scores}}."""
    datamodule = build_datamodule(cfg, seed=args.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    stream = datamodule.training_generator(torch.device("cpu"))
    blend = FillBlend(
        sketch_channels=3 if args.stroke_context else 1,
        width=args.width,
        candidates=len(args.candidates),
    )
    optimizer = torch.optim.Adam(blend.parameters(), lr=cfg.model.optimizer_g.lr, betas=(0.5, 0.999))
    l1_weight, l2_weight = float(cfg.model.loss.hole_l1_weight), float(cfg.model.loss.hole_l2_weight)
    ema_decay = float(cfg.model.ema_decay if args.ema_decay is None else args.ema_decay)
    averaged = copy.deepcopy(blend).requires_grad_(False).eval() if ema_decay else blend
    rows: dict[str, dict[str, Scores]] = {}

    def row(label: str, fill: Callable[..., torch.Tensor], minutes: str) -> None:
        rows[label] = {
            name: score(fill, args.candidates, args.tension, *tensors) for name, tensors in splits.items()
        }
        tqdm.write(
            f"| {label} | {minutes} | {' | '.join(cells(scores) for scores in rows[label].values())} |"
        )

    def blended(known, masks, sketches, fills):
        return averaged(known, masks, with_stroke_context(masks, sketches, args.stroke_context), *fills)

    columns = " | ".join(f"{name}: PSNR / L1 without the sketch | with it | lift" for name in splits)
    print(f"| iterations | minutes | {columns} |\n|---|---|{'---|---|---|' * len(splits)}")
    for index, letter in enumerate(args.candidates):  # each fill alone, on the same tiles and holes
        row(f"the {FILL_NAMES[letter]} fill alone", candidate(index), "-")
    started, done = time.perf_counter(), 0
    with tqdm(total=args.iterations, desc=f"blend of {args.candidates}", unit="it") as progress:
        while done < args.iterations:
            for batch in datamodule.train_dataloader():
                batch = datamodule.add_training_masks(batch, stream)
                images, masks, sketches = batch["image"], batch["mask"], batch["sketch"]
                known = masked_input(images, masks)
                with torch.no_grad():
                    fills = candidate_fills(args.candidates, known, masks, sketches, args.tension)
                filled = blend(
                    known, masks, with_stroke_context(masks, sketches, args.stroke_context), *fills
                )
                loss = l1_weight * hole_l1(filled, images, masks) + l2_weight * hole_l2(filled, images, masks)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if ema_decay:  # the module's moving average, warm-up included
                    with torch.no_grad():
                        decay = min(ema_decay, (1.0 + done) / (10.0 + done))
                        torch._foreach_lerp_(
                            list(averaged.parameters()), list(blend.parameters()), 1.0 - decay
                        )
                done += 1
                progress.update()
                if done % args.every == 0 or done == args.iterations:
                    row(str(done), blended, f"{(time.perf_counter() - started) / 60:.1f}")
                if done == args.iterations:
                    break
    return rows


def print_pooled(folds: list[tuple[int, dict[str, Scores]]]) -> None:
    """The left-out photos' scores of every fold pooled, each weighted by its number of tiles: ``folds`` holds
    (tiles, {row label: the left-out photo's scores}) per fold."""
    tiles = sum(count for count, _ in folds)
    print(
        f"\nAll {len(folds)} photos left out in turn, {tiles} tiles pooled:\n\n"
        "| iterations | PSNR / L1 without the sketch | with it | lift |\n|---|---|---|---|"
    )
    for label in folds[0][1]:
        pooled = [sum(count * rows[label][column] for count, rows in folds) / tiles for column in range(4)]
        print(f"| {label} | {cells(tuple(pooled))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", default="hb", help="the fills to blend (letters h, b, H, B)")
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500, help="score the held-out sets this often")
    parser.add_argument("--width", type=int, default=16, help="the blend's convolution width")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument(
        "--stroke-context", action="store_true", help="the distance to the sketch and its coverage as inputs"
    )
    parser.add_argument(
        "--tension", type=float, default=0.0, help="of the biharmonic fills (0: the product's fill)"
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=None,
        help="of the scored moving average (default model.ema_decay; 0: none)",
    )
    parser.add_argument(
        "--hold-out-photo",
        default=None,
        help="train without this training photo's tiles and score them too (a photo of dataset.train_list, "
        "or 'all': each in turn, then their scores pooled)",
    )
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of sample_long's training stream")
    args = parser.parse_args()
    if len(args.candidates) < 2 or set(args.candidates) - set("hbcHB"):
        parser.error(f"--candidates {args.candidates!r}: give two or more of the letters h, b, c, H, B")

    torch.set_flush_denormal(True)
    overrides = ["experiment=sample_long", f"seed={args.seed}", *args.overrides]
    cfg = compose_config("train", overrides)

    def held_out_sets() -> dict[str, tuple[torch.Tensor, ...]]:
        return {"validation tiles": held_out("val"), "holdout photos": held_out("holdout")}

    if args.hold_out_photo is None:
        torch.manual_seed(args.seed)  # before the held-out sets are made, as in every table so far
        train_blend(args, cfg, held_out_sets())
        return
    photos = training_photos(cfg) if args.hold_out_photo == "all" else [args.hold_out_photo]
    folds = []
    with tempfile.TemporaryDirectory() as folder:
        for photo in photos:
            torch.manual_seed(args.seed)  # each fold as its own run would be
            rest, tiles = photo_fold(cfg, photo, Path(folder))
            fold_cfg = compose_config("train", [*overrides, f"dataset.train_list={rest}"])
            name, left_out = f"{photo} (left out)", held_out(fold_cfg.dataset.train_dir, file_list=tiles)
            print(f"\nLeaving out {photo} ({len(left_out[0])} tiles):\n")
            rows = train_blend(args, fold_cfg, {name: left_out, **held_out_sets()})
            folds.append((len(left_out[0]), {label: scores[name] for label, scores in rows.items()}))
    if len(folds) > 1:
        print_pooled(folds)


if __name__ == "__main__":
    main()
