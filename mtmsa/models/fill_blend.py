"""A learned per-pixel choice between two smooth fills of the hole: the harmonic and the biharmonic one.

The harmonic fill interpolates the border's values; the biharmonic one continues its slopes too. Which of
the two is nearer the truth depends on the image around the hole (smooth shading favours the slopes,
texture and edges the values), and a small network can learn to tell: on the bundled sample photos such a
blend, started at the harmonic fill and trained on the training tiles, beats that fill on both held-out sets
(``experiments/README.md``, "Learning"). A generator network would have to compute the biharmonic
extrapolation itself, a global linear solve, to do the same; handed both fills, it only has to choose.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtmsa.models.layers import OUTPUT_INIT_STD

START_WEIGHT = 0.018
"""The biharmonic fill's share everywhere at initialisation: the blend starts (nearly) at the harmonic fill."""
DILATIONS = (1, 2, 4, 8, 1)


class FillBlend(nn.Module):
    """``harmonic + a * (biharmonic - harmonic)``, ``a`` in (0, 1) per pixel from five 3x3 convolutions
    (dilations 1-8, GELU) of the known image, the mask, the sketch and both fills.

    The last convolution starts with weights N(0, ``OUTPUT_INIT_STD``) and the bias that makes ``a`` =
    :data:`START_WEIGHT`: the blend starts at the harmonic fill, and every layer gets a gradient from the
    first step.

    forward: known (B,3,H,W) in [-1, 1], holes blank; masks (B,1,H,W), 1 = hole; sketches (B,S,H,W);
    harmonic, biharmonic (B,3,H,W) -> (B,3,H,W).
    """

    def __init__(self, sketch_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        inputs = 3 + 1 + sketch_channels + 3 + 3
        for dilation in DILATIONS:
            layers += [nn.Conv2d(inputs, width, 3, padding=dilation, dilation=dilation), nn.GELU()]
            inputs = width
        self.body = nn.Sequential(*layers)
        self.weight = nn.Conv2d(width, 1, 3, padding=1)
        nn.init.normal_(self.weight.weight, std=OUTPUT_INIT_STD)
        nn.init.constant_(self.weight.bias, math.log(START_WEIGHT / (1.0 - START_WEIGHT)))

    def forward(
        self,
        known: torch.Tensor,
        masks: torch.Tensor,
        sketches: torch.Tensor,
        harmonic: torch.Tensor,
        biharmonic: torch.Tensor,
    ) -> torch.Tensor:
        difference = biharmonic - harmonic
        features = self.body(torch.cat([known, masks, sketches, harmonic, difference], dim=1))
        return harmonic + torch.sigmoid(self.weight(features)) * difference
