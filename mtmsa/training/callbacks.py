"""Training callbacks: previews of fixed validation samples, and the run configuration in every checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from mtmsa.inference.checkpoints import CONFIG_KEY
from mtmsa.training.loggers import log_image
from mtmsa.utils.images import composite
from mtmsa.visualization.attention_maps import attention_pictures, run_with_attention
from mtmsa.visualization.grids import hole_view, inpainting_grid, save_png


class PreviewLogger(pl.Callback):
    """Every ``every_n_steps`` optimizer steps and after each validation, inpaint a fixed set of
    validation samples with the EMA generator and write ``<dirpath>/inpainting_step<N>.png`` (input | sketch |
    output | target), ``temperature_step<N>.png`` (each head's temperature, with its colour bar) and
    ``attention_step<N>.png`` (where each head attends from one hole position), also sent to wandb/TensorBoard.
    """

    def __init__(self, dirpath: str, every_n_steps: int = 200, num_samples: int = 4) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.num_samples = num_samples
        self.batch: dict[str, torch.Tensor] | None = None
        self.last_step = -1

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero and trainer.datamodule is not None:
            self.batch = trainer.datamodule.fixed_batch(self.num_samples)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.render(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.render(trainer, pl_module)

    @torch.no_grad()
    def pictures(self, generator: torch.nn.Module, device: torch.device) -> dict[str, torch.Tensor]:
        """name -> (3,H,W) picture of the fixed samples, the generator in eval mode meanwhile."""
        images, masks, sketches = (self.batch[k].to(device) for k in ("image", "mask", "sketch"))
        was_training = generator.training
        generator.eval()
        try:
            output, details = run_with_attention(generator, images, masks, sketches)
        finally:
            generator.train(was_training)
        completed = composite(output.refined, images, masks)
        return {
            "inpainting": inpainting_grid(images, masks, sketches, completed),
            **attention_pictures(hole_view(images, masks), output.aux, details),
        }

    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if self.batch is None or not trainer.is_global_zero or step == self.last_step:
            return
        self.last_step = step
        for name, image in self.pictures(pl_module.inference_generator, pl_module.device).items():
            save_png(image, self.dirpath / f"{name}_step{step:07d}.png")
            log_image(trainer.loggers, f"previews/{name}", image, step)


class RunConfigInCheckpoints(pl.Callback):
    """Stores the run configuration (the composed config, resolved) in every checkpoint, under
    :data:`~mtmsa.inference.checkpoints.CONFIG_KEY`, so that ``mtmsa.evaluate`` and ``mtmsa.inpaint`` can
    rebuild the generator from the checkpoint alone. ``mtmsa.train`` adds it to every run."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = self.config
