"""Loading generators from checkpoints weights-only: EMA preference, refusals, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import get_object, instantiate

import mtmsa
from mtmsa.inference.checkpoints import (
    CONFIG_KEY,
    RENAMED_TARGETS,
    CheckpointError,
    load_checkpoint,
    load_generator,
    upgraded_config,
)
from mtmsa.training.module import InpaintingModule
from tests.helpers.runs import CHECKPOINT_V0_1

PACKAGE = Path(mtmsa.__file__).resolve().parent


def test_lightning_checkpoint_loads_weights_only_with_ema_weights(checkpoint):
    generator, config = load_generator(checkpoint)
    assert not generator.training and not any(p.requires_grad for p in generator.parameters())
    assert config["dataset"]["image_size"] == 32 and config["model"]["generator"]["width"] == 4
    state = load_checkpoint(checkpoint)["state_dict"]
    loaded = generator.state_dict()
    assert all(torch.equal(loaded[k], state[f"generator_ema.{k}"]) for k in loaded)
    assert any(not torch.equal(loaded[k], state[f"generator.{k}"]) for k in loaded)  # EMA differs from raw


def test_without_ema_the_trained_weights_are_loaded(checkpoint, tmp_path):
    contents = load_checkpoint(checkpoint)
    contents["state_dict"] = {
        k: v for k, v in contents["state_dict"].items() if not k.startswith("generator_ema.")
    }
    torch.save(contents, tmp_path / "no_ema.ckpt")
    generator, _ = load_generator(tmp_path / "no_ema.ckpt")
    assert all(
        torch.equal(v, contents["state_dict"][f"generator.{k}"]) for k, v in generator.state_dict().items()
    )


class WritesAFile:
    """Unpickling this calls open(path, "w"): what a malicious checkpoint could do."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    target = tmp_path / "written_by_unpickling.txt"
    torch.save({"state_dict": {}, "payload": WritesAFile(target)}, tmp_path / "evil.ckpt")
    assert not target.exists()
    with pytest.raises(CheckpointError, match="refused") as error:
        load_generator(tmp_path / "evil.ckpt")
    assert "io.open" in str(error.value)  # names the global it would have called
    assert not target.exists()


def test_config_targets_outside_the_models_package_are_refused(checkpoint, tmp_path):
    contents = load_checkpoint(checkpoint)
    contents["mtmsa_config"]["model"]["attention"] = {"_target_": "os.system", "command": "touch pwned"}
    torch.save(contents, tmp_path / "evil_config.ckpt")
    with pytest.raises(CheckpointError, match="'os.system'"):
        load_generator(tmp_path / "evil_config.ckpt")


def test_clear_errors_for_files_that_are_no_mtmsa_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt does not exist"):
        load_generator(tmp_path / "missing.ckpt")
    (tmp_path / "noise.ckpt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="noise.ckpt: not a torch checkpoint"):
        load_generator(tmp_path / "noise.ckpt")
    torch.save({"state_dict": {"generator.w": torch.zeros(1)}}, tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match="plain.ckpt: it has no mtmsa_config"):
        load_generator(tmp_path / "plain.ckpt")
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_generator(tmp_path / "list.ckpt")


def targets(node) -> list[str]:
    if isinstance(node, dict):
        return [
            *([node["_target_"]] if "_target_" in node else []),
            *(t for v in node.values() for t in targets(v)),
        ]
    return [t for v in node for t in targets(v)] if isinstance(node, list) else []


def test_a_checkpoint_written_by_version_0_1_loads_with_todays_names():
    stored = load_checkpoint(CHECKPOINT_V0_1)
    assert stored[CONFIG_KEY]["model"]["_target_"] == "mtmsa.module.InpaintingModule"  # as it was written
    trained = load_generator(CHECKPOINT_V0_1)
    assert trained.config["model"]["_target_"] == "mtmsa.training.module.InpaintingModule"
    assert trained.config["callbacks"]["previews"]["_target_"] == "mtmsa.training.callbacks.PreviewLogger"
    assert trained.image_size == 32 and trained.dataset_name == "sample"
    assert trained.attention_config["heads"] == 4 and trained.config["model"]["generator"]["width"] == 2
    loaded = trained.generator.state_dict()
    assert all(torch.equal(loaded[k], stored["state_dict"][f"generator_ema.{k}"]) for k in loaded)
    for target in targets(trained.config):
        assert get_object(target) is not None, target  # every object its config names exists today
    assert trained.attention_config["matching"] == "projections"  # 0.1.0's attention design
    assert "l1_valid" not in trained.config["model"]["loss"]
    assert trained.config["model"]["loss"]["hole_l1_weight"] == stored[CONFIG_KEY]["model"]["loss"]["l1_hole"]
    module = instantiate(trained.config["model"])
    assert isinstance(module, InpaintingModule)
    module.load_state_dict(stored["state_dict"])  # strict: the module of today takes the old weights


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED_TARGETS.items()))
def test_each_renamed_target_leads_from_a_name_that_is_gone_to_one_that_exists(old, new):
    assert get_object(new) is not None
    with pytest.raises(ImportError):  # the old name is gone
        get_object(old)
    config = {"a": [{"_target_": old, "x": {"_target_": "mtmsa.models.layers.GatedConv2d"}}], "_target_": old}
    assert upgraded_config(config) == {
        "a": [{"_target_": new, "x": {"_target_": "mtmsa.models.layers.GatedConv2d"}}],
        "_target_": new,
    }


def test_training_stores_its_run_config_in_every_checkpoint(checkpoint):
    config = load_checkpoint(checkpoint)[CONFIG_KEY]
    assert config["model"]["_target_"] == "mtmsa.training.module.InpaintingModule"
    assert config["dataset"]["image_size"] == 32 and config["seed"] == 1234 and "hydra" not in config
