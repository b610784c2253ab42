"""Mask generators: shapes rasterised into (B,1,H,W) masks, optionally held to a hole-ratio range, and mixtures.

Every mask generator is a callable ``masks(batch_size, height, width, generator=g) -> (B,1,H,W)`` float32
tensor of exactly 0/1 (1 = hole) on ``g``'s device (the CPU when ``g`` is None, using the default RNG). The
same seeded generator gives the same masks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from mtmsa.data.masks.rasterize import rasterize_boxes, rasterize_segments
from mtmsa.data.masks.ratio import fit_hole_ratio, in_ratio_range
from mtmsa.data.masks.samplers import Boxes, device_of
from mtmsa.data.options import option_range


class MaskGenerator:
    """Base of the mask generators: optional hole-ratio range by rejection sampling.

    ``hole_ratio=(low, high)``: samples whose hole ratio is outside [low, high) are redrawn (at most
    ``max_attempts`` draws in all); the ones still outside are then moved into the range by
    :func:`fit_hole_ratio`. Subclasses implement ``sample(batch_size, height, width, generator)``.
    """

    def __init__(self, hole_ratio: Sequence[float] | None = None, max_attempts: int = 10):
        self.hole_ratio = None if hole_ratio is None else option_range(hole_ratio, "mask option hole_ratio")
        if self.hole_ratio is not None and self.hole_ratio[1] > 1:
            raise ValueError(f"mask option hole_ratio must lie within [0, 1], got {list(hole_ratio)}")
        if max_attempts < 1:
            raise ValueError(f"mask option max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = int(max_attempts)

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        masks = self.sample(batch_size, height, width, generator)
        if self.hole_ratio is None:
            return masks
        low, high = self.hole_ratio
        for _ in range(self.max_attempts - 1):
            rejected = torch.nonzero(~in_ratio_range(masks, low, high)).flatten()
            if len(rejected) == 0:
                return masks
            masks[rejected] = self.sample(len(rejected), height, width, generator)
        return fit_hole_ratio(masks, low, high)


class FreeFormMasks(MaskGenerator):
    """Union of stroke polylines and boxes, e.g. DeepFill v2's free-form strokes plus a box.

    Args:
        strokes: a stroke sampler (:class:`BrushStrokes`, :class:`IrregularStrokes`) or None.
        boxes: a :class:`Boxes` sampler or None. At least one of the two must be given.
        hole_ratio, max_attempts: see :class:`MaskGenerator`.
    """

    def __init__(self, strokes=None, boxes: Boxes | None = None, hole_ratio=None, max_attempts: int = 10):
        super().__init__(hole_ratio, max_attempts)
        if strokes is None and boxes is None:
            raise ValueError("FreeFormMasks needs strokes, boxes or both; both are null in the mask config")
        self.strokes = strokes
        self.boxes = boxes

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        masks = torch.zeros(batch_size, 1, height, width, device=device_of(generator))
        if self.strokes is not None:
            masks = torch.maximum(
                masks, rasterize_segments(self.strokes(batch_size, height, width, generator), height, width)
            )
        if self.boxes is not None:
            masks = torch.maximum(
                masks, rasterize_boxes(self.boxes(batch_size, height, width, generator), height, width)
            )
        return masks


class MixedMasks(MaskGenerator):
    """Each sample drawn from one of several generators, picked with the given (unnormalised) probabilities.

    Args:
        generators: name -> mask generator.
        probabilities: name -> weight, same names as ``generators``.
        hole_ratio, max_attempts: see :class:`MaskGenerator`.
    """

    def __init__(
        self,
        generators: Mapping[str, MaskGenerator],
        probabilities: Mapping[str, float],
        hole_ratio=None,
        max_attempts: int = 10,
    ):
        super().__init__(hole_ratio, max_attempts)
        if set(generators) != set(probabilities) or not generators:
            raise ValueError(
                f"MixedMasks needs one probability per generator: generators {sorted(generators)}, "
                f"probabilities {sorted(probabilities)}"
            )
        self.names = sorted(generators)
        self.generators = [generators[name] for name in self.names]
        weights = torch.tensor([float(probabilities[name]) for name in self.names], dtype=torch.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(
                f"MixedMasks probabilities must be >= 0 with a positive sum, got {dict(probabilities)}"
            )
        self.cumulative = (weights.cumsum(0) / weights.sum()).float()

    def sample(self, batch_size: int, height: int, width: int, generator=None) -> torch.Tensor:
        device = device_of(generator)
        choice = torch.bucketize(
            torch.rand(batch_size, generator=generator, device=device), self.cumulative.to(device), right=True
        )
        choice = choice.clamp(max=len(self.generators) - 1)
        masks = torch.zeros(batch_size, 1, height, width, device=device)
        for index, masks_of in enumerate(self.generators):
            chosen = torch.nonzero(choice == index).flatten()
            if len(chosen):
                masks[chosen] = masks_of(len(chosen), height, width, generator)
        return masks
