"""A learned per-pixel choice between two smooth fills of the hole: the harmonic and the biharmonic one.

The harmonic fill interpolates the border's values; the biharmonic one continues its slopes too. Which of
the two is nearer the truth depends on the image around the hole (smooth shading favours the slopes,
texture and edges the values), and a small network can learn to tell: on the bundled sample photos such a
blend, started at the harmonic fill and trained on the training tiles, beats that fill on both held-out sets
(``experiments/README.md``, "Learning"). A generator network would have to compute the biharmonic
extrapolation itself, a global linear solve, to do the same; handed both fills, it only has to choose.
With ``candidates=3`` the generator hands it a third fill, the biharmonic one kept within its border's range
(``model.generator.fill_blend_bounded``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtmsa.models.layers import OUTPUT_INIT_STD

START_WEIGHT = 0.018
"""The share of the fills after the first, together, everywhere at initialisation: the blend starts (nearly) at
the first fill, the harmonic one."""
DILATIONS = (1, 2, 4, 8, 1)


class FillBlend(nn.Module):
    """A per-pixel convex combination of ``candidates`` fills, by default ``harmonic + a * (biharmonic -
    harmonic)``: the weights (a softmax over the fills, the first one's logit held at 0) from five 3x3
    convolutions (dilations 1-8, GELU) of the known image, the mask, the sketch, the first fill and the others'
    differences from it. With two fills the weight of the second is ``a = sigmoid(logit)``.

    The last convolution starts with weights N(0, ``OUTPUT_INIT_STD``) and the bias that gives the fills after
    the first :data:`START_WEIGHT` of the weight together: the blend starts at the first fill, and every layer
    gets a gradient from the first step.

    forward: known (B,3,H,W) in [-1, 1], holes blank; masks (B,1,H,W), 1 = hole; sketches (B,S,H,W); then the
    ``candidates`` fills (B,3,H,W), the harmonic one first -> (B,3,H,W).
    """

    def __init__(self, sketch_channels: int = 1, width: int = 16, candidates: int = 2) -> None:
        super().__init__()
        if candidates < 2:
            raise ValueError(f"FillBlend blends at least 2 fills, got candidates={candidates}")
        layers: list[nn.Module] = []
        inputs = 3 + 1 + sketch_channels + 3 * candidates
        for dilation in DILATIONS:
            layers += [nn.Conv2d(inputs, width, 3, padding=dilation, dilation=dilation), nn.GELU()]
            inputs = width
        self.body = nn.Sequential(*layers)
        self.weight = nn.Conv2d(width, candidates - 1, 3, padding=1)
        nn.init.normal_(self.weight.weight, std=OUTPUT_INIT_STD)
        others = START_WEIGHT / (candidates - 1)
        nn.init.constant_(self.weight.bias, math.log(others / (1.0 - START_WEIGHT)))

    def forward(
        self, known: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor, *fills: torch.Tensor
    ) -> torch.Tensor:
        first, differences = fills[0], [fill - fills[0] for fill in fills[1:]]
        features = self.body(torch.cat([known, masks, sketches, first, *differences], dim=1))
        logits = self.weight(features)
        weights = torch.softmax(torch.cat([torch.zeros_like(logits[:, :1]), logits], dim=1), dim=1)
        return first + sum(weights[:, index + 1 : index + 2] * d for index, d in enumerate(differences))
