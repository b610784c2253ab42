"""Portable weights: a folder with ``model.safetensors`` (the generator's weights, its run configuration and
training record as JSON metadata) and a model card, ``README.md``; and :func:`load_pretrained`, which reads
such a folder or a training checkpoint.

Nothing runs on load: safetensors holds raw tensors and string metadata (no pickle), the configuration is
JSON, and the generator is built only from ``_target_`` values inside ``mtmsa.models.`` (as for checkpoints,
:func:`mtmsa.inference.checkpoints.build_generator`).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import torch

from mtmsa.conf.schema.rules import EXPORTED_WEIGHTS
from mtmsa.inference.checkpoints import (
    CONFIG_KEY,
    CheckpointError,
    TrainedGenerator,
    load_checkpoint,
    load_generator,
    trained_generator,
)
from mtmsa.inference.model_card import model_card
from mtmsa.utils.files import replaced_atomically

WEIGHTS_FILE = EXPORTED_WEIGHTS
CARD_FILE = "README.md"
TRAINING_KEY = "mtmsa_training"
"""Metadata key of the training record: ``{"source", "global_step", "evaluation": {metric: value}}``."""


def load_pretrained(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedGenerator:
    """The generator (eval mode, on ``device``) and run configuration of a folder written by
    ``mtmsa-export --format safetensors`` or of a .ckpt written by mtmsa.train.

    ``generator, config = load_pretrained(path)``; ``generator(images, masks, sketches).refined`` is the fill
    (see :class:`mtmsa.models.generator.InpaintGenerator`). Raises FileNotFoundError or CheckpointError with
    one message naming the path and what is wrong.
    """
    path = Path(path)
    if not path.is_dir():
        return load_generator(path, device)
    from safetensors.torch import load_file

    metadata = read_metadata(path)
    config = json.loads(metadata.get(CONFIG_KEY, "null"))
    return trained_generator(config, load_file(path / WEIGHTS_FILE), path, device)


def read_metadata(folder: Path) -> dict[str, str]:
    """The string metadata of ``folder/model.safetensors`` (FileNotFoundError or CheckpointError if unusable)."""
    from safetensors import SafetensorError, safe_open

    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(
            f"{folder} holds no {WEIGHTS_FILE}; pass a folder written by mtmsa-export --format safetensors, "
            "or a .ckpt written by mtmsa.train"
        )
    try:
        with safe_open(weights, framework="pt") as file:
            return file.metadata() or {}
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(weights, f"not a safetensors file ({error})") from error


def save_pretrained(trained: TrainedGenerator, folder: Path, training: dict[str, Any] | None = None) -> Path:
    """Write ``folder/model.safetensors`` (weights, configuration and ``training`` record as metadata) and
    ``folder/README.md`` (the model card); each file is written whole or not at all. Returns ``folder``."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    training = training or {}
    weights = {
        name: value.detach().cpu().contiguous() for name, value in trained.generator.state_dict().items()
    }
    metadata = {CONFIG_KEY: json.dumps(trained.config), TRAINING_KEY: json.dumps(training)}
    with replaced_atomically(folder / WEIGHTS_FILE) as partial:
        save_file(weights, partial, metadata=metadata)
    with replaced_atomically(folder / CARD_FILE) as partial:
        partial.write_text(model_card(trained, training))
    return folder


def training_record(path: Path) -> dict[str, Any]:
    """How the model of ``path`` was trained: the source name, Lightning's ``global_step`` and the last
    validation metrics logged by its run (``<run>/csv/version_*/metrics.csv`` beside ``<run>/checkpoints``).
    A safetensors folder carries the record it was written with."""
    if path.is_dir():
        return json.loads(read_metadata(path).get(TRAINING_KEY, "{}"))
    checkpoint = load_checkpoint(path)
    return {
        "source": path.name,
        "global_step": int(checkpoint.get("global_step", 0)),
        "evaluation": last_validation(path.resolve().parent.parent),
    }


def last_validation(run: Path) -> dict[str, float]:
    """The last logged value of every ``val/*`` metric in a run folder's newest CSV log ({} without one)."""
    logs = sorted(run.glob("csv/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return {}
    values: dict[str, float] = {}
    with open(logs[-1], newline="") as file:
        for row in csv.DictReader(file):
            values.update({k: float(v) for k, v in row.items() if k and k.startswith("val/") and v})
    return values
