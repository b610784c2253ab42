"""SN-PatchGAN discriminator (DeepFill v2), conditioned on the mask and the sketch."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Stack of spectral-normalised 5x5 stride-2 convs, each followed by LeakyReLU(0.2) (as in DeepFill v2,
    the last one included); every output position is the logit of one overlapping image patch.

    Channels are width, 2w, 4w, 4w, ... (capped at 4w). Each conv has padding 2, so a side of n pixels
    becomes ceil(n / 2): any input gives at least a 1x1 map, e.g. 64x64 -> 1x1 and 256x256 -> 4x4 with
    6 layers. Use fewer ``layers`` to keep several patches at small sizes (64x64 with 4 layers -> 4x4).

    Args:
        width: channels of the first conv; 64 is the paper scale.
        in_channels: channels of ``cat([image, mask, sketch])``; 5 for a 1-channel sketch.
        layers: number of stride-2 convs.
    """

    def __init__(self, width: int = 64, in_channels: int = 5, layers: int = 6) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"PatchDiscriminator layers must be >= 1, got {layers}; the paper uses 6.")
        channels = [in_channels] + [min(2**i, 4) * width for i in range(layers)]
        blocks: list[nn.Module] = []
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            blocks += [spectral_norm(nn.Conv2d(cin, cout, 5, stride=2, padding=2)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*blocks)

    def features(
        self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor
    ) -> list[torch.Tensor]:
        """The activation after each layer, the last one being the patch logits (B, C, H', W')."""
        x = torch.cat([images, masks, sketches], dim=1)
        activations = []
        for conv, activation in zip(self.net[::2], self.net[1::2], strict=True):
            x = activation(conv(x))
            activations.append(x)
        return activations

    def forward(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> torch.Tensor:
        """images (B,3,H,W), masks (B,1,H,W), sketches (B,S,H,W) -> patch logits (B, C * H' * W')."""
        return self.net(torch.cat([images, masks, sketches], dim=1)).flatten(1)
