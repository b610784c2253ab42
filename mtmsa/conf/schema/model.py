"""Schemas of the ``model`` group (mtmsa/conf/model/*.yaml) and its ``model/attention`` sub-group.

Declare a new option of a model class here, one line in the schema of its ``_target_``: its kind (type)
and range, e.g. ``"perceptual_weight": Number(min=0),``.
"""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig

from mtmsa.conf.schema.base import Schema
from mtmsa.conf.schema.kinds import Boolean, Integer, Items, Node, Number, Pair, Text

FEATURE_STRIDE = 4
"""The generator's downsampling (mtmsa.models.generator.FEATURE_STRIDE): image sides must be multiples of it."""
MIN_IMAGE_SIZE = 32
"""The smallest training image side: 8 x 8 positions at the attention's resolution, room for its 5 x 5 match
footprint around a hole (below it every key touches the hole) and for the discriminator's patches."""

TEMPERATURE_MODES = ("constant", "learned_scalar", "learned_map")
MERGES = ("replace_hole", "gated_residual")
MATCHINGS = ("footprint", "projections")
INITIAL_FILLS = ("harmonic", "pull_push", "none")
BASELINES = ("mean", "telea", "ns", "pull_push", "harmonic", "biharmonic", "bounded_biharmonic")
"""The classical fills (mtmsa.evaluation.baselines.BASELINES): evaluate's baseline, validation's comparisons."""
METRICS = ("psnr", "psnr_hole", "ssim", "ssim_hole", "l1", "l1_hole")
"""What validation logs as ``val/<name>`` (mtmsa.evaluation.metrics.METRIC_NAMES)."""
LOWER_IS_BETTER = ("l1", "l1_hole")
MONITORED = tuple(f"val/{name}" for name in METRICS)
"""The metrics ``optimized_metric`` (the best checkpoint, sweeps) may name."""


def temperature_init_inside_range(node: DictConfig, path: str) -> Iterator[str]:
    low, high = node.range
    if not low < node.init < high:
        yield (
            f"{path}.init={node.init} is not strictly inside {path}.range=[{low}, {high}]; the learned "
            "temperature starts there and can never leave the range"
        )


TEMPERATURE = Schema(
    "model.attention.temperature",
    {
        "mode": Text(choices=TEMPERATURE_MODES),
        "range": Pair(Number(min=0, min_open=True), strict=True),
        "init": Number(min=0, min_open=True),
    },
    required=("mode", "range", "init"),
    rules=(temperature_init_inside_range,),
)

MTMSA = Schema(
    "model.attention (mtmsa)",
    {
        "heads": Integer(min=1),
        "temperature": Node(schema=TEMPERATURE),
        "patch_size": Integer(min=1, odd=True),
        "matching": Text(choices=MATCHINGS),
        "descriptor_size": Integer(min=1, nullable=True, null_means="channels / heads"),
        "merge": Text(choices=MERGES),
        "fused": Boolean(),
    },
)

CONTEXTUAL = Schema(
    "model.attention (contextual)",
    {
        "patch_size": Integer(min=1, odd=True),
        "rate": Integer(min=2, even=True),
        "softmax_scale": Number(min=0, min_open=True),
        "fuse_size": Integer(min=1, odd=True),
    },
)

MODULE = Schema(
    "model",
    {
        "generator": Node(),
        "attention": Node(nullable=True),
        "discriminator": Node(),
        "loss": Node(),
        "optimizer_g": Node(),
        "optimizer_d": Node(),
        "gradient_clip_norm": Number(min=0, min_open=True, nullable=True, null_means="off"),
        "ema_decay": Number(min=0, max=1, min_open=True, max_open=True, nullable=True, null_means="no EMA"),
        "validation_baselines": Items(of=Text(choices=BASELINES)),
        "attention_lr_scale": Number(min=0),
        "max_nonfinite_steps": Integer(min=1),
    },
)

OPTIMIZER = Schema(
    "optimizer",
    {
        "lr": Number(min=0, min_open=True),
        "betas": Pair(Number(min=0, max=1, max_open=True), strict=False),
        "weight_decay": Number(min=0),
        "eps": Number(min=0, min_open=True),
        "amsgrad": Boolean(),
    },
    closed=False,
)

TARGETS = {
    "mtmsa.training.module.InpaintingModule": MODULE,
    "mtmsa.models.generator.InpaintGenerator": Schema(
        "model.generator",
        {
            "width": Integer(min=2),
            "initial_fill": Text(choices=INITIAL_FILLS),
            "sketch_barriers": Boolean(),
            "fill_blend": Boolean(),
            "fill_blend_bounded": Boolean(),
        },
    ),
    "mtmsa.models.discriminator.PatchDiscriminator": Schema(
        "model.discriminator", {"width": Integer(min=1), "layers": Integer(min=1)}
    ),
    "mtmsa.models.losses.InpaintingLoss": Schema(
        "model.loss",
        {
            "hole_l1_weight": Number(min=0),
            "hole_l2_weight": Number(min=0),
            "coarse_weight": Number(min=0),
            "adversarial_weight": Number(min=0),
            "feature_matching_weight": Number(min=0),
            "sketch_edge_weight": Number(min=0),
            "adversarial_warmup_steps": Integer(min=0),
        },
    ),
    "torch.optim.Adam": OPTIMIZER,
    "torch.optim.AdamW": OPTIMIZER,
    "mtmsa.models.attention.build_mtmsa": MTMSA,
    "mtmsa.models.attention.ContextualAttention": CONTEXTUAL,
    "mtmsa.models.attention.IdentityAttention": Schema("model.attention (none)", {}),
}
