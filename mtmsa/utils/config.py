"""OmegaConf resolvers used by the configs (registered on import of :mod:`mtmsa`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import OmegaConf


def device_count(devices: int | str | Sequence[int]) -> int:
    """How many devices a Lightning `devices` value asks for ("auto" and -1: all visible GPUs, or 1)."""
    if isinstance(devices, str):
        if "," in devices:
            return len([d for d in devices.split(",") if d.strip()])
        devices = -1 if devices.strip() == "auto" else int(devices)
    if isinstance(devices, int):
        return max(torch.cuda.device_count(), 1) if devices == -1 else devices
    return len(devices)


def strategy_for(devices: int | str | Sequence[int], num_nodes: int) -> str:
    """Lightning strategy for the GAN step: "auto" on one device; on several, DDP that finds the
    parameters a backward pass did not reach (the discriminator step never reaches the generator)."""
    return "ddp_find_unused_parameters_true" if device_count(devices) * int(num_nodes) > 1 else "auto"


def run_group(mode: object, sweep_dir: str, single_run_group: str) -> str:
    """Dashboard group of a run: every job of one multirun sweep shares "sweep-<its folder name>";
    a single run is grouped by ``single_run_group`` (data set and attention)."""
    return f"sweep-{Path(sweep_dir).name}" if str(mode).endswith("MULTIRUN") else single_run_group


RESOLVERS = {"mtmsa.strategy": strategy_for, "mtmsa.run_group": run_group}


def register_resolvers() -> None:
    for name, resolver in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, resolver)
