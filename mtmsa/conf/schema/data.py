"""Schemas of the data groups: ``dataset``, ``mask`` (any nesting of the mask generators) and ``sketch``.

Declare a new option here, one line in the schema of its ``_target_``: its kind (type) and range, e.g. a
dataset augmentation flag ``"grayscale": Boolean(),`` in DATASET.
"""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig

from mtmsa.conf.schema.base import Schema
from mtmsa.conf.schema.kinds import Boolean, Integer, Node, Nodes, Number, Pair, Text, Weights
from mtmsa.conf.schema.model import FEATURE_STRIDE, MIN_IMAGE_SIZE

FRACTION = Number(min=0, max=1)
FRACTIONS = Pair(FRACTION)
COUNTS = Pair(Integer(min=0))

DATASET = Schema(
    "dataset",
    {
        "name": Text(),
        "root": Text(described="a folder of images"),
        "train_dir": Text(),
        "val_dir": Text(),
        "train_list": Text(nullable=True, null_means="every image below train_dir"),
        "val_list": Text(nullable=True, null_means="every image below val_dir"),
        "expected_layout": Text(empty=True),
        "prepare": Node(nullable=True),
        "image_size": Integer(
            min=MIN_IMAGE_SIZE,
            multiple_of=FEATURE_STRIDE,
            note=f"the generator works at 1/{FEATURE_STRIDE} of the image size",
        ),
        "resize": Integer(min=MIN_IMAGE_SIZE, nullable=True, null_means="image_size"),
        "random_crop": Boolean(),
        "hflip": Boolean(),
        "scale": Pair(Number(min=0, max=1, min_open=True), nullable=True, null_means="crop at full size"),
        "vflip": Boolean(),
        "rotate90": Boolean(),
        "color": Boolean(),
        "batch_size": Integer(min=1),
        "val_batch_size": Integer(min=1),
        "num_workers": Integer(min=0),
        "eval_seed": Integer(min=0, max=2**32 - 1),
    },
)


def strokes_or_boxes(node: DictConfig, path: str) -> Iterator[str]:
    if node.get("strokes") is None and node.get("boxes") is None:
        yield f"{path}.strokes and {path}.boxes are both null; give strokes, boxes or both"


def one_weight_per_generator(node: DictConfig, path: str) -> Iterator[str]:
    generators, weights = set(node.generators), set(node.probabilities)
    if generators != weights:
        yield (
            f"{path}.probabilities names {sorted(weights)} but {path}.generators names {sorted(generators)}; "
            "give one probability per generator"
        )


HOLE_RATIO = Pair(FRACTION, nullable=True, null_means="any")

TARGETS = {
    "mtmsa.data.datamodule.InpaintingDataModule": DATASET,
    "mtmsa.data.sample.ensure_sample_dataset": Schema(
        "dataset.prepare", {"tile": Integer(min=FEATURE_STRIDE), "val_photos": Node(nullable=True)}
    ),
    "mtmsa.data.masks.FreeFormMasks": Schema(
        "mask (FreeFormMasks)",
        {
            "strokes": Node(nullable=True),
            "boxes": Node(nullable=True),
            "hole_ratio": HOLE_RATIO,
            "max_attempts": Integer(min=1),
        },
        rules=(strokes_or_boxes,),
    ),
    "mtmsa.data.masks.MixedMasks": Schema(
        "mask (MixedMasks)",
        {
            "generators": Nodes(),
            "probabilities": Weights(),
            "hole_ratio": HOLE_RATIO,
            "max_attempts": Integer(min=1),
        },
        required=("generators", "probabilities"),
        rules=(one_weight_per_generator,),
    ),
    "mtmsa.data.masks.BrushStrokes": Schema(
        "mask strokes (BrushStrokes)",
        {
            "strokes": COUNTS,
            "vertices": Pair(Integer(min=1)),
            "mean_angle": Number(),
            "angle_range": Number(min=0),
            "width": FRACTIONS,
            "length": Number(min=0, min_open=True),
        },
    ),
    "mtmsa.data.masks.IrregularStrokes": Schema(
        "mask strokes (IrregularStrokes)",
        {
            "strokes": COUNTS,
            "segments": Pair(Integer(min=1)),
            "max_angle": Number(min=0),
            "length": Pair(Number(min=0)),
            "width": FRACTIONS,
        },
    ),
    "mtmsa.data.masks.Boxes": Schema(
        "mask boxes (Boxes)",
        {"count": COUNTS, "size": FRACTIONS, "margin": Number(min=0, max=0.5, max_open=True)},
    ),
    "mtmsa.data.sketch.EdgeSketches": Schema(
        "sketch (edges)",
        {
            "p": FRACTION,
            "blur": Number(min=0),
            "high_threshold": Pair(Number(min=0)),
            "low_ratio": FRACTIONS,
            "join": Number(min=0),
            "min_length": Number(min=0),
            "drop": Pair(Number(min=0, max=1, max_open=True)),
            "drop_cells": Integer(min=1),
            "warp": Number(min=0),
            "warp_cells": Integer(min=1),
            "hole_margin": Number(min=0),
            "sparse": FRACTION,
            "sparse_strokes": Pair(Integer(min=1)),
        },
    ),
    "mtmsa.data.sketch.NoSketches": Schema("sketch (none)", {}),
}
