"""Pictures of the training data: ``python -m mtmsa.data.preview [dataset=... mask=... sketch=...]`` (or
``mtmsa-preview``).

Composes mtmsa/conf/preview.yaml (the ``dataset``, ``mask``, ``sketch`` and ``paths`` groups of
mtmsa/conf/train.yaml) and writes into ``out_dir`` (drawn by :mod:`mtmsa.visualization`):

- ``preview_<dataset>.png``: one training sample per row, image | mask | sketch | input, with the
  masks and sketches of the training distribution (``add_training_masks`` with a seeded generator);
- ``hole_ratio_histograms.png``: the hole-ratio histogram of the selected mask config, or one panel per
  option of mtmsa/conf/mask with ``all_masks=true``;
- ``sketch_steps.png``: the steps of :class:`~mtmsa.data.sketch.EdgeSketches` for a few of the samples
  (only when the sketch config is ``edges``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.utils.entry import hydra_entry

if TYPE_CHECKING:
    import numpy as np
    import torch

    from mtmsa.data.datamodule import Batch, InpaintingDataModule
    from mtmsa.data.sketch import EdgeSketches

# Torch and the pictures' code are imported inside the functions: the command line is checked before they load.


def training_samples(datamodule: InpaintingDataModule, num_samples: int, seed: int) -> Batch:
    """``num_samples`` augmented training images spread evenly over the training set, with masks and
    sketches drawn by ``add_training_masks`` from a generator seeded with ``seed``.

    Returns ``{"image": (N,3,H,W) in [-1, 1], "mask": (N,1,H,W), "sketch": (N,1,H,W)}``.
    """
    import numpy as np
    import torch

    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.train_set
    indices = np.linspace(0, len(dataset) - 1, min(num_samples, len(dataset))).round().astype(int)
    batch = {"image": torch.stack([dataset[int(i)]["image"] for i in indices])}
    return datamodule.add_training_masks(batch, torch.Generator().manual_seed(seed))


def hole_ratios(
    masks: Callable[..., torch.Tensor], count: int, size: int, batch_size: int, seed: int, name: str = ""
) -> np.ndarray:
    """(count,) hole ratios of ``count`` masks of ``size`` x ``size`` drawn in batches (with a progress bar)."""
    import torch
    from tqdm.auto import tqdm

    from mtmsa.utils.images import hole_ratio

    generator = torch.Generator().manual_seed(seed)
    ratios = []
    with tqdm(total=count, desc=f"hole ratios {name}".strip(), unit="mask") as progress:
        for first in range(0, count, batch_size):
            drawn = min(batch_size, count - first)
            ratios.append(hole_ratio(masks(drawn, size, size, generator=generator)))
            progress.update(drawn)
    return torch.cat(ratios).numpy()


def sketch_steps(sketches: EdgeSketches, images: torch.Tensor, masks: torch.Tensor, seed: int) -> list:
    """The maps of each step of ``sketches.draw`` for (B,3,H,W) images and (B,1,H,W) masks, in the order
    of ``SKETCH_STEP_TITLES``: (B,3,H,W) or (B,1,H,W) tensors in [0, 1].

    Steps 3-6 are ``sketches.stages`` with a generator seeded with ``seed``, so the last map equals
    ``sketches.draw(images, masks, generator seeded with seed)``. Steps 1-2 (blurred grey, non-maximum-suppressed Canny
    gradient magnitude scaled by its 99.9% quantile) are recomputed here for display, as EdgeSketches does not return them.
    """
    import kornia
    import torch

    from mtmsa.utils.images import to_unit_range

    generator = torch.Generator(device=images.device).manual_seed(seed)
    height, width = images.shape[-2:]
    sigma = max(0.5, sketches.blur * min(height, width))
    kernel = 2 * math.ceil(3 * sigma) + 1
    grey = kornia.color.rgb_to_grayscale(to_unit_range(images))
    blurred = kornia.filters.gaussian_blur2d(grey, (kernel, kernel), (sigma, sigma))
    magnitude, _ = kornia.filters.canny(grey, 1e-6, 1e-6, kernel, (sigma, sigma), False)
    level = torch.quantile(magnitude.flatten(1), 0.999, dim=1).clamp(min=0.1).view(-1, 1, 1, 1)
    return [
        to_unit_range(images),
        blurred,
        (magnitude / level).clamp(0, 1),
        *sketches.stages(images, masks, generator),
    ]


def mask_configs(cfg: DictConfig) -> dict[str, DictConfig]:
    """The selected mask config under its option name, or every option of the ``mask`` group."""
    if not cfg.all_masks:
        return {HydraConfig.get().runtime.choices.get("mask", "mask"): cfg.mask}
    names = GlobalHydra.instance().config_loader().get_group_options("mask")
    return {name: compose(f"mask/{name}").mask for name in names}


def write_pictures(cfg: DictConfig) -> dict[str, Path]:
    """Write the pictures of ``cfg`` (mtmsa/conf/preview.yaml) into ``cfg.out_dir``; returns name -> path."""
    from mtmsa.data.datamodule import build_datamodule
    from mtmsa.data.sketch import EdgeSketches
    from mtmsa.visualization.data_pictures import plot_hole_ratio_histograms, plot_sketch_steps
    from mtmsa.visualization.grids import save_png, training_sample_grid

    out_dir = Path(cfg.out_dir)
    datamodule = build_datamodule(cfg)
    batch = training_samples(datamodule, cfg.num_samples, cfg.seed)
    grid = training_sample_grid(batch["image"], batch["mask"], batch["sketch"])
    written = {"samples": save_png(grid, out_dir / f"preview_{cfg.dataset.name}.png")}
    ratios = {
        name: hole_ratios(
            instantiate(node),
            cfg.histogram_samples,
            cfg.histogram_size,
            cfg.histogram_batch_size,
            cfg.seed,
            name,
        )
        for name, node in mask_configs(cfg).items()
    }
    written["histograms"] = plot_hole_ratio_histograms(
        ratios, cfg.histogram_size, out_dir / "hole_ratio_histograms.png"
    )
    if isinstance(datamodule.sketches, EdgeSketches):
        shown = slice(0, cfg.sketch_step_samples)
        steps = sketch_steps(datamodule.sketches, batch["image"][shown], batch["mask"][shown], cfg.seed)
        written["sketch_steps"] = plot_sketch_steps(steps, batch["mask"][shown], out_dir / "sketch_steps.png")
    return written


@hydra_entry("preview")
def main(cfg: DictConfig) -> None:
    for name, path in write_pictures(cfg).items():
        print(f"{name}: wrote {path}")


if __name__ == "__main__":
    main()
