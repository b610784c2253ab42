"""OmegaConf resolvers used by the configs (registered on import of :mod:`mtmsa`)."""

from __future__ import annotations

from collections.abc import Sequence

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


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("mtmsa.strategy"):
        OmegaConf.register_new_resolver("mtmsa.strategy", strategy_for)
