"""Shared fixtures: the real configs composed with Hydra's compose API, with run folders under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.conf import CONFIG_DIR

torch.set_num_threads(2)


def compose_config(overrides: list[str], output_dir: Path, data_dir: Path | None = None) -> DictConfig:
    """Compose conf/train.yaml as `python -m mtmsa.train <overrides>` would, writing under output_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra  # as in a real run, where the job's config holds no hydra node
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        if data_dir is not None:
            cfg.paths.data_dir = str(data_dir)
    return cfg


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory) -> Path:
    """A data folder holding the bundled sample data set, made once per test session."""
    from mtmsa.data.datasets import ensure_sample_dataset

    data_dir = tmp_path_factory.mktemp("data")
    ensure_sample_dataset(data_dir / "sample")
    return data_dir
