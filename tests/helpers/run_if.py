"""``@RunIf(...)``: run a test only where what it needs is there (a GPU, a browser), else skip it and say why.

After lightning-hydra-template's ``tests/helpers/run_if.py``. A test that needs a GPU also gets the ``gpu``
marker (deselected by default: ``pytest -m gpu`` runs them), one that needs a browser the ``browser`` marker.

    @RunIf(min_gpus=1)
    def test_bf16_training_step(): ...
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

import pytest
import torch
from packaging.version import Version

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser(names: Sequence[str] = BROWSERS) -> str | None:
    """Path of the first of ``names`` on PATH (the editor's browser tests drive it headless)."""
    return next((path for name in names if (path := shutil.which(name))), None)


class RunIf:
    """A decorator that skips the test unless every condition holds; the reason lists the unmet ones."""

    def __init__(self, min_gpus: int = 0, browser: bool = False, min_torch: str | None = None) -> None:
        self.marks = [pytest.mark.gpu] if min_gpus else []
        if browser:
            self.marks.append(pytest.mark.browser)
        missing = []
        if min_gpus and torch.cuda.device_count() < min_gpus:
            missing.append(f"{min_gpus} CUDA GPU(s), found {torch.cuda.device_count()}")
        if browser and find_browser() is None:
            missing.append(f"a browser on PATH ({', '.join(BROWSERS)})")
        if min_torch and Version(torch.__version__.split("+")[0]) < Version(min_torch):
            missing.append(f"torch >= {min_torch}, found {torch.__version__}")
        self.marks.append(pytest.mark.skipif(bool(missing), reason=f"needs {'; '.join(missing)}"))

    def __call__(self, test: Callable) -> Callable:
        for mark in self.marks:
            test = mark(test)
        return test
