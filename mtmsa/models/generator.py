"""Two-stage coarse-to-fine gated-convolution inpainting generator (DeepFill v2 layout) with an attention slot.

The coarse network fills the hole from ``cat([image * (1 - mask), mask, sketch])``. Its prediction is pasted
into the known pixels and refined by two parallel branches at 1/4 resolution: dilated gated convolutions
(large receptive field) and an attention module (distant context), whose features are merged and decoded.

Each stage predicts a residual: ``tanh(raw + atanh(base))``, where the coarse stage's base is an initial
fill of the hole (``initial_fill="harmonic"`` or ``"pull_push"``: a smooth interpolation from the hole's border,
see :mod:`mtmsa.models.initial_fill`; ``"none"``: 0) and the refinement's base is the coarse result pasted
into the known pixels. The last convolution of each decoder starts near zero, so the untrained generator
returns nearly the initial fill, and training only has to learn what a smooth interpolation misses
(texture, structure, distant context). With ``fill_blend`` the coarse stage's base is itself learned: a
per-pixel blend of the harmonic and the biharmonic fill (with ``fill_blend_bounded`` also the biharmonic one
kept within its border's range) that starts at the harmonic one.

The attention module is not imported here: the generator receives a factory called as
``attention(channels=4 * width, guide_channels=48)`` whose module maps
``(x (B,C,H,W), mask (B,1,H',W'), guide=(B,48,H,W)) -> (y, AttentionOutput)``. The guide is the known image (holes
blank) rearranged to the attention's resolution, each position holding its 4x4 pixels: what to match on,
since the features of a hole position only describe the coarse fill, which knows nothing of where the
hole's content might be found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mtmsa.models.fill_blend import FillBlend
from mtmsa.models.initial_fill import pull_push_fill, smooth_fills, within_border_range
from mtmsa.models.layers import OUTPUT_INIT_STD, GatedConv2d, GatedUpConv2d
from mtmsa.models.outputs import AttentionOutput
from mtmsa.utils.images import composite, masked_input

DILATIONS = (2, 4, 8, 16)
FEATURE_STRIDE = 4  # the encoders' downsampling: the attention works at 1/4 of the image's resolution
GUIDE_CHANNELS = 3 * FEATURE_STRIDE**2  # the known image's pixels of one feature position
INITIAL_FILLS = ("harmonic", "pull_push", "none")
ATANH_LIMIT = 1.0 - 1e-3


class GeneratorOutput(NamedTuple):
    """Raw predictions of both stages, (B,3,H,W) in [-1,1], not composited; ``aux`` from the attention;
    ``initial_fill`` the smooth fill (B,3,H,W) the coarse stage's base starts as, what the untrained generator
    returns; ``base`` the coarse stage's base itself: the initial fill, or with ``fill_blend`` the learned blend
    of the smooth fills (what ``refined`` would be if both networks' residuals were 0)."""

    coarse: torch.Tensor
    refined: torch.Tensor
    aux: AttentionOutput
    initial_fill: torch.Tensor | None = None
    base: torch.Tensor | None = None


def _encoder(in_channels: int, width: int) -> nn.Sequential:
    """(B, in_channels, H, W) -> (B, 4 * width, H / 4, W / 4): a 5x5 gated conv, then two stride-2 steps."""
    return nn.Sequential(
        GatedConv2d(in_channels, width, kernel_size=5),
        GatedConv2d(width, 2 * width, stride=2),
        GatedConv2d(2 * width, 2 * width),
        GatedConv2d(2 * width, 4 * width, stride=2),
        GatedConv2d(4 * width, 4 * width),
    )


def _dilated_stack(channels: int) -> nn.Sequential:
    """Gated 3x3 convs with dilations 2, 4, 8, 16; the shape is kept."""
    return nn.Sequential(*(GatedConv2d(channels, channels, dilation=d) for d in DILATIONS))


def residual_output(raw: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """``tanh(raw + atanh(base))``: ``base`` where ``raw`` is 0, always inside (-1, 1)."""
    return torch.tanh(raw + torch.atanh(base.clamp(-ATANH_LIMIT, ATANH_LIMIT)))


def _decoder(in_channels: int, width: int) -> nn.Sequential:
    """(B, in_channels, H / 4, W / 4) -> (B, 3, H, W) raw residuals; the last conv is ungated and linear,
    with weights N(0, ``OUTPUT_INIT_STD``) and zero bias: the residual starts near 0 (the output near its
    base), yet every layer before it gets a gradient from the first step (a zero weight would block them
    all, and Adam's steps do not depend on the gradient's scale)."""
    last = nn.Conv2d(width // 2, 3, kernel_size=3, padding=1)
    nn.init.normal_(last.weight, std=OUTPUT_INIT_STD)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        GatedConv2d(in_channels, 4 * width),
        GatedConv2d(4 * width, 4 * width),
        GatedUpConv2d(4 * width, 2 * width),
        GatedConv2d(2 * width, 2 * width),
        GatedUpConv2d(2 * width, width),
        GatedConv2d(width, width // 2),
        last,
    )


class RefinementNetwork(nn.Module):
    """Second stage: a dilated branch and an attention branch at 1/4 resolution, merged and decoded.

    Shape: x (B, in_channels, H, W), masks (B,1,H,W) -> ((B,3,H,W) raw residual, the attention's record).
    """

    def __init__(self, in_channels: int, width: int, attention: Callable[..., nn.Module] | None) -> None:
        super().__init__()
        self.dilated_branch = nn.Sequential(_encoder(in_channels, width), _dilated_stack(4 * width))
        self.attention_encoder = _encoder(in_channels, width)
        self.attention = (
            None if attention is None else attention(channels=4 * width, guide_channels=GUIDE_CHANNELS)
        )
        self.attention_head = nn.Sequential(
            GatedConv2d(4 * width, 4 * width), GatedConv2d(4 * width, 4 * width)
        )
        self.decoder = _decoder(8 * width, width)

    def forward(
        self, x: torch.Tensor, masks: torch.Tensor, known: torch.Tensor
    ) -> tuple[torch.Tensor, AttentionOutput]:
        """``known``: the image with its holes blanked (B,3,H,W), matched on by the attention."""
        context = self.attention_encoder(x)
        aux = AttentionOutput()
        if self.attention is not None:
            guide = F.pixel_unshuffle(known, FEATURE_STRIDE)
            context, aux = self.attention(context, masks, guide=guide)
        merged = torch.cat([self.dilated_branch(x), self.attention_head(context)], dim=1)
        return self.decoder(merged), aux


class InpaintGenerator(nn.Module):
    """Coarse-to-fine gated-convolution inpainting generator.

    Args:
        width: base channel count; every gated conv outputs 1x, 2x or 4x width feature channels (its conv
            computes twice as many: features and gate). 48 is the paper scale (DeepFill v2 ``cnum=48``).
        attention: factory ``attention(channels=4 * width) -> nn.Module`` for the refinement stage's
            attention branch; None runs that branch without an attention op.
        in_channels: channels of the network input ``cat([image, mask, sketch])``; 5 for a 1-channel sketch.
        initial_fill: what the coarse stage's residual starts from: ``harmonic`` (the harmonic
            interpolation of the hole's border, what the configs choose), ``pull_push`` (its coarser
            start, the default here so that checkpoints saved before ``harmonic`` existed rebuild as they
            were trained) or ``none`` (0, i.e. the prediction is made from scratch).
        sketch_barriers: with ``harmonic``, the sketch's lines are barriers of the initial fill (each side
            of a drawn line filled from its own side of the border, an edge along it; see
            :func:`~mtmsa.models.initial_fill.harmonic_fill`): the sketch steers the fill before any
            training. False here, for the checkpoints saved before it existed; the configs set it.
        fill_blend: with ``harmonic``, the coarse stage's base is a learned per-pixel blend of the harmonic
            and the biharmonic fill (:class:`~mtmsa.models.fill_blend.FillBlend`, part of the generator),
            starting at the harmonic one; ``initial_fill`` of the output stays the harmonic fill, what the
            untrained generator returns (to 1.8 % of the two fills' difference).
        fill_blend_bounded: with ``fill_blend``, a third fill to blend: the biharmonic one kept within its
            border's range (:func:`~mtmsa.models.initial_fill.within_border_range`, which stops it overshooting
            where lines wall off a pocket of the hole). False here, for the checkpoints saved before it existed.

    Height and width of the inputs must be divisible by ``size_multiple``.
    """

    size_multiple = FEATURE_STRIDE
    initial_fill_levels: int | None = None
    """Pyramid levels of the pull-push fill; None: as many as the size needs. A fixed number keeps the
    graph independent of the size (set by :func:`mtmsa.inference.export.fixed_shape_copy`)."""

    def __init__(
        self,
        width: int = 48,
        attention: Callable[..., nn.Module] | None = None,
        in_channels: int = 5,
        initial_fill: str = "pull_push",
        sketch_barriers: bool = False,
        fill_blend: bool = False,
        fill_blend_bounded: bool = False,
    ) -> None:
        super().__init__()
        if width < 2:
            raise ValueError(f"InpaintGenerator width must be >= 2, got {width}; use e.g. 48 (paper) or 16.")
        if initial_fill not in INITIAL_FILLS:
            raise ValueError(
                f"InpaintGenerator initial_fill must be one of {INITIAL_FILLS}, got {initial_fill!r}"
            )
        if sketch_barriers and initial_fill != "harmonic":
            raise ValueError(
                f"InpaintGenerator sketch_barriers=true needs initial_fill='harmonic', got {initial_fill!r}"
            )
        if fill_blend and initial_fill != "harmonic":
            raise ValueError(
                f"InpaintGenerator fill_blend=true needs initial_fill='harmonic', got {initial_fill!r}"
            )
        if fill_blend_bounded and not fill_blend:
            raise ValueError("InpaintGenerator fill_blend_bounded=true needs fill_blend=true")
        self.in_channels = in_channels
        self.initial_fill = initial_fill
        self.sketch_barriers = sketch_barriers
        self.fill_blend = (
            FillBlend(sketch_channels=in_channels - 4, candidates=3 if fill_blend_bounded else 2)
            if fill_blend
            else None
        )
        self.fill_blend_bounded = fill_blend_bounded
        self.coarse = nn.Sequential(
            _encoder(in_channels, width), _dilated_stack(4 * width), _decoder(4 * width, width)
        )
        self.refinement = RefinementNetwork(in_channels, width, attention)

    def forward(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> GeneratorOutput:
        """images (B,3,H,W) in [-1,1], masks (B,1,H,W) 1 = hole, sketches (B,in_channels-4,H,W).

        Hole pixels of ``images`` are blanked here, so their values never affect the output.
        """
        self._check_inputs(images, masks, sketches)
        known = masked_input(images, masks)
        others: list[torch.Tensor] = []  # the fills the blend weighs against the initial one
        if self.initial_fill == "harmonic":
            lines = sketches.amax(dim=1, keepdim=True) if self.sketch_barriers and sketches.shape[1] else None
            initial, biharmonic = smooth_fills(
                known, masks, self.initial_fill_levels, lines, biharmonic=self.fill_blend is not None
            )
            if biharmonic is not None:
                others.append(biharmonic)
            if self.fill_blend_bounded:
                others.append(within_border_range(biharmonic, known, masks, self.initial_fill_levels, lines))
        elif self.initial_fill == "pull_push":
            initial = pull_push_fill(known, masks, self.initial_fill_levels)
        else:
            initial = torch.zeros_like(known)
        base = self.fill_blend(known, masks, sketches, initial, *others) if others else initial
        coarse = residual_output(self.coarse(torch.cat([known, masks, sketches], dim=1)), base)
        blended = composite(coarse, known, masks)
        refined, aux = self.refinement(torch.cat([blended, masks, sketches], dim=1), masks, known)
        return GeneratorOutput(
            coarse=coarse,
            refined=residual_output(refined, blended),
            aux=aux,
            initial_fill=initial,
            base=base,
        )

    def parts(self) -> dict[str, nn.Module]:
        """The network's parts by name, in the order data flows through them (for per-part dashboards)."""
        encoder, dilated, decoder = self.coarse
        refinement = self.refinement
        parts = {
            "fill_blend": self.fill_blend,
            "coarse_encoder": encoder,
            "coarse_dilated": dilated,
            "coarse_decoder": decoder,
            "refine_dilated_branch": refinement.dilated_branch,
            "refine_attention_encoder": refinement.attention_encoder,
            "attention": refinement.attention,
            "refine_attention_head": refinement.attention_head,
            "refine_decoder": refinement.decoder,
        }
        return {name: part for name, part in parts.items() if part is not None}

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """The attention module's parameters and all others, for per-group learning rates."""
        parts = self.parts()
        attention = list(parts.pop("attention").parameters()) if "attention" in parts else []
        return {
            "convolutions": [p for part in parts.values() for p in part.parameters()],
            "attention": attention,
        }

    def _check_inputs(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> None:
        height, width = images.shape[-2:]
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(
                f"InpaintGenerator needs image height and width divisible by {self.size_multiple}, "
                f"got {height}x{width}; pad or resize images, masks and sketches to a multiple of "
                f"{self.size_multiple}."
            )
        if masks.shape[-2:] != images.shape[-2:] or sketches.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"InpaintGenerator needs masks and sketches of the image size {height}x{width}, got masks "
                f"{tuple(masks.shape[-2:])} and sketches {tuple(sketches.shape[-2:])}; resize them to match."
            )
        channels = images.shape[1] + masks.shape[1] + sketches.shape[1]
        if channels != self.in_channels:
            raise ValueError(
                f"InpaintGenerator was built with in_channels={self.in_channels} but images, masks and "
                f"sketches have {channels} channels together; set in_channels to match the sketch channels."
            )
