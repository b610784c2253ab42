"""The LightningModule: the GAN step (discriminator, then generator), EMA, validation metrics."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from mtmsa.evaluation.baselines import BASELINES
from mtmsa.evaluation.metrics import HOLE_PSNR, HeadStatistics, InpaintingMetrics, bucket_table
from mtmsa.evaluation.sketch_fidelity import SketchFidelity, SketchLift, sketch_bucket_table
from mtmsa.models.generator import GeneratorOutput
from mtmsa.models.losses import InpaintingLoss, hinge_discriminator_loss, hole_l1
from mtmsa.training.dashboards import (
    attention_statistics,
    gradient_norms,
    warn_if_temperature_at_upper_bound,
)
from mtmsa.training.loggers import log_table
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.images import composite, to_unit_range
from mtmsa.visualization.attention_maps import run_with_attention

OptimizerFactory = Callable[..., torch.optim.Optimizer]

MAX_PIXELS_FOR_STATISTICS = 256 * 256
"""Attention statistics need sample 0's full probability matrix: images up to this size (64x64 positions)."""


class TrainingDivergedError(UserInputError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


class InpaintingModule(pl.LightningModule):
    """Trains a generator against ``discriminator`` with manual optimization.

    ``generator(attention=attention)`` builds the generator with the attention factory in its slot (the
    two are separate config nodes so that sweeps address ``model.attention.*``).

    Batches are dicts with ``image`` (B,3,H,W) in [-1, 1], ``mask`` (B,1,H,W) 1 = hole and ``sketch``
    (B,1,H,W), the last two made on the device by the DataModule. Each training batch makes one
    discriminator step and one generator step, so ``trainer.global_step`` grows by 2 per batch. When the
    generator's loss has no discriminator term (:attr:`discriminator_steers` False) the discriminator is not
    trained: its forward and backward passes are skipped, and its optimizer takes an empty step (no
    gradient) so that ``max_steps``, the EMA warm-up and the GAN ramp count batches the same way.

    A step whose gradient norm is not finite (a NaN or inf in the loss or a gradient) is skipped: no
    weight, optimizer or EMA update, counted in ``train/skipped_steps``. The gradients are checked after
    DDP has averaged them, so every rank skips the same steps; Lightning counts only the steps taken, so
    ``max_steps`` is still reached. After ``max_nonfinite_steps`` skipped steps in a row of one network
    training stops with :class:`TrainingDivergedError`; the weights never hold a NaN,
    so no checkpoint written before or after does either.
    """

    def __init__(
        self,
        generator: Callable[..., nn.Module],
        attention: Callable[..., nn.Module] | None,
        discriminator: nn.Module,
        loss: InpaintingLoss,
        optimizer_g: OptimizerFactory,
        optimizer_d: OptimizerFactory,
        gradient_clip_norm: float | None = 10.0,
        ema_decay: float | None = 0.999,
        max_nonfinite_steps: int = 20,
        attention_lr_scale: float = 1.0,
        validation_baselines: Sequence[str] = ("mean", "pull_push"),
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.save_hyperparameters(  # plain values only: checkpoints are read weights-only
            ignore=[
                "generator",
                "attention",
                "discriminator",
                "loss",
                "optimizer_g",
                "optimizer_d",
                "validation_baselines",
            ]
        )
        self.generator = generator(attention=attention)
        self.discriminator = discriminator
        self.loss = loss
        self.optimizer_g = optimizer_g
        self.optimizer_d = optimizer_d
        self.gradient_clip_norm = gradient_clip_norm
        self.ema_decay = ema_decay
        self.max_nonfinite_steps = max_nonfinite_steps
        self.attention_lr_scale = attention_lr_scale
        self.skipped_steps = 0
        self.nonfinite_in_a_row = {"discriminator": 0, "generator": 0}
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval() if ema_decay else None
        self.val_metrics = InpaintingMetrics()
        self.val_sketch_metrics = InpaintingMetrics(buckets=())
        self.val_sketch_fidelity = SketchFidelity()
        self.val_sketch_lift = SketchLift()
        # With a learned base (model.generator.fill_blend), the base alone is scored too: what the networks'
        # residuals add to it is the model's score minus this one.
        self.learned_base = getattr(self.generator, "fill_blend", None) is not None
        self.val_base_metrics = InpaintingMetrics(buckets=())
        unknown = sorted(set(validation_baselines) - set(BASELINES))
        if unknown:
            raise ValueError(
                f"model.validation_baselines has unknown fills {unknown}; choose from {sorted(BASELINES)}"
            )
        self.val_baselines = nn.ModuleDict(
            {name: InpaintingMetrics(buckets=()) for name in validation_baselines}
        )
        # The fills' scores on the validation set: the same images and masks every time, so computed once.
        self.baseline_scores: dict[str, dict[str, torch.Tensor]] = {}
        self.temperature_range: tuple[float, float] | None = None  # as the attention reports it
        self.attention_statistics: dict[str, float] = {}  # of sample 0 of the last validation (dashboards)
        self.val_temperature = HeadStatistics()  # per head, as many as the attention's record reports

    @property
    def inference_generator(self) -> nn.Module:
        """The EMA generator when there is one, else the trained one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def forward(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        """Inpainted images (B,3,H,W) in [-1, 1]: the prediction composited into the known pixels."""
        output: GeneratorOutput = self.inference_generator(images, masks, sketches)
        return composite(output.refined, images, masks)

    def configure_optimizers(self):
        """Adam for each network; the generator's attention learns at ``attention_lr_scale`` x its rate."""
        groups = [
            {"name": name, "params": params} for name, params in self.generator.parameter_groups().items()
        ]
        optimizer_g = self.optimizer_g([group for group in groups if group["params"]])
        for group in optimizer_g.param_groups:
            if group["name"] == "attention":
                group["lr"] *= self.attention_lr_scale
        return optimizer_g, self.optimizer_d(self.discriminator.parameters())

    def _optimizer_step(self, optimizer, loss: torch.Tensor, network: str) -> bool:
        """Backward, clip and step ``optimizer``; False (and no step) when the gradient norm is not finite."""
        self.toggle_optimizer(optimizer)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        parameters = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        parts = self.generator.parts() if network == "generator" else {"discriminator": self.discriminator}
        norms = gradient_norms(parts)
        self.log_dict(
            {f"grad_norm/{name}": norm for name, norm in norms.items()}, on_step=True, on_epoch=False
        )
        # The parts hold every parameter the optimizer updates (parameter_groups is made from them), so their
        # norms give the total norm that clipping needs without a second pass over the gradients.
        norm = torch.linalg.vector_norm(torch.stack(list(norms.values()))) if norms else torch.zeros(())
        finite = bool(torch.isfinite(norm))
        if finite:
            if self.gradient_clip_norm:
                torch.nn.utils.clip_grads_with_norm_(parameters, self.gradient_clip_norm, norm)
            optimizer.step()
            self.nonfinite_in_a_row[network] = 0
        else:
            self._skip_step(network)
        self.untoggle_optimizer(optimizer)
        return finite

    def _skip_step(self, network: str) -> None:
        self.skipped_steps += 1
        self.nonfinite_in_a_row[network] += 1
        if self.nonfinite_in_a_row[network] >= self.max_nonfinite_steps:
            where = self.trainer.checkpoint_callback.dirpath if self.trainer.checkpoint_callback else None
            raise TrainingDivergedError(
                f"training stopped at step {self.global_step}: {self.nonfinite_in_a_row[network]} {network} "
                "steps in a row had a non-finite loss or gradient; no weight was updated by them, "
                f"so the checkpoints in {where} hold finite weights. Lower model.optimizer_g.lr / "
                "model.optimizer_d.lr, keep model.gradient_clip_norm set, or train in bf16-mixed or 32-true "
                "rather than 16-mixed; raise model.max_nonfinite_steps to tolerate longer streaks"
            )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        images, masks, sketches = batch["image"], batch["mask"], batch["sketch"]
        opt_g, opt_d = self.optimizers()
        output = self.generator(images, masks, sketches)
        completed = composite(output.refined, images, masks)

        logged = {}
        fake_features, real_features = [], []
        if self.discriminator_steers:
            real_logits = self.discriminator(images, masks, sketches)
            fake_logits = self.discriminator(completed.detach(), masks, sketches)
            d_loss = hinge_discriminator_loss(real_logits, fake_logits)
            self._optimizer_step(opt_d, d_loss, "discriminator")
            logged["train/d_loss"] = d_loss.detach()
            fake_features = self.discriminator.features(completed, masks, sketches)
        else:  # nothing would use it: no gradient, so the step changes nothing but the count
            opt_d.step()
        if self.loss.feature_matching_weight:
            with torch.no_grad():
                real_features = self.discriminator.features(images, masks, sketches)
        fake_logits = fake_features[-1].flatten(1) if fake_features else None
        step = self._generator_step()
        g_losses = self.loss.generator_loss(
            output, images, masks, fake_logits, fake_features, real_features, sketches, step
        )
        if self._optimizer_step(opt_g, g_losses["loss"], "generator"):
            self._update_ema()

        logged.update({f"train/{name}": value.detach() for name, value in g_losses.items() if name != "loss"})
        if output.initial_fill is not None:  # how far the model has moved from its initial fill, in the hole
            logged["train/residual_hole"] = hole_l1(output.refined.detach(), output.initial_fill, masks)
            logged["train/l1_initial_fill"] = hole_l1(output.initial_fill, images, masks)
        if self.learned_base:  # the networks' own share of that move: their residual over the learned base
            logged["train/network_residual_hole"] = hole_l1(output.refined.detach(), output.base, masks)
        logged["train/g_loss"] = g_losses["loss"].detach()
        logged["train/gan_scale"] = torch.tensor(self.loss.gan_scale(step), device=self.device)
        self.log_dict(logged, prog_bar=False, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
        self.log("train/g", logged["train/g_loss"], prog_bar=True, logger=False)
        if "train/d_loss" in logged:
            self.log("train/d", logged["train/d_loss"], prog_bar=True, logger=False)

    @property
    def discriminator_steers(self) -> bool:
        """Whether the generator's loss uses the discriminator (an adversarial or feature-matching weight);
        if not, the discriminator is not trained."""
        return bool(self.loss.adversarial_weight or self.loss.feature_matching_weight)

    def _generator_step(self) -> int:
        """Generator steps done (each batch makes a discriminator and a generator step); 0 with no trainer."""
        return self.trainer.global_step // 2 if self._trainer is not None else 0

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        step = self._generator_step()
        decay = min(self.ema_decay, (1.0 + step) / (10.0 + step))  # warm-up: early weights fade fast
        ema_params = list(self.generator_ema.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in self.generator.parameters()], 1.0 - decay)
        for ema_buffer, buffer in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema_buffer.copy_(buffer)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """The main metrics fill without guidance (comparable with the classical fills); the same images are
        filled again with their own sketches for the sketch metrics (``val/*_sketch``, fidelity)."""
        images, masks, sketches = batch["image"], batch["mask"], batch["sketch"]
        generator, unguided = self.inference_generator, torch.zeros_like(sketches)
        if batch_idx == 0 and images.shape[-2] * images.shape[-1] <= MAX_PIXELS_FOR_STATISTICS:
            output, details = run_with_attention(generator, images, masks, unguided)
            self.attention_statistics = {} if details is None else attention_statistics(details, masks)
        else:
            output = generator(images, masks, unguided)
        completed = to_unit_range(composite(output.refined, images, masks))
        target = to_unit_range(images)
        unguided_values = self.val_metrics.update(completed, target, masks)
        if self.learned_base:
            self.val_base_metrics.update(to_unit_range(composite(output.base, images, masks)), target, masks)
        if sketches.any():
            guided = to_unit_range(composite(generator(images, masks, sketches).refined, images, masks))
            guided_values = self.val_sketch_metrics.update(guided, target, masks)
            self.val_sketch_fidelity.update(guided, completed, target, sketches, masks)
            self.val_sketch_lift.update(guided_values[:, HOLE_PSNR], unguided_values[:, HOLE_PSNR], masks)
        if not self.baseline_scores:
            for name, metric in self.val_baselines.items():
                metric.update(to_unit_range(BASELINES[name](images, masks)), target, masks)
        if output.aux.temperature is not None:
            self.val_temperature.update(output.aux.temperature)
            self.temperature_range = output.aux.temperature_range

    def on_validation_epoch_end(self) -> None:
        values = self.val_metrics.compute()
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            log_table(self.loggers, "val/buckets", *bucket_table(values), step=self.global_step)
        logged = {f"val/{name}": value for name, value in values.items()}
        scores = self.baseline_scores or {
            name: metric.compute() for name, metric in self.val_baselines.items()
        }
        if not self.trainer.sanity_checking:
            self.baseline_scores = scores
        for name, score in scores.items():
            logged.update({f"val/{metric}_{name}_fill": score[metric] for metric in ("psnr_hole", "l1_hole")})
        if self.learned_base:
            base = self.val_base_metrics.compute()
            logged.update({f"val/{metric}_blend": base[metric] for metric in ("psnr_hole", "l1_hole")})
        logged.update({f"attention/{name}": value for name, value in self.attention_statistics.items()})
        logged.update(self._sketch_metrics())
        if self.val_temperature.update_count:
            temperatures = self.val_temperature.compute()
            logged.update({f"temperature/{k}": v for k, v in temperatures.items()})
            self.val_temperature.reset()
            if self.temperature_range is not None and not self.trainer.sanity_checking:
                warn_if_temperature_at_upper_bound(temperatures, self.temperature_range, self.global_step)
        self.log_dict(logged, sync_dist=True)
        for metric in (
            self.val_metrics,
            self.val_sketch_metrics,
            self.val_sketch_fidelity,
            self.val_sketch_lift,
            self.val_base_metrics,
            *self.val_baselines.values(),
        ):
            metric.reset()

    def _sketch_metrics(self) -> dict[str, torch.Tensor]:
        """``val/psnr_hole_sketch`` and ``val/l1_hole_sketch`` (the images filled with their own sketches), the lift
        ``val/sketch_lift_psnr_hole`` over the unguided fill with its standard error ``val/sketch_lift_psnr_hole_se``
        (none for a single image), and the fidelities, the last two also per hole-ratio bucket
        (``val/sketch_lift_psnr_hole_20-30%``) and as the table ``val/sketch_buckets``; empty without sketches."""
        guided = self.val_sketch_metrics.compute()
        if not guided.counts[-1]:
            return {}
        lift, fidelity = self.val_sketch_lift.compute(), self.val_sketch_fidelity.compute()
        if self.trainer.is_global_zero and not self.trainer.sanity_checking:
            log_table(
                self.loggers,
                "val/sketch_buckets",
                *sketch_bucket_table(lift, fidelity),
                step=self.global_step,
            )
        logged = {f"val/{name}_sketch": guided[name] for name in ("psnr_hole", "l1_hole")}
        logged.update(
            {f"val/{name}": value for name, value in {**lift, **fidelity}.items() if value is not None}
        )
        return logged

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mtmsa_skipped_steps"] = self.skipped_steps

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("mtmsa_skipped_steps", 0))
