"""The generator's objective: L1 in the hole, hinge adversarial loss, discriminator feature matching.

Every term is computed on the hole only. The output is composited (``result = mask * prediction + (1 -
mask) * image``) and each stage predicts a residual over a base that is already exact on known pixels,
so a known-pixel term could only pull the residual towards zero where it does not matter, and its
gradient (uncorrelated with the hole's) would drown the hole's signal: known pixels get no loss and,
through the composite, no gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mtmsa.models.generator import GeneratorOutput


def hole_l1(prediction: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the hole pixels of the batch (0 when there is no hole).

    Shapes: prediction, target (B,C,H,W); masks (B,1,H,W), 1 = hole -> scalar. Known pixels contribute
    nothing to the value or the gradient; a larger hole weighs more (pixels are averaged over the batch).
    """
    hole_values = masks.sum() * prediction.shape[1]
    return ((prediction - target).abs() * masks).sum() / hole_values.clamp_min(1.0)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``mean(relu(1 - real)) + mean(relu(1 + fake))`` (SAGAN / SN-PatchGAN hinge loss, no 1/2 factor)."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``-mean(fake)``: the generator raises the discriminator's logits on its outputs."""
    return -fake_logits.mean()


def feature_matching_loss(
    fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Mean over the discriminator's layers of the L1 distance between its features of the completed and
    of the real images (pix2pixHD, LaMa). Real features are targets (detached).

    Needs no pretrained network, and gives the generator a dense, stable signal from every layer of the
    discriminator, where the adversarial term only sees the last one.
    """
    terms = [F.l1_loss(fake, real.detach()) for fake, real in zip(fake_features, real_features, strict=True)]
    return torch.stack(terms).mean()


@dataclass
class InpaintingLoss:
    """Generator objective on the hole:

    ``loss = hole_l1_weight * (coarse_weight * l1_coarse + l1_refined) + adversarial_weight * adversarial
    + feature_matching_weight * feature_matching``.
    """

    hole_l1_weight: float = 1.0
    coarse_weight: float = 1.0
    adversarial_weight: float = 0.1
    feature_matching_weight: float = 1.0

    def generator_loss(
        self,
        output: GeneratorOutput,
        target: torch.Tensor,
        masks: torch.Tensor,
        fake_logits: torch.Tensor | None,
        fake_features: Sequence[torch.Tensor] = (),
        real_features: Sequence[torch.Tensor] = (),
    ) -> dict[str, torch.Tensor]:
        """Terms and total. ``fake_logits=None`` (no discriminator) makes the adversarial term 0, empty
        features the feature-matching term."""
        l1_coarse = hole_l1(output.coarse, target, masks)
        l1_refined = hole_l1(output.refined, target, masks)
        zero = l1_refined.new_zeros(())
        adversarial = zero if fake_logits is None else hinge_generator_loss(fake_logits)
        matching = feature_matching_loss(fake_features, real_features) if fake_features else zero
        loss = (
            self.hole_l1_weight * (self.coarse_weight * l1_coarse + l1_refined)
            + self.adversarial_weight * adversarial
            + self.feature_matching_weight * matching
        )
        return {
            "loss": loss,
            "l1_coarse": l1_coarse,
            "l1_refined": l1_refined,
            "adversarial": adversarial,
            "feature_matching": matching,
        }
