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

import kornia
import torch
import torch.nn.functional as F

from mtmsa.models.generator import GeneratorOutput
from mtmsa.utils.filters import window_max


def hole_l1(prediction: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the hole pixels of the batch (0 when there is no hole).

    Shapes: prediction, target (B,C,H,W); masks (B,1,H,W), 1 = hole -> scalar. Known pixels contribute
    nothing to the value or the gradient; a larger hole weighs more (pixels are averaged over the batch).
    """
    hole_values = masks.sum() * prediction.shape[1]
    return ((prediction - target).abs() * masks).sum() / hole_values.clamp_min(1.0)


def hole_l2(prediction: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the hole pixels of the batch (0 when there is no hole); what PSNR measures.

    Shapes as :func:`hole_l1`.
    """
    hole_values = masks.sum() * prediction.shape[1]
    return ((prediction - target).square() * masks).sum() / hole_values.clamp_min(1.0)


def sketch_edge_loss(
    prediction: torch.Tensor, target: torch.Tensor, sketches: torch.Tensor, masks: torch.Tensor
) -> torch.Tensor:
    """Mean L1 distance between the image gradients (Sobel) of prediction and target over the sketch's
    pixels inside the hole, the sketch grown by one pixel (0 without any), taken at each pixel against the
    target's gradient or its negative, whichever is nearer: where a line was drawn, the output must have an
    edge as strong and as oriented as the real one, of either polarity.

    A sketch says where an edge runs, not which side of it is darker. Matched with its sign, an edge whose
    polarity cannot be told from the surroundings is best left undrawn; matched up to its sign, drawing it
    pays.

    Shapes: prediction, target (B,C,H,W); sketches, masks (B,1,H,W) -> scalar.
    """
    drawn = (window_max(sketches, 1) * masks)[:, 0]  # (B,H,W)
    predicted = kornia.filters.spatial_gradient(prediction)  # (B,C,2,H,W)
    real = kornia.filters.spatial_gradient(target)
    same = (predicted - real).abs().sum(dim=(1, 2))  # (B,H,W)
    flipped = (predicted + real).abs().sum(dim=(1, 2))
    nearer = torch.where(flipped < same, flipped, same)  # a tie (no edge yet) aims at the real polarity
    count = drawn.sum() * prediction.shape[1] * 2
    return (nearer * drawn).sum() / count.clamp_min(1.0)


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

    ``loss = hole_l1_weight * (coarse_weight * l1_coarse + l1_refined) + hole_l2_weight * (coarse_weight *
    l2_coarse + l2_refined) + gan_scale * (adversarial_weight * adversarial + feature_matching_weight *
    feature_matching) + sketch_edge_weight * sketch_edges`` (:func:`sketch_edge_loss` of the refined output).

    L1 alone pulls each pixel towards the median of what could be there, the adversarial and feature
    matching terms towards sharp, plausible detail; the squared error towards the mean, which is what PSNR
    rewards. The weights choose between them. ``gan_scale`` (:meth:`gan_scale`) rises from 0 to 1 over the
    first ``adversarial_warmup_steps`` generator steps: reconstruction first, while the discriminator cannot
    yet tell real detail from noise.
    """

    hole_l1_weight: float = 1.0
    hole_l2_weight: float = 0.0
    coarse_weight: float = 1.0
    adversarial_weight: float = 0.1
    feature_matching_weight: float = 1.0
    sketch_edge_weight: float = 0.0
    adversarial_warmup_steps: int = 0

    def gan_scale(self, step: int | None) -> float:
        """The share of the adversarial and feature-matching weights in force at generator step ``step``
        (0-based): ``step / adversarial_warmup_steps`` up to 1; 1 when there is no warm-up or no step."""
        if step is None or self.adversarial_warmup_steps <= 0:
            return 1.0
        return min(1.0, step / self.adversarial_warmup_steps)

    def generator_loss(
        self,
        output: GeneratorOutput,
        target: torch.Tensor,
        masks: torch.Tensor,
        fake_logits: torch.Tensor | None,
        fake_features: Sequence[torch.Tensor] = (),
        real_features: Sequence[torch.Tensor] = (),
        sketches: torch.Tensor | None = None,
        step: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Terms and total. ``fake_logits=None`` (no discriminator) makes the adversarial term 0, no real
        features (``feature_matching_weight=0`` skips computing them) the feature-matching term; ``step``, the
        generator step, sets :meth:`gan_scale` (None: the full weights)."""
        l1_coarse = hole_l1(output.coarse, target, masks)
        l1_refined = hole_l1(output.refined, target, masks)
        l2_coarse = hole_l2(output.coarse, target, masks)
        l2_refined = hole_l2(output.refined, target, masks)
        zero = l1_refined.new_zeros(())
        adversarial = zero if fake_logits is None else hinge_generator_loss(fake_logits)
        matching = feature_matching_loss(fake_features, real_features) if real_features else zero
        guided = sketches is not None and self.sketch_edge_weight
        sketch_edges = sketch_edge_loss(output.refined, target, sketches, masks) if guided else zero
        loss = (
            self.hole_l1_weight * (self.coarse_weight * l1_coarse + l1_refined)
            + self.hole_l2_weight * (self.coarse_weight * l2_coarse + l2_refined)
            + self.gan_scale(step)
            * (self.adversarial_weight * adversarial + self.feature_matching_weight * matching)
            + self.sketch_edge_weight * sketch_edges
        )
        return {
            "loss": loss,
            "l1_coarse": l1_coarse,
            "l1_refined": l1_refined,
            "l2_refined": l2_refined,
            "adversarial": adversarial,
            "feature_matching": matching,
            "sketch_edges": sketch_edges,
        }
