"""experiments/fill_headroom.py: the smooth fills scored on the sample set, its plain U-Net and learned blend."""

from __future__ import annotations

import sys
from operator import attrgetter
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import fill_headroom  # noqa: E402


def _rows(table: str) -> dict[str, list[float]]:
    """fill name -> the numbers of its markdown row."""
    rows = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 6 and cells[1][:1].isdigit():
            rows[cells[0]] = [float(cell) for cell in cells[1:]]
    return rows


def test_the_harmonic_fill_leads_opencv_the_biharmonic_leads_it_and_sketches_lift_it_on_the_held_out_tiles(
    monkeypatch, capsys, sample_data_dir
):
    argv = ["fill_headroom.py", "--train-batches", "2", "--unet-iterations", "3", "--blend-iterations", "3"]
    argv += ["--solver-sweeps", "2", "20"]
    monkeypatch.setattr(sys, "argv", [*argv, "--overrides", f"paths.data_dir={sample_data_dir}"])
    fill_headroom.main()
    printed = capsys.readouterr().out
    training, validation = (_rows(part) for part in printed.split("**validation set")[:2])
    assert (
        "plain U-Net, mse, 3 iterations" in validation
        and "learned blend from half, mse, 3 iterations" in validation
    )
    assert len(training) == len(validation) == 9
    psnr = {name: values[4] for name, values in validation.items()}
    assert psnr["harmonic"] > psnr["navier_stokes"] + 0.3 > psnr["pull_push"] + 0.3 > psnr["mean colour"] + 3
    assert psnr["harmonic"] > psnr["telea"] + 0.5
    assert psnr["biharmonic (scikit-image)"] > psnr["harmonic"] + 1.0  # measured +1.86 dB on these tiles
    assert validation["harmonic"][1] == 1.0 and validation["pull_push"][3] > 1.1  # MSE relative to harmonic
    sketch_row = printed.split("own sketch as barriers**")[1].strip().splitlines()[2]  # header, rule, row
    lift = float(sketch_row.split("|")[2])
    without, with_sketch = (float(value) for value in sketch_row.split("|")[3].split("/"))
    assert lift > 0.5 and with_sketch > 2 * without, sketch_row
    rows = [
        line.split("|")[1:-1] for line in printed.split("solver:")[1].splitlines() if line.startswith("| ")
    ]
    distances = {row[0].strip(): [float(value) for value in row[1].split("/")] for row in rows[1:]}
    # 20 sweeps per level are near the exact fill (measured 0.0004 / 0.004), 2 far from it (0.008 / 0.023)
    assert max(distances["20"]) < 0.01, distances
    assert all(few > 3 * many for few, many in zip(distances["2"], distances["20"], strict=True)), distances


def harmonic_start(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return fill_headroom.harmonic_fill(images * (1 - masks), masks)


def nearly_harmonic_start(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """sigmoid(-4) = 0.018 of the way from the harmonic to the biharmonic fill."""
    harmonic = harmonic_start(images, masks)
    biharmonic = fill_headroom.BASELINES["biharmonic"](images * (1 - masks), masks)
    return harmonic + torch.sigmoid(torch.tensor(-4.0)) * (biharmonic - harmonic)


@pytest.mark.parametrize(
    "build, start, last, tolerance",
    [
        (lambda: fill_headroom.PlainUNet(width=8), harmonic_start, "out", 1e-6),
        (lambda: fill_headroom.LearnedBlend(width=8), fill_headroom.half_blend, "blend.weight", 0.01),
        (
            lambda: fill_headroom.LearnedBlend(width=8, start="harmonic"),
            nearly_harmonic_start,
            "blend.weight",
            0.01,
        ),
    ],
    ids=["plain U-Net", "learned blend from half", "learned blend from harmonic"],
)
def test_each_control_starts_at_its_fill_and_every_layer_gets_a_gradient(build, start, last, tolerance):
    """The U-Net starts at the harmonic fill (its last convolution is zero), the blend (up to its last
    convolution's small random weights) halfway between the harmonic and biharmonic fills or nearly at the
    harmonic one; the last convolution gets a gradient at once, and every layer once it is not zero."""
    torch.manual_seed(0)
    model = build()
    images, masks = torch.rand(2, 3, 32, 32) * 2 - 1, torch.zeros(2, 1, 32, 32)
    masks[..., 8:20, 10:24] = 1.0
    assert torch.allclose(model(images, masks), start(images, masks), atol=tolerance)
    model(images, masks).pow(2).mean().backward()
    assert attrgetter(last)(model).weight.grad.abs().sum() > 0
    attrgetter(last)(model).weight.data.normal_(std=1e-2)
    model.zero_grad()
    model(images, masks).pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
