"""The configs from Python: OmegaConf resolvers they use (registered on import of :mod:`mtmsa`), and composing
one as a command line would (for scripts, notebooks and tests)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict


def device_count(devices: int | str | Sequence[int]) -> int:
    """How many devices a Lightning `devices` value asks for ("auto" and -1: all visible GPUs, or 1)."""
    if isinstance(devices, str):
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        devices = -1 if devices.strip() == "auto" else int(devices)
    if isinstance(devices, int):
        if devices != -1:
            return devices
        import torch  # only here: a command checks its configuration before torch loads

        return max(torch.cuda.device_count(), 1)
    return len(devices)


def strategy_for(devices: int | str | Sequence[int], num_nodes: int) -> str:
    """Lightning strategy for the GAN step: "auto" on one device; on several, DDP that finds the
    parameters a backward pass did not reach (the discriminator step never reaches the generator)."""
    return "ddp_find_unused_parameters_true" if device_count(devices) * int(num_nodes) > 1 else "auto"


def run_group(mode: object, sweep_dir: str, single_run_group: str) -> str:
    """Dashboard group of a run: every job of one multirun sweep shares "sweep-<its folder name>";
    a single run is grouped by ``single_run_group`` (data set and attention)."""
    return f"sweep-{Path(sweep_dir).name}" if str(mode).endswith("MULTIRUN") else single_run_group


def metric_mode(metric: str) -> str:
    """``min`` for a metric where lower is better (``val/l1_hole``), else ``max``: the best checkpoint's mode."""
    from mtmsa.conf.schema.model import LOWER_IS_BETTER

    return "min" if str(metric).rpartition("/")[2] in LOWER_IS_BETTER else "max"


RESOLVERS = {"mtmsa.strategy": strategy_for, "mtmsa.run_group": run_group, "mtmsa.metric_mode": metric_mode}


def register_resolvers() -> None:
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)


def compose_config(
    config_name: str,
    overrides: Sequence[str] = (),
    output_dir: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
) -> DictConfig:
    """The config ``python -m mtmsa.<tool> <overrides>`` runs with (``config_name``: ``train``, ``evaluate``
    or ``preview``), without starting the tool: the run folder is ``output_dir`` (logs below it) and the data
    folder ``data_dir`` when given. Like a real run, the result holds no ``hydra`` node, and Hydra's run
    information (``${hydra:...}`` values) is set for it."""
    from mtmsa.conf import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose(config_name, overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
        if output_dir is not None:
            cfg.paths.output_dir = str(output_dir)
            cfg.paths.log_dir = str(Path(output_dir) / "logs")
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    return cfg
