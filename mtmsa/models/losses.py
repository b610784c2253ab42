"""Reconstruction and hinge adversarial losses of the inpainting GAN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mtmsa.models.generator import GeneratorOutput


def masked_l1(
    prediction: torch.Tensor,
    target: torch.Tensor,
    masks: torch.Tensor,
    hole_weight: float = 1.0,
    valid_weight: float = 1.0,
) -> torch.Tensor:
    """Per-pixel weighted L1: ``mean(|prediction - target| * (hole_weight * m + valid_weight * (1 - m)))``.

    Both the hole and the valid term are divided by the total number of elements (not by their own pixel
    counts), so a weight is a per-pixel weight that means the same for every hole size, and a larger hole
    contributes proportionally more. With both weights 1 this is the plain mean absolute error.

    Shapes: prediction, target (B,C,H,W); masks (B,1,H,W), 1 = hole -> scalar.
    """
    weights = hole_weight * masks + valid_weight * (1.0 - masks)
    return ((prediction - target).abs() * weights).mean()


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - real)) + mean(relu(1 + fake))`` (SAGAN / SN-PatchGAN hinge loss, no 1/2 factor)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean(fake)``: the generator raises the discriminator's logits on its outputs."""
    return -fake_logits.mean()


@dataclass
class InpaintingLoss:
    """Generator objective: L1 of both stages plus the weighted hinge adversarial term.

    ``loss = coarse_weight * l1_coarse + l1_refined + adversarial_weight * adversarial``, each L1 being
    ``masked_l1(..., hole_weight=l1_hole, valid_weight=l1_valid)`` against the ground truth.
    """

    l1_hole: float = 1.0
    l1_valid: float = 1.0
    coarse_weight: float = 1.0
    adversarial_weight: float = 0.1

    def generator_loss(
        self,
        output: GeneratorOutput,
        target: torch.Tensor,
        masks: torch.Tensor,
        fake_logits: torch.Tensor | None,
    ) -> dict[str, torch.Tensor]:
        """Terms and total; ``fake_logits=None`` (e.g. an L1-only warm-up) makes the adversarial term 0."""
        l1_coarse = masked_l1(output.coarse, target, masks, self.l1_hole, self.l1_valid)
        l1_refined = masked_l1(output.refined, target, masks, self.l1_hole, self.l1_valid)
        adversarial = l1_refined.new_zeros(()) if fake_logits is None else hinge_generator_loss(fake_logits)
        loss = self.coarse_weight * l1_coarse + l1_refined + self.adversarial_weight * adversarial
        return {"loss": loss, "l1_coarse": l1_coarse, "l1_refined": l1_refined, "adversarial": adversarial}
