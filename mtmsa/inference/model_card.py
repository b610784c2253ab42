"""The model card (``README.md``) written beside exported weights: architecture, attention settings, training
data and steps, the run's last validation table, intended use and limits, and how to load it."""

from __future__ import annotations

import re
from typing import Any

import torch

from mtmsa import __version__
from mtmsa.inference.checkpoints import TrainedGenerator

CARD_METRICS = ("psnr", "ssim", "l1", "psnr_hole", "ssim_hole", "l1_hole", "fid", "lpips")
"""The validation metrics of the card's evaluation table, overall and per hole-ratio bucket."""
METRIC_NAME = re.compile(r"val/([a-z0-9_]+?)(?:_(\d+-\d+%))?")


def _blended(generator: torch.nn.Module) -> str:
    """What the initial fill is blended with, if anything (``fill_blend``, ``fill_blend_bounded``)."""
    if getattr(generator, "fill_blend", None) is None:
        return ""
    bounded = (
        " and with it kept within its border's range"
        if getattr(generator, "fill_blend_bounded", False)
        else ""
    )
    return f", blended per pixel with the biharmonic fill{bounded} by learned weights (`fill_blend`)"


def model_card(trained: TrainedGenerator, training: dict[str, Any]) -> str:
    """Markdown text of the card; ``training`` is :func:`mtmsa.inference.pretrained.training_record`'s dict."""
    config, generator = trained.config, trained.generator
    parameters = sum(p.numel() for p in generator.parameters())
    sections = [
        "# mtmsa inpainting generator",
        f"Exported by mtmsa {__version__} from `{training.get('source', 'a checkpoint')}`. Free-form image "
        "inpainting with multi-head temperature masked self-attention (after Zhou, Zeng, Gong, "
        '"Learning to Scale Temperature in Masked Self-Attention for Image Inpainting", 2023).',
        "## Architecture",
        f"DeepFill-v2-style two-stage gated-convolution generator, width "
        f"{config['model']['generator'].get('width', 48)}, {parameters:,} parameters (EMA weights when the "
        f"run kept them). Initial fill: `{getattr(generator, 'initial_fill', 'pull_push')}`"
        f"{_blended(generator)}. Input: an RGB "
        "image in [-1, 1] with the hole blanked, the mask (1 = hole) and a sketch (1 on a stroke, zeros "
        f"without guidance); height and width multiples of {generator.size_multiple}. Output: the refined "
        "prediction; paste it into the hole, known pixels stay the input's.",
        "## Attention",
        _attention_table(trained.attention_config),
        "## Training",
        _table(
            {
                "data set": trained.dataset_name,
                "resolution": f"{trained.image_size} px",
                "steps (Lightning global_step: generator and discriminator optimizer steps)": training.get(
                    "global_step", "unknown"
                ),
                "masks": config.get("mask", {}).get("_target_", "unknown"),
                "sketches": config.get("sketch", {}).get("_target_", "none"),
            }
        ),
        "## Evaluation",
        _evaluation_table(training.get("evaluation") or {}),
        "## Intended use and limits",
        f"Filling holes in images like those of the `{trained.dataset_name}` data set, at about "
        f"{trained.image_size} px (larger images are filled in a window around the hole by `mtmsa-inpaint`), "
        "optionally guided by a sketch. Not for images unlike its training data, not for identity-preserving "
        "edits of faces, and not as evidence of what a hidden region really showed: the fill is a plausible "
        "guess. The weights carry the biases of their training data.",
        "## Loading",
        "```python\nfrom mtmsa.inference import load_pretrained\n\ngenerator, config = "
        "load_pretrained('this-folder')  # no code runs: safetensors + JSON\n```\n\n"
        "or `mtmsa-inpaint --checkpoint this-folder --image in.png --mask hole.png --out out.png`.",
    ]
    return "\n\n".join(sections) + "\n"


def _attention_table(attention: dict[str, Any]) -> str:
    if not attention:
        return "None (the refinement's attention branch runs without an attention op)."
    rows = {k: v for k, v in attention.items() if k not in ("_target_", "_partial_", "temperature")}
    temperature = attention.get("temperature") or {}
    rows.update({f"temperature {k}": v for k, v in temperature.items()})
    return f"`{attention.get('_target_')}`\n\n" + _table(rows)


def _evaluation_table(evaluation: dict[str, float]) -> str:
    """Metrics as rows, ``all`` and the hole-ratio buckets as columns."""
    cells: dict[str, dict[str, float]] = {}
    for key, value in evaluation.items():
        found = METRIC_NAME.fullmatch(key)
        if found and found.group(1) in CARD_METRICS:
            cells.setdefault(found.group(1), {})[found.group(2) or "all"] = value
    if not cells:
        return "No validation metrics were found beside the checkpoint."
    columns = ["all"] + sorted(
        {b for row in cells.values() for b in row} - {"all"}, key=lambda b: int(b.split("-")[0])
    )
    lines = ["| metric | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for metric in (m for m in CARD_METRICS if m in cells):
        values = (f"{cells[metric][c]:.4f}" if c in cells[metric] else "" for c in columns)
        lines.append(f"| {metric} | " + " | ".join(values) + " |")
    return (
        "The run's last validation (its fixed validation images and masks), per hole-ratio bucket:\n\n"
        + "\n".join(lines)
    )


def _table(rows: dict[str, Any]) -> str:
    lines = ["| | |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows.items()]
    return "\n".join(lines)
