"""Schemas of how a run is carried out: ``trainer``, ``callbacks``, ``logger``, ``paths``, and the top level
of each entry config (mtmsa/conf/train.yaml, evaluate.yaml, preview.yaml).

Declare a new top-level option of an entry config in its ROOTS schema, a new trainer, callback or logger
option in the schema of its ``_target_``: one line with its kind (type) and range.
"""

from __future__ import annotations

from mtmsa.conf.schema.base import Schema
from mtmsa.conf.schema.kinds import (
    AnyOf,
    Anything,
    Boolean,
    Choice,
    Integer,
    Items,
    Node,
    Nodes,
    Number,
    Text,
)
from mtmsa.conf.schema.model import BASELINES, MIN_IMAGE_SIZE, MONITORED

SEED = Integer(min=0, max=2**32 - 1)
SPLITS = ("val", "train")
MASK_CONVENTIONS = ("hole-white", "hole-black")
SKETCH_CONVENTIONS = ("auto", "black-on-white", "white-on-black")
LPIPS_NETS = ("alex", "vgg", "squeeze")
DEVICE = Text(
    pattern=r"auto|cpu|mps|cuda(:\d+)?",
    described="auto, cpu, cuda, cuda:N or mps",
    examples=("cpu", "cuda:1"),
)
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
PRECISIONS = (
    "32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true",
    "32", "16", "bf16", "64", 32, 16, 64,
)  # fmt: skip
"""Lightning's precision values."""
STRATEGIES = (
    "auto", "ddp", "ddp_find_unused_parameters_true", "ddp_spawn", "ddp_fork", "ddp_notebook",
    "fsdp", "deepspeed", "single_device", "dp",
)  # fmt: skip
"""Lightning's strategy names (the default, ``${mtmsa.strategy:...}``, picks auto or DDP)."""
BATCHES = AnyOf(
    kinds=(Integer(min=1), Number(min=0, max=1, min_open=True)),
    note="an integer counts batches, a fraction is of the epoch",
)

TRAINER = Schema(
    "trainer",
    {
        "default_root_dir": Text(),
        "accelerator": Text(choices=ACCELERATORS),
        "devices": AnyOf(
            kinds=(
                Integer(min=1, also=(-1,), also_means="all"),
                Text(
                    pattern=r"auto|-1|\d+(,\d+)*,?",
                    described="auto or device indices '0,1'",
                    examples=("auto", "'0,1'"),
                ),
                Items(of=Integer(min=0), nonempty=True),
            ),
        ),
        "num_nodes": Integer(min=1),
        "strategy": Text(choices=STRATEGIES),
        "precision": Choice(values=PRECISIONS),
        "plugins": Anything(),
        "max_steps": Integer(min=1, also=(-1,), also_means="no limit: give max_epochs"),
        "max_epochs": Integer(min=1, also=(-1,), also_means="no limit", nullable=True),
        "val_check_interval": BATCHES,
        "check_val_every_n_epoch": Integer(min=1, nullable=True, null_means="across epochs"),
        "num_sanity_val_steps": Integer(min=0, also=(-1,), also_means="all"),
        "log_every_n_steps": Integer(min=1),
        "deterministic": AnyOf(kinds=(Boolean(), Choice(values=("warn",)))),
        "limit_train_batches": BATCHES,
        "limit_val_batches": BATCHES,
        "fast_dev_run": AnyOf(kinds=(Boolean(), Integer(min=1))),
        "overfit_batches": AnyOf(kinds=(Integer(min=0), Number(min=0, max=1))),
        "detect_anomaly": Boolean(),
        "profiler": Choice(values=("simple", "advanced", "pytorch"), nullable=True),
        "sync_batchnorm": Boolean(),
        "use_distributed_sampler": Boolean(),
        "benchmark": Boolean(nullable=True),
        "enable_checkpointing": Boolean(),
        "enable_progress_bar": Boolean(),
        "enable_model_summary": Boolean(),
        "accumulate_grad_batches": Choice(values=(1,), note="the GAN step optimizes by hand, batch by batch"),
        "gradient_clip_val": Choice(
            values=(), nullable=True, note="the GAN step clips by hand: set model.gradient_clip_norm"
        ),
    },
    closed=False,
)

PATHS = Schema(
    "paths",
    {"root_dir": Text(), "data_dir": Text(), "log_dir": Text(), "output_dir": Text()},
    closed=False,
)

LOG_FOLDER = {
    "save_dir": Text(),
    "name": Text(),
    "version": AnyOf(kinds=(Integer(min=0), Text()), nullable=True),
}

TARGETS = {
    "pytorch_lightning.Trainer": TRAINER,
    "lightning.pytorch.Trainer": TRAINER,
    "pytorch_lightning.callbacks.ModelCheckpoint": Schema(
        "callbacks.model_checkpoint (ModelCheckpoint)",
        {
            "dirpath": Text(),
            "filename": Text(),
            "monitor": Text(choices=MONITORED, nullable=True),
            "mode": Text(choices=("max", "min")),
            "save_top_k": Integer(min=0, also=(-1,), also_means="all"),
            "save_last": Boolean(nullable=True),
            "auto_insert_metric_name": Boolean(),
            "every_n_train_steps": Integer(min=1, nullable=True),
        },
        closed=False,
    ),
    "mtmsa.training.fault_tolerance.LastCheckpoint": Schema(
        "callbacks.last_checkpoint (LastCheckpoint)",
        {
            "dirpath": Text(),
            "every_n_train_steps": Integer(min=1, nullable=True, null_means="at validations"),
        },
    ),
    "mtmsa.training.callbacks.PreviewLogger": Schema(
        "callbacks.previews (PreviewLogger)",
        {"dirpath": Text(), "every_n_steps": Integer(min=1), "num_samples": Integer(min=1)},
    ),
    "pytorch_lightning.callbacks.RichProgressBar": Schema(
        "callbacks.progress_bar (RichProgressBar)",
        {"refresh_rate": Integer(min=0), "leave": Boolean()},
        closed=False,
    ),
    "pytorch_lightning.callbacks.RichModelSummary": Schema(
        "callbacks.model_summary (RichModelSummary)",
        {"max_depth": Integer(min=0, also=(-1,), also_means="all")},
        closed=False,
    ),
    "pytorch_lightning.loggers.CSVLogger": Schema(
        "logger.csv (CSVLogger)", {**LOG_FOLDER, "flush_logs_every_n_steps": Integer(min=1)}, closed=False
    ),
    "pytorch_lightning.loggers.TensorBoardLogger": Schema(
        "logger.tensorboard (TensorBoardLogger)",
        {**LOG_FOLDER, "default_hp_metric": Boolean(), "log_graph": Boolean()},
        closed=False,
    ),
    "mtmsa.training.loggers.wandb_logger": Schema(
        "logger.wandb",
        {
            "save_dir": Text(),
            "project": Text(),
            "entity": Text(nullable=True, null_means="your default entity"),
            "name": Text(),
            "group": Text(nullable=True),
            "tags": Items(nullable=True),
            "offline": Boolean(nullable=True, null_means="offline without credentials"),
            "log_model": AnyOf(kinds=(Boolean(), Choice(values=("all",)))),
        },
        closed=False,
    ),
}

COMMON = {
    # Checked first: other options interpolate them (dataset.root is ${paths.data_dir}/<name>).
    "paths": Node(schema=PATHS),
    "model": Node(),
    "dataset": Node(),
    "mask": Node(),
    "sketch": Node(),
    "dry_run": Boolean(),
}
NAMES = {"task_name": Text(), "run_name": Text()}
"""Checked last: they interpolate other options (the run name holds dataset.name)."""

ROOTS = {
    "train": Schema(
        "the training config",
        {
            **COMMON,
            "tags": Items(),
            "seed": SEED,
            "ckpt_path": Text(nullable=True, null_means="a fresh start", described="last or a .ckpt file"),
            "optimized_metric": Text(choices=MONITORED),
            "trainer": Node(),
            "logger": Nodes(nullable=True),
            "callbacks": Nodes(nullable=True),
            **NAMES,
            "run_group": Text(),
        },
        closed=False,
        required=("model", "dataset", "mask", "sketch", "trainer", "paths"),
    ),
    "evaluate": Schema(
        "the evaluation config",
        {
            **COMMON,
            "model": Node(nullable=True),
            "ckpt_path": Text(
                nullable=True, null_means="with a baseline", described="a .ckpt file or an exported folder"
            ),
            "predictions": Text(nullable=True, null_means="a checkpoint or baseline", described="a folder"),
            "export_masks": Text(nullable=True, null_means="score a method", described="a new folder"),
            "baseline": Text(choices=BASELINES, nullable=True, null_means="the checkpoint"),
            "split": Text(choices=SPLITS),
            "mask_dir": Text(nullable=True, null_means="the evaluation masks", described="a folder"),
            "mask_convention": Text(choices=MASK_CONVENTIONS),
            "samples": Integer(min=0),
            "batch_size": Integer(min=1),
            "limit": Integer(min=1, nullable=True, null_means="every image"),
            "device": DEVICE,
            "fid": Boolean(),
            "fid_min_images": Integer(min=2),
            "lpips": Text(choices=LPIPS_NETS, nullable=True, null_means="skip"),
            **NAMES,
        },
        closed=False,
        required=("dataset", "mask", "sketch", "paths"),
    ),
    "preview": Schema(
        "the preview config",
        {
            **COMMON,
            "seed": SEED,
            "num_samples": Integer(min=1),
            "sketch_step_samples": Integer(min=1),
            "histogram_samples": Integer(min=1),
            "histogram_size": Integer(min=MIN_IMAGE_SIZE),
            "histogram_batch_size": Integer(min=1),
            "all_masks": Boolean(),
            "out_dir": Text(),
            **NAMES,
        },
        closed=False,
        required=("dataset", "mask", "sketch", "paths"),
    ),
}

INPAINT_FLAGS = {
    "--mask-convention": Text(choices=MASK_CONVENTIONS),
    "--sketch-convention": Text(choices=SKETCH_CONVENTIONS),
    "--threshold": Number(min=0, max=1, min_open=True, max_open=True),
    "--device": DEVICE,
    "--max-pixels": Integer(min=1),
}
"""The value flags of ``python -m mtmsa.inpaint`` (mtmsa/inpaint.py); its paths are checked when read."""
