"""A shallow inpainting network around one attention module: the ablation's test bed.

It isolates the attention from the generator's other paths (no dilated branch, no coarse stage): what it
adds to its initial fill can only come from what the attention brings into the hole.

    known image (B,3,H,W) + mask --pixel_unshuffle(4)--> conv 3x3 -> GELU -> conv 3x3   (B,C,H/4,W/4)
        -> attention(features, mask, guide=pixel_unshuffle(known, 4))                    (B,C,H/4,W/4)
        -> conv 3x3 -> GELU -> conv 3x3 -> pixel_shuffle(4) -> raw residual              (B,3,H,W)
        -> residual_output(raw, pull-push fill of the hole)

The attention gets the same inputs as in the generator's refinement stage (features at 1/4 resolution and
the known image at that resolution as the guide), and the last convolution starts near zero, as the
generator's does, so the untrained network returns its initial fill.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mtmsa.models.generator import (
    FEATURE_STRIDE,
    GUIDE_CHANNELS,
    OUTPUT_INIT_STD,
    GeneratorOutput,
    residual_output,
)
from mtmsa.models.initial_fill import pull_push_fill
from mtmsa.utils.images import masked_input


class Testbed(nn.Module):
    """``attention``: a factory ``attention(channels=C, guide_channels=48) -> module`` (the generator's
    contract). ``forward(images, masks, sketches)`` returns a :class:`GeneratorOutput` whose ``coarse`` is
    the initial fill (no coarse stage), so the generator's loss applies unchanged."""

    def __init__(self, attention: Callable[..., nn.Module], channels: int = 32) -> None:
        super().__init__()
        cells = 4 * FEATURE_STRIDE**2  # known RGB and the mask per pixel of a 4x4 cell
        self.encoder = nn.Sequential(
            nn.Conv2d(cells, channels, 3, padding=1), nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1)
        )
        self.attention = attention(channels=channels, guide_channels=GUIDE_CHANNELS)
        last = nn.Conv2d(channels, 3 * FEATURE_STRIDE**2, 3, padding=1)
        nn.init.normal_(last.weight, std=OUTPUT_INIT_STD)
        nn.init.zeros_(last.bias)
        self.decoder = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(), last)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> GeneratorOutput:
        """images (B,3,H,W) in [-1,1], masks (B,1,H,W) 1 = hole, sketches ignored; H, W divisible by 4."""
        known = masked_input(images, masks)
        base = pull_push_fill(known, masks)
        features = self.encoder(F.pixel_unshuffle(torch.cat([known, masks], dim=1), FEATURE_STRIDE))
        attended, aux = self.attention(features, masks, guide=F.pixel_unshuffle(known, FEATURE_STRIDE))
        raw = F.pixel_shuffle(self.decoder(attended), FEATURE_STRIDE)
        return GeneratorOutput(coarse=base, refined=residual_output(raw, base), aux=aux, initial_fill=base)
