"""The RunIf marker: a test that needs what is missing is skipped with the reason, and marked by its need."""

from __future__ import annotations

from tests.helpers.run_if import RunIf


def marks(test) -> dict:
    return {mark.name: mark for mark in test.pytestmark}


def test_run_if_skips_with_the_unmet_needs_and_marks_gpu_tests():
    @RunIf(min_gpus=1000, min_torch="999.0")
    def needs_much() -> None: ...

    found = marks(needs_much)
    assert set(found) == {"gpu", "skipif"} and found["skipif"].args == (True,)
    reason = found["skipif"].kwargs["reason"]
    assert "1000 CUDA GPU(s)" in reason and "torch >= 999.0" in reason

    @RunIf(min_torch="1.0")
    def needs_little() -> None: ...

    assert set(marks(needs_little)) == {"skipif"} and marks(needs_little)["skipif"].args == (False,)


def test_browser_tests_get_the_browser_marker(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)

    @RunIf(browser=True)
    def drives_a_browser() -> None: ...

    found = marks(drives_a_browser)
    assert (
        "browser" in found
        and found["skipif"].args == (True,)
        and "a browser on PATH" in found["skipif"].kwargs["reason"]
    )
