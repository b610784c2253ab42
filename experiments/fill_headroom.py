"""How the smooth fills compare in the hole, and whether a plain U-Net learns anything beyond them.

Scores the classical fills (mean colour, the generator's initial fills harmonic and pull-push, OpenCV Telea
and Navier-Stokes) in the hole, on training batches (training augmentation and training masks) and on the
validation set (its fixed evaluation masks). Then, with ``--unet-iterations N``, trains a plain U-Net (no
attention, no GAN; its output a residual over the harmonic fill, Adam) on the same training batches and
scores it the same way: a control for the generator, asking whether a photo model at this budget moves
away from the smooth fill at all. With ``--blend-iterations N``, trains a smaller question: a per-pixel blend
of the harmonic and the biharmonic fill, its weight predicted by a small full-resolution CNN (starting at the
half-and-half blend, or with ``--blend-start harmonic`` nearly at the harmonic fill), asking whether what is
learned on the training tiles carries over to held-out photos.

    python experiments/fill_headroom.py                                   # the sample data set, quickstart config
    python experiments/fill_headroom.py --unet-iterations 600             # + the plain U-Net (~6 min on 2 cores)
    python experiments/fill_headroom.py --overrides experiment=sample_long --unet-iterations 2000
    python experiments/fill_headroom.py --blend-iterations 600 [--overrides dataset.val_dir=holdout]
    python experiments/fill_headroom.py --blend-iterations 600 --blend-start harmonic [--seed S]

Prints one markdown table per split (hole L1 and MSE relative to the harmonic fill's, mean hole PSNR per
image: what validation reports as ``val/psnr_hole``), then what each validation image's own sketch (the
``sketch`` config's, e.g. ``--overrides sketch.sparse=1.0`` for sparse strokes only) does to the harmonic
fill as barriers: the lift in hole PSNR and the sketch fidelity (``val/sketch_*`` in training). With
``--solver-sweeps 5 10 20 ...``, last, how close the harmonic fill comes to the exact solution of Laplace's
equation with that many relaxation sweeps per pyramid level (the configs use 20), against 2,000 sweeps, and
what each costs for a batch of 8 at 256x256.

    python experiments/fill_headroom.py --solver-sweeps 5 10 20 40
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from torch import nn
from tqdm import tqdm

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.datamodule import build_datamodule
from mtmsa.evaluation.baselines import BASELINES
from mtmsa.evaluation.metrics import psnr_from_mse
from mtmsa.evaluation.sketch_fidelity import sketch_fidelity
from mtmsa.models.fill_blend import FillBlend
from mtmsa.models.initial_fill import harmonic_fill, pull_push_fill
from mtmsa.utils.images import composite, to_unit_range

Fill = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PlainUNet(nn.Module):
    """Three-level U-Net (two 3x3 convolutions per level, GELU, a dilated middle) predicting a residual over
    the harmonic fill; its last convolution starts at zero, so it starts at that fill.

    forward: images (B,3,H,W) in [-1, 1], masks (B,1,H,W), 1 = hole; H, W divisible by 4 -> (B,3,H,W).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()

        def block(inputs: int, outputs: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, padding=1),
                nn.GELU(),
                nn.Conv2d(outputs, outputs, 3, padding=1),
                nn.GELU(),
            )

        self.down1, self.down2, self.down3 = (
            block(7, width),
            block(width, 2 * width),
            block(2 * width, 4 * width),
        )
        self.middle = nn.Sequential(
            nn.Conv2d(4 * width, 4 * width, 3, padding=2, dilation=2),
            nn.GELU(),
            nn.Conv2d(4 * width, 4 * width, 3, padding=4, dilation=4),
            nn.GELU(),
        )
        self.up2, self.up1 = block(6 * width, 2 * width), block(3 * width, width)
        self.out = nn.Conv2d(width, 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        known = images * (1.0 - masks)
        base = harmonic_fill(known, masks)
        level1 = self.down1(torch.cat([known, masks, base], dim=1))
        level2 = self.down2(F.avg_pool2d(level1, 2))
        level3 = self.down3(F.avg_pool2d(level2, 2))
        level3 = level3 + self.middle(level3)
        up2 = self.up2(torch.cat([F.interpolate(level3, scale_factor=2.0), level2], dim=1))
        up1 = self.up1(torch.cat([F.interpolate(up2, scale_factor=2.0), level1], dim=1))
        return base + self.out(up1)


BLEND_STARTS = {"half": 0.0, "harmonic": -4.0}
"""Where :class:`LearnedBlend` starts: the logit of its weight ``a`` (1/2, or 0.018: nearly the harmonic fill)."""


class LearnedBlend(nn.Module):
    """The generator's :class:`~mtmsa.models.fill_blend.FillBlend` (no sketch channel) over the harmonic fill
    and scikit-image's exact biharmonic fill, its weight ``a`` starting at ``start`` (:data:`BLEND_STARTS`)
    everywhere, up to the last convolution's small random weights.

    forward: images (B,3,H,W) in [-1, 1], masks (B,1,H,W), 1 = hole -> (B,3,H,W).
    """

    def __init__(self, width: int = 16, start: str = "half") -> None:
        super().__init__()
        self.blend = FillBlend(sketch_channels=0, width=width)
        nn.init.constant_(self.blend.weight.bias, BLEND_STARTS[start])

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        known = images * (1.0 - masks)
        harmonic, biharmonic = BASELINES["harmonic"](known, masks), BASELINES["biharmonic"](known, masks)
        return self.blend(known, masks, masks[:, :0], harmonic, biharmonic)


def half_blend(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The mean of the harmonic and the biharmonic fill: where :class:`LearnedBlend` starts."""
    return 0.5 * (BASELINES["harmonic"](images, masks) + BASELINES["biharmonic"](images, masks))


def hole_errors(
    fill: torch.Tensor, images: torch.Tensor, masks: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image mean absolute and squared error in the hole, in [0, 1] units: two (B,) tensors."""
    difference = to_unit_range(composite(fill, images, masks)) - to_unit_range(images)
    hole = masks.expand_as(difference)
    pixels = hole.sum(dim=(1, 2, 3)).clamp_min(1.0)
    return (difference.abs() * hole).sum(dim=(1, 2, 3)) / pixels, (difference**2 * hole).sum(
        dim=(1, 2, 3)
    ) / pixels


def score(
    fills: dict[str, Fill], batches: list[tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, dict[str, float]]:
    """Hole L1 and MSE pooled over all images, and the mean hole PSNR per image, for each fill."""
    results = {}
    for name, fill in fills.items():
        l1, mse = [], []
        with torch.no_grad():
            for images, masks in batches:
                errors = hole_errors(fill(images, masks), images, masks)
                l1.append(errors[0])
                mse.append(errors[1])
        l1_all, mse_all = torch.cat(l1), torch.cat(mse)
        results[name] = {
            "l1": float(l1_all.mean()),
            "mse": float(mse_all.mean()),
            "psnr": float(psnr_from_mse(mse_all).mean()),
        }
    return results


def table(title: str, results: dict[str, dict[str, float]]) -> str:
    reference = results["harmonic"]
    lines = [
        f"**{title}**",
        "",
        "| fill | hole L1 | / harmonic | hole MSE | / harmonic | mean hole PSNR (dB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, value in results.items():
        lines.append(
            f"| {name} | {value['l1']:.4f} | {value['l1'] / reference['l1']:.3f} | {value['mse']:.5f} | "
            f"{value['mse'] / reference['mse']:.3f} | {value['psnr']:.2f} |"
        )
    return "\n".join(lines)


def sketch_table(batches: list[tuple[torch.Tensor, torch.Tensor]], sketches: list[torch.Tensor]) -> str:
    """The harmonic fill of each image without and with its own sketch as barriers: mean hole PSNR, the lift,
    and the share of the sketch's hole pixels on an edge of the result (and of the real image)."""
    psnr, fidelity = {False: [], True: []}, {False: [], True: [], "real": []}
    for (images, masks), sketch in zip(batches, sketches, strict=True):
        for guided in (False, True):
            fill = harmonic_fill(images * (1.0 - masks), masks, sketches=sketch if guided else None)
            psnr[guided].append(psnr_from_mse(hole_errors(fill, images, masks)[1]))
            fidelity[guided].append(
                sketch_fidelity(to_unit_range(composite(fill, images, masks)), sketch, masks)
            )
        fidelity["real"].append(sketch_fidelity(to_unit_range(images), sketch, masks))
    without, with_sketch = (float(torch.cat(psnr[guided]).mean()) for guided in (False, True))
    shares = {key: float(torch.cat(values).nanmean()) for key, values in fidelity.items()}
    return "\n".join(
        [
            "**the harmonic fill with each validation image's own sketch as barriers**",
            "",
            "| hole PSNR without / with the sketch (dB) | lift (dB) | fidelity without / with | real image |",
            "|---|---|---|---|",
            f"| {without:.2f} / {with_sketch:.2f} | {with_sketch - without:+.2f} | {shares[False]:.3f} / "
            f"{shares[True]:.3f} | {shares['real']:.3f} |",
        ]
    )


REFERENCE_SWEEPS = 2000


def solver_table(
    batches: list[tuple[torch.Tensor, torch.Tensor]], sketches: list[torch.Tensor], sweeps: list[int]
) -> str:
    """The harmonic fill with each number of relaxation sweeps per level, without and with each image's own
    sketch as barriers: root mean square distance in the hole to the fill with :data:`REFERENCE_SWEEPS`
    sweeps (in [0, 1] units), mean hole PSNR, and the median time of a fill of 8 images of 256x256 with a
    centred 128x128 hole."""

    def fills(steps: int, guided: bool) -> list[torch.Tensor]:
        return [
            pull_push_fill(
                images * (1.0 - masks), masks, smoothing_steps=steps, barriers=sketch if guided else None
            )
            for (images, masks), sketch in zip(batches, sketches, strict=True)
        ]

    def distance(filled: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
        squares = [
            (((a - b) / 2) ** 2 * masks).sum() / (3 * masks.sum())
            for a, b, (_, masks) in zip(filled, reference, batches, strict=True)
        ]
        return float(torch.stack(squares).mean().sqrt())

    def psnr(filled: list[torch.Tensor]) -> float:
        return float(
            torch.cat(
                [
                    psnr_from_mse(hole_errors(f, images, masks)[1])
                    for f, (images, masks) in zip(filled, batches, strict=True)
                ]
            ).mean()
        )

    images = torch.rand(8, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    masks = torch.zeros(8, 1, 256, 256)
    masks[..., 64:192, 64:192] = 1.0
    reference = {guided: fills(REFERENCE_SWEEPS, guided) for guided in (False, True)}
    lines = [
        "**the harmonic fill's solver: relaxation sweeps per pyramid level, validation tiles**",
        "",
        "| sweeps per level | distance to the exact fill, without / with the sketch | hole PSNR without / with (dB) | lift (dB) | ms for 8 x 256x256 |",
        "|---|---|---|---|---|",
    ]
    for steps in [*sweeps, REFERENCE_SWEEPS]:
        results = (
            reference
            if steps == REFERENCE_SWEEPS
            else {guided: fills(steps, guided) for guided in (False, True)}
        )
        times = []
        for _ in range(3 if steps != REFERENCE_SWEEPS else 0):
            started = time.perf_counter()
            pull_push_fill(images, masks, smoothing_steps=steps)
            times.append(1000 * (time.perf_counter() - started))
        without, with_sketch = psnr(results[False]), psnr(results[True])
        lines.append(
            f"| {steps} | {distance(results[False], reference[False]):.5f} / "
            f"{distance(results[True], reference[True]):.5f} | {without:.3f} / {with_sketch:.3f} | "
            f"{with_sketch - without:+.3f} | {f'{statistics.median(times):.0f}' if times else '-'} |"
        )
    return "\n".join(lines)


def training_batches(datamodule, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless training batches with their training masks, as the Trainer makes them."""
    while True:
        for batch in datamodule.train_dataloader():
            batch = datamodule.add_training_masks(batch, generator)
            yield batch["image"], batch["mask"]


def train_on_hole_mse(
    model: nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    iterations: int,
    lr: float,
    loss_name: str,
) -> list[float]:
    """Adam on the hole MSE (``mse``, pooled over the batch) or on the mean of each image's log hole MSE
    (``log_mse``: minus the mean hole PSNR, what validation reports); returns the model's training-batch hole
    MSE over the harmonic fill's, per iteration."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    ratios = []
    for _ in tqdm(range(iterations), desc=type(model).__name__, unit="it"):
        images, masks = next(batches)
        _, mse = hole_errors(model(images, masks), images, masks)
        with torch.no_grad():
            _, base_mse = hole_errors(harmonic_fill(images * (1.0 - masks), masks), images, masks)
        loss = mse.mean() if loss_name == "mse" else mse.clamp_min(1e-6).log().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ratios.append(float(mse.detach().mean() / base_mse.mean()))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overrides", nargs="*", default=[], help="Hydra overrides of the train config")
    parser.add_argument(
        "--train-batches", type=int, default=40, help="training batches to score the fills on"
    )
    parser.add_argument(
        "--unet-iterations", type=int, default=0, help="train the plain U-Net this long (0: skip)"
    )
    parser.add_argument("--unet-width", type=int, default=32)
    parser.add_argument(
        "--blend-iterations", type=int, default=0, help="train the learned blend this long (0: skip)"
    )
    parser.add_argument(
        "--blend-start",
        choices=sorted(BLEND_STARTS),
        default="half",
        help="where the learned blend starts: half and half, or (nearly) the harmonic fill",
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--unet-loss", choices=["mse", "log_mse"], default="mse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--solver-sweeps", type=int, nargs="*", default=[], help="relaxation sweeps per level to compare"
    )
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=args.overrides)
    datamodule = build_datamodule(cfg, seed=args.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    generator = torch.Generator().manual_seed(args.seed)
    stream = training_batches(datamodule, generator)
    train_set = [next(stream) for _ in range(args.train_batches)]
    val_set, val_sketches = [], []
    for batch in datamodule.val_dataloader():
        batch = datamodule.add_evaluation_masks(batch)
        val_set.append((batch["image"], batch["mask"]))
        val_sketches.append(batch["sketch"])

    fills: dict[str, Fill] = {
        "mean colour": BASELINES["mean"],
        "harmonic": BASELINES["harmonic"],
        "pull_push": BASELINES["pull_push"],
        "telea": BASELINES["telea"],
        "navier_stokes": BASELINES["ns"],
        "biharmonic (scikit-image)": BASELINES["biharmonic"],
    }
    controls = {
        f"plain U-Net, {args.unet_loss}, {args.unet_iterations} iterations": (
            args.unet_iterations,
            lambda: PlainUNet(args.unet_width),
        ),
        f"learned blend from {args.blend_start}, {args.unet_loss}, {args.blend_iterations} iterations": (
            args.blend_iterations,
            lambda: LearnedBlend(start=args.blend_start),
        ),
    }
    if args.blend_iterations and args.blend_start == "half":
        fills["half harmonic, half biharmonic"] = half_blend
    for name, (iterations, build) in controls.items():
        if not iterations:
            continue
        model = build()
        started = time.perf_counter()
        ratios = train_on_hole_mse(model, stream, iterations, args.lr, args.unet_loss)
        minutes = (time.perf_counter() - started) / 60
        model.eval()
        fills[name] = model
        window = max(1, min(50, len(ratios) // 4))
        first, last = sum(ratios[:window]) / window, sum(ratios[-window:]) / window
        parameters = sum(p.numel() for p in model.parameters())
        print(
            f"{name} ({parameters:,} parameters, {minutes:.1f} min): training-batch hole MSE / the harmonic "
            f"fill's {first:.3f} over the first {window} iterations, {last:.3f} over the last {window}"
        )
    overrides = " ".join(args.overrides) or "none"
    print(
        table(
            f"training batches ({args.train_batches} x {cfg.dataset.batch_size}, overrides: {overrides})",
            score(fills, train_set),
        )
    )
    print()
    print(
        table(
            f"validation set ({sum(len(images) for images, _ in val_set)} images, evaluation masks)",
            score(fills, val_set),
        )
    )
    print()
    print(sketch_table(val_set, val_sketches))
    if args.solver_sweeps:
        print()
        print(solver_table(val_set, val_sketches, args.solver_sweeps))


if __name__ == "__main__":
    main()
