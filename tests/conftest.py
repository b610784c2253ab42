"""Session fixtures: the bundled sample data set and a tiny checkpoint, made once. Helpers shared by the test
modules live in tests/helpers/."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import mtmsa  # noqa: F401  (registers the config resolvers)
from tests.helpers.runs import tiny_checkpoint

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def sample_data_dir(tmp_path_factory) -> Path:
    """A data folder holding the bundled sample data set, made once per test session."""
    from mtmsa.data.sample import ensure_sample_dataset

    data_dir = tmp_path_factory.mktemp("data")
    ensure_sample_dataset(data_dir / "sample")
    return data_dir


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, sample_data_dir) -> Path:
    """last.ckpt of a 2-step run of the tiny model at 32 px (see :func:`tests.helpers.runs.tiny_checkpoint`)."""
    return tiny_checkpoint(tmp_path_factory, sample_data_dir)
