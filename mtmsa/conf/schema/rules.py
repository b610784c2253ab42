"""Checks across options and against the file system, run on the composed config once every option has
passed its own check: the image size the generator needs, the attention's heads, the trainer's stopping
rule, the monitored metric's direction, folders and checkpoints that exist and are what they claim to be.

Each rule is ``rule(cfg, tool) -> messages`` (``tool``: train, evaluate or preview); add one to RULES.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from mtmsa.conf.schema.model import FEATURE_STRIDE, LOWER_IS_BETTER

CHECKPOINT_HINT = "pass a .ckpt written by mtmsa.train (<run>/checkpoints/last.ckpt)"
EXPORTED_WEIGHTS = "model.safetensors"
"""The weights file of a folder written by ``mtmsa-export --format safetensors`` (mtmsa.inference.pretrained)."""
CONTEXTUAL = "mtmsa.models.attention.ContextualAttention"
MTMSA = "mtmsa.models.attention.build_mtmsa"


def checkpoint_problem(path: str, spelled: str, exported: bool = False) -> str | None:
    """Why the file ``path`` (given as ``spelled``: ``ckpt_path=...`` or ``--checkpoint ...``) is not a
    checkpoint, or None. Cheap and without torch: it must be a regular file holding the zip archive that
    ``torch.save`` writes (its ``data.pkl``); loading it later checks the rest. ``exported``: a folder written
    by ``mtmsa-export --format safetensors`` (holding ``model.safetensors``) is one too."""
    file = Path(path).expanduser()
    if not file.exists():
        return f"{spelled} does not exist; {CHECKPOINT_HINT}"
    if file.is_dir() and exported:
        if (file / EXPORTED_WEIGHTS).is_file():
            return None
        return (
            f"{spelled} is a folder that holds no {EXPORTED_WEIGHTS}; {CHECKPOINT_HINT}, or a folder written by "
            "mtmsa-export --format safetensors"
        )
    if file.is_dir():
        return f"{spelled} is a folder, not a checkpoint file; {CHECKPOINT_HINT}"
    if not file.is_file():
        return f"{spelled} is not a regular file; {CHECKPOINT_HINT}"
    try:
        if file.stat().st_size == 0:
            return f"{spelled} is not a torch checkpoint: the file is empty"
        with zipfile.ZipFile(file) as archive:
            pickled = any(name == "data.pkl" or name.endswith("/data.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        pickled = None
    except OSError as error:
        return f"{spelled} cannot be read: {error.strerror or error}"
    if not pickled:
        return (
            f"{spelled} is not a torch checkpoint: it is not the zip archive torch.save writes "
            f"({'no data.pkl inside' if pickled is False else 'truncated, or another kind of file'})"
        )
    return None


def folder_problem(option: str, path: str, what: str = "a folder") -> str | None:
    """Why ``path`` cannot be used as an existing folder, or None."""
    folder = Path(path).expanduser()
    if not folder.exists():
        return f"{option}={path} does not exist; give {what}"
    if not folder.is_dir():
        return f"{option}={path} is a file, not {what}"
    return None


def creatable_problem(option: str, path: str) -> str | None:
    """Why the folder ``path`` can neither be used nor made (a file in its place or above it), or None."""
    folder = Path(path).expanduser().absolute()
    for existing in (folder, *folder.parents):
        if existing.is_dir():
            return None
        if existing.exists():
            if existing == folder:
                return f"{option}={path} is a file, not a folder"
            return f"{option}={path} cannot be made: {existing} is a file"
    return None


def selected(cfg: DictConfig, path: str):
    """The value at ``path`` or None where it is absent (or cannot be resolved before the run starts)."""
    try:
        return OmegaConf.select(cfg, path, default=None, throw_on_missing=False)
    except Exception:  # an interpolation resolved only when the run starts (${hydra:runtime.output_dir})
        return None


def image_size_fits_the_attention(cfg: DictConfig, tool: str) -> Iterator[str]:
    attention = selected(cfg, "model.attention")
    if tool != "train" or attention is None or attention.get("_target_") != CONTEXTUAL:
        return
    multiple = FEATURE_STRIDE * int(attention.get("rate", 2))
    size = cfg.dataset.image_size
    if size % multiple:
        yield (
            f"dataset.image_size={size} is not a multiple of {multiple}: the contextual attention matches at "
            f"1/{multiple} of the image size (model.attention.rate={attention.get('rate', 2)}); use e.g. "
            f"{size // multiple * multiple or multiple}"
        )


def resize_covers_the_crop(cfg: DictConfig, tool: str) -> Iterator[str]:
    resize, size = selected(cfg, "dataset.resize"), cfg.dataset.image_size
    if resize is not None and resize < size:
        yield (
            f"dataset.resize={resize} is smaller than dataset.image_size={size}: images are resized to a short "
            f"side of dataset.resize and then cropped to dataset.image_size; give resize >= {size} or null"
        )


def heads_divide_the_channels(cfg: DictConfig, tool: str) -> Iterator[str]:
    attention, width = selected(cfg, "model.attention"), selected(cfg, "model.generator.width")
    if tool != "train" or attention is None or attention.get("_target_") != MTMSA or width is None:
        return
    channels, heads = 4 * width, attention.heads
    if channels % heads:
        divisors = [h for h in (1, 2, 3, 4, 6, 8, 12, 16) if channels % h == 0]
        yield (
            f"model.attention.heads={heads} does not divide the attention's {channels} channels "
            f"(4 x model.generator.width={width}); use one of {', '.join(map(str, divisors))}"
        )


def training_ends(cfg: DictConfig, tool: str) -> Iterator[str]:
    trainer = selected(cfg, "trainer")
    if tool != "train" or trainer is None:
        return
    if trainer.get("max_steps", -1) == -1 and trainer.get("max_epochs") in (None, -1):
        yield "trainer.max_steps=-1 with trainer.max_epochs=-1 never ends; give max_steps >= 1 or max_epochs >= 1"
    interval = trainer.get("val_check_interval")
    if isinstance(interval, float) and trainer.get("check_val_every_n_epoch", 1) is None:
        yield (
            f"trainer.val_check_interval={interval} is a fraction of an epoch, but validation runs across epochs "
            "(trainer.check_val_every_n_epoch=null): give a number of training batches, e.g. 150"
        )
    if trainer.get("accelerator") == "cpu" and str(trainer.get("precision")) in ("16-mixed", "16"):
        yield "trainer.precision=16-mixed is not supported on the CPU (trainer.accelerator=cpu); use bf16-mixed or 32-true"


def best_checkpoint_keeps_the_best(cfg: DictConfig, tool: str) -> Iterator[str]:
    checkpoint = selected(cfg, "callbacks.model_checkpoint")
    if tool != "train" or checkpoint is None or checkpoint.get("monitor") is None:
        return
    metric = checkpoint.monitor
    better = "min" if metric.split("/")[-1] in LOWER_IS_BETTER else "max"
    if checkpoint.get("mode", "min") != better:
        yield (
            f"callbacks.model_checkpoint.mode={checkpoint.mode} would keep the worst {metric} "
            f"({'lower' if better == 'min' else 'higher'} is better); use callbacks.model_checkpoint.mode={better}"
        )


def dataset_folders(cfg: DictConfig, tool: str) -> Iterator[str]:
    dataset = cfg.dataset
    root = Path(str(dataset.root)).expanduser()
    if root.exists() and not root.is_dir():
        yield f"dataset.root={dataset.root} is a file, not a folder of images"
        return
    if not root.exists():
        if dataset.get("prepare") is not None:  # made on first use (the sample data set)
            yield from filter(None, [creatable_problem("dataset.root", str(dataset.root))])
            return
        yield (
            f"dataset.root={dataset.root} does not exist; put the images there ({dataset.expected_layout}), "
            "or give dataset.root=/path/to/images or MTMSA_DATA=/path/to/data"
        )
        return
    if dataset.get("prepare") is not None:
        return
    splits = {"train": ["train"], "preview": ["train"], "evaluate": [selected(cfg, "split") or "val"]}[tool]
    splits += ["val"] if tool == "train" else []
    for split in splits:
        folder, listing = dataset.get(f"{split}_dir"), dataset.get(f"{split}_list")
        problem = folder_problem(
            f"dataset.{split}_dir", str(root / folder), f"the {split} images below {root}"
        )
        if problem:
            yield f"{problem} ({dataset.expected_layout})"
        elif listing is not None and not (root / listing).is_file():
            yield f"dataset.{split}_list={listing}: {root / listing} is not a file listing images"


def paths_can_be_made(cfg: DictConfig, tool: str) -> Iterator[str]:
    for key in ("root_dir", "data_dir", "log_dir", "output_dir"):
        path = selected(cfg, f"paths.{key}")
        if path is not None:
            yield from filter(None, [creatable_problem(f"paths.{key}", str(path))])


def checkpoints_exist(cfg: DictConfig, tool: str) -> Iterator[str]:
    path = selected(cfg, "ckpt_path")
    if tool == "train" and path not in (None, "last"):
        yield from filter(None, [checkpoint_problem(str(path), f"ckpt_path={path}")])
    if tool == "evaluate":
        if path is not None:
            yield from filter(None, [checkpoint_problem(str(path), f"ckpt_path={path}", exported=True)])
        elif all(selected(cfg, key) is None for key in ("baseline", "predictions", "export_masks")):
            yield (
                "ckpt_path is not set: give ckpt_path=<run>/checkpoints/last.ckpt to evaluate a checkpoint, "
                "or baseline=telea (ns, mean, harmonic, biharmonic, pull_push) for a classical fill"
            )
        mask_dir = selected(cfg, "mask_dir")
        if mask_dir is not None:
            yield from filter(None, [folder_problem("mask_dir", str(mask_dir), "a folder of mask images")])
        predictions = selected(cfg, "predictions")
        if predictions is not None:
            yield from filter(
                None, [folder_problem("predictions", str(predictions), "a folder of filled images")]
            )
        export = selected(cfg, "export_masks")
        if export is not None and Path(export).expanduser().is_file():
            yield f"export_masks={export} is a file; give a new or empty folder"


Rule = Callable[[DictConfig, str], Iterable[str]]

RULES: tuple[Rule, ...] = (
    image_size_fits_the_attention,
    resize_covers_the_crop,
    heads_divide_the_channels,
    training_ends,
    best_checkpoint_keeps_the_best,
)
"""Rules across options."""

FILE_RULES: tuple[Rule, ...] = (paths_can_be_made, dataset_folders, checkpoints_exist)
"""Rules that look at the file system (skipped where the jobs run elsewhere: a SLURM sweep)."""
