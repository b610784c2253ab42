"""A session-wide tiny checkpoint for command-line tests: ``from tests.fixtures_checkpoint import checkpoint``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_checkpoints import tiny_checkpoint


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, sample_data_dir) -> Path:
    """last.ckpt of a 2-step run of the tiny model at 32 px (shared with the other test modules)."""
    return tiny_checkpoint(tmp_path_factory, sample_data_dir)
