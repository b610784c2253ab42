"""No run folder left behind by a run that never started.

Hydra makes the run folder, writes its record (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``)
and opens the log (``<task>.log``) before the task function starts. When the task then fails with a user
error (a data set folder without images, a checkpoint that does not fit the model) before it wrote anything
of its own, that folder holds nothing worth keeping, and :func:`removed_if_unused` removes it.

Only a folder this run created is ever removed: :class:`RunFolderRecord`, a Hydra callback
(conf/hydra/default.yaml), fixes ``hydra.run.dir`` before Hydra makes the folder and notes whether it
existed already; a folder that existed (``hydra.run.dir=<an old run>``, a folder of yours) is never
touched, and neither is one that holds any file beyond Hydra's record, the log and loggers' ``hparams.yaml``.
Jobs of a sweep keep their folders (the sweep's summary lists their errors and points at their logs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from mtmsa.utils.cli import USER_ERRORS

HYDRA_RECORD = {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}
"""What Hydra writes into a run folder before the task starts (besides the log)."""

_created: dict[Path, Path] = {}
"""Run folders this process's runs created (absolute paths), noted by :class:`RunFolderRecord`, each with
the outermost folder of its path that did not exist before it (``logs/`` on a first run)."""


class RunFolderRecord(Callback):
    """Hydra callback: before a single run starts, resolve ``hydra.run.dir`` once (so the folder Hydra makes
    is the one looked at) and note whether it already exists."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = str(config.hydra.run.dir)
        config.hydra.run.dir = folder
        path = Path(os.path.abspath(folder))
        if not path.exists():
            new = [parent for parent in (path, *path.parents) if not parent.exists()]
            _created[path] = new[-1]


def unused(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but Hydra's record, top-level logs and loggers' ``hparams.yaml``."""
    for path in folder.rglob("*"):
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            return False
        if path.is_dir():
            continue
        name = path.relative_to(folder).as_posix()
        if (
            name not in HYDRA_RECORD
            and not (name.endswith(".log") and "/" not in name)
            and path.name != "hparams.yaml"
        ):
            return False
    return True


def remove_if_unused() -> Path | None:
    """Remove the current single run's folder when this run created it and it is :func:`unused`; returns
    the folder removed, or None."""
    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return None
    folder = Path(os.path.abspath(hydra_cfg.runtime.output_dir))
    if folder not in _created or not folder.is_dir() or not unused(folder):
        return None
    for logger in [logging.getLogger(), *logging.getLogger().manager.loggerDict.values()]:
        for handler in list(getattr(logger, "handlers", [])):
            if isinstance(handler, logging.FileHandler) and folder in Path(handler.baseFilename).parents:
                logger.removeHandler(handler)
                handler.close()
    shutil.rmtree(folder, ignore_errors=True)
    outermost = _created.pop(folder)
    for parent in folder.parents:  # the folders made for it, now empty (rmdir refuses any other)
        if outermost not in (parent, *parent.parents):
            break
        with contextlib.suppress(OSError):
            parent.rmdir()
    return folder


@contextlib.contextmanager
def removed_if_unused() -> Iterator[None]:
    """Run a task body; when it fails with a user error, :func:`remove_if_unused` its run folder."""
    try:
        yield
    except USER_ERRORS:
        remove_if_unused()
        raise
