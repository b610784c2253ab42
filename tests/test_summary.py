"""The table a training run ends with: the model beside the classical fills, its own initial fill named, and
its learned blend alone."""

from __future__ import annotations

from rich.console import Console

from mtmsa.training.summary import comparison_table


def _printed(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_comparison_names_the_initial_fill_and_says_which_fills_the_model_beats():
    metrics = {
        "val/psnr_hole": 22.3,
        "val/l1_hole": 0.0588,
        "val/psnr_hole_harmonic_fill": 22.65,
        "val/l1_hole_harmonic_fill": 0.0583,
        "val/psnr_hole_ns_fill": 22.06,
        "val/l1_hole_ns_fill": 0.0599,
        "val/psnr_hole_telea_fill": 21.88,
        "val/l1_hole_telea_fill": 0.0585,  # better L1 than the model: not beaten
        "val/psnr_hole_blend": 22.25,
        "val/l1_hole_blend": 0.0590,
    }
    lines = {
        line.split("│")[1].strip(): line
        for line in _printed(comparison_table(metrics, "harmonic")).splitlines()
        if line.count("│") == 5
    }
    assert "does NOT beat it" in lines["its initial fill: harmonic fill"]
    assert "beats it" in lines["OpenCV Navier-Stokes"] and "NOT" not in lines["OpenCV Navier-Stokes"]
    assert "does NOT beat it" in lines["OpenCV Telea"]
    assert "its networks add +0.05 dB" in lines["its learned blend alone"]
    assert "pull-push fill" not in lines and "harmonic fill" not in lines
    assert comparison_table({"val/psnr_hole": 20.0}) is None
