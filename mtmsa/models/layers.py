"""Gated convolutions (DeepFill v2, Yu et al. 2019), the building blocks of the inpainting generator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

OUTPUT_INIT_STD = 1e-3
"""Standard deviation of the weights of a network's last, linear convolution: its output starts near 0, yet
every layer before it gets a gradient from the first step (a zero weight would block them all, and Adam's
steps do not depend on the gradient's scale)."""


class GatedConv2d(nn.Module):
    """Convolution with a learned soft gate: ``elu(features) * sigmoid(gate)``.

    One convolution produces ``2 * out_channels`` channels, split into features and gate. Padding is
    ``dilation * (kernel_size - 1) // 2``: the size is kept at stride 1 and halved at stride 2 (even sizes).

    Shape: (B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride).

    Initialisation keeps the activation scale through deep stacks (PyTorch's default init lets it fade
    to the biases within ~10 gated layers, leaving the untrained generator blind to its input): gate
    weights and biases start at 0, so every gate is sigmoid(0) = 1/2, and feature weights are Kaiming
    normal for a ReLU-like unit scaled by 2 to undo that 1/2.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            2 * out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size - 1) // 2,
            dilation=dilation,
        )
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        features, gate = self.conv.weight.chunk(2, dim=0)
        nn.init.kaiming_normal_(features, nonlinearity="relu")
        features.mul_(2.0)
        nn.init.zeros_(gate)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gate = self.conv(x).chunk(2, dim=1)
        return F.elu(features) * torch.sigmoid(gate)


class GatedUpConv2d(GatedConv2d):
    """DeepFill's "transposed" gated convolution: nearest-neighbour upsampling x2, then a gated 3x3 conv.

    Shape: (B, in_channels, H, W) -> (B, out_channels, 2H, 2W).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))
