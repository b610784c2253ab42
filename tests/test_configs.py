"""Every option of every config group composes, resolves and builds its objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mtmsa.conf import CONFIG_DIR
from tests.helpers.runs import train_config

OBJECT_GROUPS = ("dataset", "model", "model/attention", "mask", "sketch", "trainer", "logger", "callbacks")
GLOBAL_GROUPS = ("experiment", "debug", "hparams_search")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def test_every_group_of_the_design_has_options():
    for group in OBJECT_GROUPS + GLOBAL_GROUPS + ("paths",):
        assert options(group), f"conf/{group} has no options"


@pytest.mark.parametrize(
    "group,option", [(group, option) for group in OBJECT_GROUPS + GLOBAL_GROUPS for option in options(group)]
)
def test_option_composes_and_resolves(group, option, tmp_path):
    cfg = train_config([f"{group}={option}"], tmp_path)
    OmegaConf.resolve(cfg)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    assert cfg.run_name and "${" not in cfg.run_name


@pytest.mark.parametrize("option", options("model/attention"))
def test_model_builds_with_each_attention(option, tmp_path):
    cfg = train_config([f"model/attention={option}"], tmp_path)
    model = instantiate(cfg.model)
    assert isinstance(model, pl.LightningModule)
    assert sum(p.numel() for p in model.generator.parameters()) > 0


@pytest.mark.parametrize("option", options("mask"))
def test_mask_option_builds_a_generator(option, tmp_path):
    import torch

    masks = instantiate(train_config([f"mask={option}"], tmp_path).mask)
    out = masks(2, 32, 32, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 1, 32, 32)


@pytest.mark.parametrize("option", ["csv", "tensorboard"])
def test_loggers_build(option, tmp_path):
    cfg = train_config([f"logger={option}"], tmp_path)
    loggers = [instantiate(node) for node in cfg.logger.values()]
    assert {type(lg).__name__ for lg in loggers} >= {"CSVLogger"}


def test_wandb_goes_offline_without_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    cfg = train_config(["logger=wandb"], tmp_path)
    wandb_logger = instantiate(cfg.logger.wandb)
    assert wandb_logger._offline is True


@pytest.mark.parametrize(
    "devices,num_nodes,expected",
    [
        (1, 1, "auto"),
        (4, 1, "ddp_find_unused_parameters_true"),
        (1, 2, "ddp_find_unused_parameters_true"),
        ("[0,1]", 1, "ddp_find_unused_parameters_true"),
        ("'0,1'", 1, "ddp_find_unused_parameters_true"),
        ("'1'", 1, "auto"),
    ],
)
def test_strategy_follows_device_count(devices, num_nodes, expected, tmp_path):
    cfg = train_config([f"trainer.devices={devices}", f"trainer.num_nodes={num_nodes}"], tmp_path)
    assert cfg.trainer.strategy == expected


def test_celebahq_four_gpus_prints_complete_config(tmp_path):
    cfg = train_config(["dataset=celebahq", "trainer.devices=4"], tmp_path)
    OmegaConf.resolve(cfg)
    assert cfg.dataset.root.endswith("celebahq")
    assert cfg.trainer.devices == 4
    assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert cfg.model.generator.width == 24  # real data sets get the paper-scale model


def test_cfg_job_command_prints_the_config(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtmsa.train",
            "dataset=celebahq",
            "trainer.devices=4",
            "--cfg",
            "job",
            "--resolve",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**__import__("os").environ, "MTMSA_ROOT": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    printed = OmegaConf.create(result.stdout)
    assert printed.dataset.name == "celebahq"
    assert printed.trainer.strategy == "ddp_find_unused_parameters_true"
    assert Path(printed.dataset.root) == tmp_path / "data" / "celebahq"
