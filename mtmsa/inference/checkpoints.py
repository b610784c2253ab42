"""Loading trained generators from checkpoints without executing code stored in them.

A Lightning checkpoint is a pickle, and unpickling can call any importable function. Checkpoints are
therefore read with ``torch.load(weights_only=True)``, whose unpickler only rebuilds tensors and plain
containers (dict, list, tuple, str, numbers, None); anything else is refused with
:class:`CheckpointError`. The checkpoints ``mtmsa.train`` writes need nothing more.

The generator is rebuilt from the run configuration stored in the checkpoint (under :data:`CONFIG_KEY`, by
:class:`mtmsa.training.callbacks.RunConfigInCheckpoints`). Building it calls the ``_target_`` functions named
there, so only targets inside :data:`ALLOWED_TARGET_PREFIX` are accepted: a crafted config cannot call, say,
``os.system`` either. Configs written before a class moved name it by its old path; :data:`RENAMED_TARGETS`
maps those to today's, so old checkpoints load.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch
from hydra.utils import instantiate
from torch import nn

from mtmsa.utils.errors import UserInputError

CONFIG_KEY = "mtmsa_config"
"""Where a checkpoint written by ``mtmsa.train`` keeps its run configuration (the composed config, resolved)."""

ALLOWED_TARGET_PREFIX = "mtmsa.models."
"""Config ``_target_`` values that loading a checkpoint may call must start with this."""

WEIGHT_PREFIXES = ("generator_ema.", "generator.")
"""State-dict prefixes of the generator weights, in order of preference (EMA first)."""


RENAMED_TARGETS = {
    "mtmsa.module.InpaintingModule": "mtmsa.training.module.InpaintingModule",
    "mtmsa.callbacks.PreviewLogger": "mtmsa.training.callbacks.PreviewLogger",
    "mtmsa.fault_tolerance.LastCheckpoint": "mtmsa.training.fault_tolerance.LastCheckpoint",
    "mtmsa.fault_tolerance.AtomicCheckpointIO": "mtmsa.training.fault_tolerance.AtomicCheckpointIO",
    "mtmsa.loggers.wandb_logger": "mtmsa.training.loggers.wandb_logger",
    "mtmsa.sweeps.SweepSummary": "mtmsa.training.sweeps.SweepSummary",
    "mtmsa.data.datasets.ensure_sample_dataset": "mtmsa.data.sample.ensure_sample_dataset",
}
"""``_target_`` values of configs written by mtmsa 0.1.0 (before the package was grouped into folders) and
where those objects live now. Targets not listed here did not move."""

ADDED_OPTIONS = {"mtmsa.models.attention.build_mtmsa": {"matching": "projections"}}
"""Options added to a ``_target_`` after mtmsa 0.1.0, with the value that builds what 0.1.0 built: a config
node of that target without the option gets this value, so an old checkpoint's weights fit."""

RENAMED_OPTIONS = {"mtmsa.models.losses.InpaintingLoss": {"l1_hole": "hole_l1_weight", "l1_valid": None}}
"""Options of a ``_target_`` renamed after mtmsa 0.1.0 (None: removed; 0.1.0's L1 on known pixels is gone)."""


class CheckpointError(UserInputError):
    """A file that cannot be used as an mtmsa checkpoint; the message names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot use checkpoint {self.path}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict of ``path``, unpickled weights-only (tensors and plain containers only).

    Raises FileNotFoundError for a missing file and CheckpointError for a file that is not a torch
    checkpoint or whose pickle refers to anything beyond plain data (it would run code when loaded).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(path, "it is a folder, not a checkpoint file written by mtmsa.train")
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass the path of a .ckpt written by mtmsa.train "
            "(<run>/checkpoints/last.ckpt)"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported (?:global|class):? (?:GLOBAL )?(\S+)", str(error))
        if found is None:
            detail = str(error).split("WeightsUnpickler error:")[-1].split("Check the documentation")[0]
            raise CheckpointError(path, f"not a torch checkpoint ({' '.join(detail.split())})") from error
        raise CheckpointError(
            path,
            f"refused: its pickle refers to {found.group(1)}, which is neither a tensor nor plain data, so "
            "loading it would run code from the file. Load only checkpoints written by mtmsa.train",
        ) from error
    except Exception as error:  # torch raises RuntimeError, EOFError, ... for files that are no checkpoint
        raise CheckpointError(path, f"not a torch checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(path, f"it holds a {type(checkpoint).__name__}, not a checkpoint dict")
    return checkpoint


def _targets(node: Any) -> Iterator[str]:
    """Every ``_target_`` value in a nested config of dicts and lists."""
    if isinstance(node, dict):
        if "_target_" in node:
            yield str(node["_target_"])
        for value in node.values():
            yield from _targets(value)
    elif isinstance(node, list):
        for value in node:
            yield from _targets(value)


def upgraded_config(node: Any) -> Any:
    """A copy of a nested config of dicts and lists as today's code reads it: every ``_target_`` of
    :data:`RENAMED_TARGETS` replaced by its new name, its :data:`RENAMED_OPTIONS` renamed or dropped, and its
    :data:`ADDED_OPTIONS` filled in where missing."""
    if isinstance(node, dict):
        target = RENAMED_TARGETS.get(node.get("_target_"), node.get("_target_"))
        options = RENAMED_OPTIONS.get(target, {})
        upgraded = {
            options.get(key, key): target if key == "_target_" else upgraded_config(value)
            for key, value in node.items()
            if options.get(key, key) is not None
        }
        return {**ADDED_OPTIONS.get(target, {}), **upgraded}
    if isinstance(node, list):
        return [upgraded_config(value) for value in node]
    return node


def build_generator(model_config: dict[str, Any], path: str | os.PathLike = "<config>") -> nn.Module:
    """The untrained generator of a run's ``model`` config: ``generator(attention=attention)``.

    Every ``_target_`` in the ``generator`` and ``attention`` nodes must start with
    :data:`ALLOWED_TARGET_PREFIX`, else CheckpointError (naming ``path``) is raised before anything is called.
    """
    if not isinstance(model_config, dict) or "generator" not in model_config:
        raise CheckpointError(path, f"its {CONFIG_KEY} has no model.generator node")
    nodes = {"generator": model_config["generator"], "attention": model_config.get("attention")}
    for target in _targets(nodes):
        if not target.startswith(ALLOWED_TARGET_PREFIX):
            raise CheckpointError(
                path,
                f"its config names _target_ {target!r}, outside {ALLOWED_TARGET_PREFIX}*; refusing to call it",
            )
    attention = None if nodes["attention"] is None else instantiate(nodes["attention"])
    return instantiate(nodes["generator"])(attention=attention)


def generator_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The generator weights of a LightningModule state dict: ``generator_ema.*`` if any, else ``generator.*``."""
    for prefix in WEIGHT_PREFIXES:
        weights = {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
        if weights:
            return weights
    return {}


def state_dict_mismatch(error: RuntimeError) -> str:
    """torch's multi-line ``load_state_dict`` error as one line: the first problem and how many there are."""
    problems = [line.strip() for line in str(error).splitlines()[1:] if line.strip()]
    if not problems:
        return str(error)
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return f"{len(problems)} mismatch(es): {problems[0]}{more}"


class TrainedGenerator(NamedTuple):
    """A generator read from a training checkpoint, with the run configuration it was trained with.

    Unpacks as ``generator, config = load_generator(path)``; ``config`` is the stored run configuration with
    today's ``_target_`` names (:data:`RENAMED_TARGETS`).
    """

    generator: nn.Module
    config: dict[str, Any]

    @property
    def image_size(self) -> int:
        """The resolution it was trained at (``dataset.image_size``)."""
        return int(self.config["dataset"]["image_size"])

    @property
    def dataset_name(self) -> str:
        return str(self.config["dataset"].get("name"))

    @property
    def attention_config(self) -> dict[str, Any]:
        """The ``model.attention`` node (empty without attention)."""
        return self.config["model"].get("attention") or {}


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedGenerator:
    """The generator of an mtmsa training checkpoint, in eval mode on ``device``, and its run config.

    The EMA weights are loaded when the checkpoint has them, the trained generator's otherwise.
    Raises FileNotFoundError or CheckpointError with a message naming the file and what is wrong.
    """
    checkpoint = load_checkpoint(path, map_location="cpu")
    return trained_generator(
        checkpoint.get(CONFIG_KEY), generator_state_dict(checkpoint.get("state_dict") or {}), path, device
    )


def trained_generator(
    config: Any, weights: dict[str, torch.Tensor], path: str | os.PathLike, device: str | torch.device = "cpu"
) -> TrainedGenerator:
    """The generator of a run ``config`` with ``weights`` loaded, in eval mode on ``device``: what a checkpoint
    and a safetensors folder (:mod:`mtmsa.inference.pretrained`) both hold. CheckpointError names ``path``."""
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(
            path,
            f"it has no {CONFIG_KEY} (the run configuration mtmsa.train stores); it was not written by "
            "mtmsa.train, or by a version from before configurations were stored",
        )
    if not isinstance(config.get("dataset"), dict) or "image_size" not in config["dataset"]:
        raise CheckpointError(path, f"its {CONFIG_KEY} has no dataset.image_size")
    config = upgraded_config(config)
    if not weights:
        raise CheckpointError(path, "its state_dict holds no generator_ema.* or generator.* weights")
    generator = build_generator(config["model"], path)
    try:
        generator.load_state_dict(weights)
    except RuntimeError as error:
        raise CheckpointError(
            path, f"its weights do not fit the generator of its own config ({state_dict_mismatch(error)})"
        ) from error
    return TrainedGenerator(generator.to(device).eval().requires_grad_(False), config)
