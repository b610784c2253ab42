"""Loading generators from checkpoints weights-only: EMA preference, refusals, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mtmsa.checkpoints import CheckpointError, load_checkpoint, load_generator
from mtmsa.train import train
from tests.conftest import compose_config
from tests.test_train import TINY

_TINY_CHECKPOINTS: dict[str, Path] = {}


def tiny_checkpoint(tmp_path_factory, data_dir: Path) -> Path:
    """last.ckpt of a 2-step training run of the tiny model at 32 px, made once per test session."""
    if "last" not in _TINY_CHECKPOINTS:
        run = tmp_path_factory.mktemp("tiny_run")
        train(compose_config(TINY + ["trainer.max_steps=2"], run, data_dir))
        _TINY_CHECKPOINTS["last"] = run / "checkpoints" / "last.ckpt"
    return _TINY_CHECKPOINTS["last"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, sample_data_dir) -> Path:
    return tiny_checkpoint(tmp_path_factory, sample_data_dir)


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
