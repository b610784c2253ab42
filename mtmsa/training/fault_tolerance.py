"""Surviving kills and preemption: atomic checkpoint files, a checkpoint on SIGTERM, resuming a run folder.

* :class:`AtomicCheckpointIO` writes every checkpoint next to its destination and renames it into place
  (``os.replace``, atomic on POSIX), after flushing it to disk. A process killed while saving leaves the
  previous ``last.ckpt`` intact and at most a ``.last.partial-<pid>.ckpt`` file, which the next save of that
  name in that folder removes. (Lightning's own writer stages the file in the system temp folder and moves
  it across file systems when the checkpoints live elsewhere, e.g. on a cluster's shared disk: a copy,
  which a kill can leave truncated.)
* :class:`LastCheckpoint` keeps ``last.ckpt`` current: after every validation, optionally every N steps,
  at the end of training, and when Lightning stops training on SIGTERM (a scheduler's preemption or
  ``scancel``, handled between two batches), so a restart loses no work. (Lightning's
  ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only when a best checkpoint is written.)
* :func:`resume_checkpoint` decides what ``mtmsa.train`` resumes from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from mtmsa.utils.files import partial_path, replaced_atomically

LAST_CHECKPOINT = "last.ckpt"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` through :func:`mtmsa.utils.files.replaced_atomically`; first removes the partial files an
    earlier, killed save of the same checkpoint left (only the global-zero process writes checkpoints)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options=None
    ) -> None:
        path = Path(path)
        for stale in path.parent.glob(partial_path(path, "*").name):
            stale.unlink(missing_ok=True)
        with replaced_atomically(path) as partial, open(partial, "wb") as file:
            torch.save(checkpoint, file)


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` after each validation during fit, every ``every_n_train_steps``
    optimizer steps when set, at the end of fit, and on SIGTERM; never twice for the same step."""

    def __init__(self, dirpath: str | os.PathLike, every_n_train_steps: int | None = None) -> None:
        self.path = Path(dirpath) / LAST_CHECKPOINT
        self.every_n_train_steps = every_n_train_steps
        self.saved_step = -1

    def save(self, trainer: pl.Trainer) -> None:
        if trainer.global_step != self.saved_step and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.path, weights_only=False)  # optimizers and loops too: resumable
            self.saved_step = trainer.global_step

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.saved_step = trainer.global_step  # a resumed run's state is on disk already

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        every = self.every_n_train_steps
        if every and trainer.global_step - self.saved_step >= every:
            self.save(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.save(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            self.save(trainer)
            if trainer.is_global_zero:
                print(
                    f"SIGTERM: saved {self.path} at step {trainer.global_step}; run the same command with "
                    "ckpt_path=last and the same hydra.run.dir to continue"
                )


def resume_checkpoint(requested: str | None, run_dir: str | os.PathLike) -> str | None:
    """What ``mtmsa.train`` resumes from: ``requested`` when it is a path. With ``last``, or with nothing
    requested in a run folder that already holds checkpoints (a restarted job: starting afresh there would
    overwrite them), the newest of ``<run_dir>/checkpoints/last.ckpt`` and the ``<run_dir>/hpc_ckpt_<n>.ckpt``
    that Lightning writes on SLURM's requeue signal. None (a fresh start) when there is none, so that a job
    script can always say ``ckpt_path=last``."""
    if requested not in (None, "last"):
        return str(requested)
    run_dir = Path(run_dir)
    candidates = [run_dir / "checkpoints" / LAST_CHECKPOINT, *run_dir.glob("hpc_ckpt_*.ckpt")]
    existing = [path for path in candidates if path.is_file()]
    return str(max(existing, key=lambda path: path.stat().st_mtime)) if existing else None


def check_training_checkpoint(path: str | os.PathLike) -> None:
    """Raise a CheckpointError unless ``path`` is a checkpoint ``mtmsa.train`` can resume from: read
    weights-only (a file whose pickle would run code is refused before Lightning unpickles it in full),
    holding the weights and the optimizers' state."""
    from mtmsa.inference.checkpoints import CheckpointError, load_checkpoint

    missing = [key for key in ("state_dict", "optimizer_states") if key not in load_checkpoint(path)]
    if missing:
        raise CheckpointError(
            path,
            f"it holds no {' or '.join(missing)}, so training cannot resume from it; pass a .ckpt written "
            "by mtmsa.train (<run>/checkpoints/last.ckpt)",
        )
