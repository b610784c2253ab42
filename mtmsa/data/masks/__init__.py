"""Training masks made in batches on the device: random shapes, rasterised, held to a hole-ratio range, mixed.

- :mod:`~mtmsa.data.masks.samplers`: brush strokes (DeepFill v2), irregular strokes (LaMa) and boxes;
- :mod:`~mtmsa.data.masks.rasterize`: shapes to (B,1,H,W) masks;
- :mod:`~mtmsa.data.masks.ratio`: moving a mask's hole ratio into a range;
- :mod:`~mtmsa.data.masks.generators`: the generators the ``mask`` configs build (free-form, mixed).

The fixed masks of validation and evaluation, and the hole-ratio buckets, live with the evaluation
(:mod:`mtmsa.evaluation.masks`, :mod:`mtmsa.evaluation.buckets`).
"""

from mtmsa.data.masks.generators import FreeFormMasks, MaskGenerator, MixedMasks
from mtmsa.data.masks.rasterize import rasterize_boxes, rasterize_segments
from mtmsa.data.masks.ratio import fit_hole_ratio, in_ratio_range
from mtmsa.data.masks.samplers import Boxes, BrushStrokes, IrregularStrokes, Segments

__all__ = [
    "Boxes",
    "BrushStrokes",
    "FreeFormMasks",
    "IrregularStrokes",
    "MaskGenerator",
    "MixedMasks",
    "Segments",
    "fit_hole_ratio",
    "in_ratio_range",
    "rasterize_boxes",
    "rasterize_segments",
]
