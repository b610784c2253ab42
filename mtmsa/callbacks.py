"""Callbacks: preview grids (masked input | sketch | output | target), temperature and attention maps."""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch

from mtmsa.attention_viz import attention_panel, pick_hole_query, temperature_panel
from mtmsa.loggers import log_image
from mtmsa.models.attention import TemperatureMaskedAttention
from mtmsa.previews import image_grid, save_png
from mtmsa.utils.images import composite, to_unit_range


def masked_preview(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] with the holes shown white."""
    return torch.where(masks.bool(), torch.ones_like(images), to_unit_range(images))


class PreviewLogger(pl.Callback):
    """Every ``every_n_steps`` optimizer steps and after each validation, inpaint a fixed set of
    validation samples with the EMA generator and write ``<dirpath>/inpainting_step<N>.png`` (plus the
    temperature maps and, for one hole position, where each head attends), also sent to wandb/TensorBoard.
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
    def render(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        step = trainer.global_step
        if self.batch is None or not trainer.is_global_zero or step == self.last_step:
            return
        self.last_step = step
        generator = pl_module.inference_generator
        was_training = generator.training
        generator.eval()
        attention_inputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        hooks = [
            m.register_forward_hook(lambda _m, args, _out: attention_inputs.append(args[:2]))
            for m in generator.modules()
            if isinstance(m, TemperatureMaskedAttention)
        ]
        try:
            images, masks, sketches = (
                self.batch[k].to(pl_module.device) for k in ("image", "mask", "sketch")
            )
            output = generator(images, masks, sketches)
            completed = composite(output.refined, images, masks)
            masked = masked_preview(images, masks)
            panels = {
                "inpainting": image_grid([masked, sketches, to_unit_range(completed), to_unit_range(images)])
            }
            if "temperature" in output.aux:
                panels["temperature"] = temperature_panel(masked, output.aux["temperature"])
            if attention_inputs:
                attention_module = next(
                    m for m in generator.modules() if isinstance(m, TemperatureMaskedAttention)
                )
                features, feature_masks = (t[:1] for t in attention_inputs[0])
                aux = attention_module(features, feature_masks, return_attention=True)[1]
                query = pick_hole_query(aux["hole"])
                panels["attention"] = attention_panel(
                    masked[:1], aux["attention"], query, features.shape[-2:]
                )
        finally:
            for hook in hooks:
                hook.remove()
            generator.train(was_training)
        for name, panel in panels.items():
            image = panel[0] if panel.dim() == 4 and panel.shape[0] == 1 else panel
            if image.dim() == 4:
                image = torch.cat(list(image), dim=1)
            save_png(image, self.dirpath / f"{name}_step{step:07d}.png")
            log_image(trainer.loggers, f"previews/{name}", image, step)
