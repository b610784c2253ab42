"""The long-range copy ablation: its copy task needs copying, its test bed learns, its runner reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "long_range_copy"))

import copy_task  # noqa: E402
import run  # noqa: E402
import testbed  # noqa: E402

from mtmsa.evaluation.baselines import mean_fill  # noqa: E402
from mtmsa.models.attention import ContextualAttention  # noqa: E402
from mtmsa.models.initial_fill import pull_push_fill  # noqa: E402


def _copy_batch(seed: int, count: int = 16, decoys: int = 1) -> copy_task.CopyBatch:
    return copy_task.copy_batch(
        count, 48, torch.Generator().manual_seed(seed), hole=(2, 2), ring=2, decoys=decoys
    )


def test_copy_task_is_seeded_on_the_grid_and_solved_only_by_copying():
    batch, again = _copy_batch(3), _copy_batch(3)
    assert all(torch.equal(a, b) for a, b in zip(batch, again, strict=True))
    assert not torch.equal(batch.images, _copy_batch(4).images)
    cells = torch.nn.functional.avg_pool2d(batch.masks, copy_task.CELL)
    assert set(cells.unique().tolist()) == {0.0, 1.0}, "the hole covers whole 4x4 cells"
    assert torch.equal(batch.masks.sum(dim=(1, 2, 3)), torch.full((16,), 64.0)), "2x2 cells of 16 pixels"
    oracle, mean = (
        run.hole_metrics(f, batch.images, batch.masks)[:, 0].mean()
        for f in (batch.oracle, mean_fill(batch.images, batch.masks))
    )
    assert mean < 21.0 and oracle > mean + 12.0


def test_the_source_holds_the_hole_content_and_a_decoy_shares_only_part_of_its_ring():
    def close_pairs(images: torch.Tensor) -> torch.Tensor:
        """(B, N, N) cells equal up to the task's noise (RMS < 0.06), a cell with itself excluded."""
        distances = run.cell_distances(images)
        return (distances < 0.06) & ~torch.eye(distances.shape[1], dtype=torch.bool)

    plain, decoyed = _copy_batch(5, 8, decoys=0), _copy_batch(5, 8, decoys=1)
    hole = torch.nn.functional.max_pool2d(decoyed.masks, copy_task.CELL).flatten(1).bool()
    sources = run.source_keys(decoyed, 0, 8)
    assert (close_pairs(decoyed.images) & sources).any(dim=2)[hole].all(), "each hole cell's source is a copy"
    distances = run.cell_distances(decoyed.images) + 1e9 * torch.eye(sources.shape[1])
    nearest = torch.nn.functional.one_hot(distances.argmin(dim=2), sources.shape[1]).bool()
    assert (nearest & sources).any(dim=2)[hole].float().mean() > 0.9, (
        "the nearest cell is the source, not a decoy"
    )
    # a 6x6 block has 32 ring cells, half kept by the decoy: ~16 more pairs per image than without decoys
    assert int(close_pairs(decoyed.images).sum() - close_pairs(plain.images).sum()) > 8 * 2 * 8


def test_testbed_starts_at_its_initial_fill_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = testbed.Testbed(run.attention_factory(run.Variant("learned_map", 4, 0.1)))
    batch = _copy_batch(0, 4)
    output = model(batch.images, batch.masks, torch.zeros_like(batch.masks))
    base = pull_push_fill(batch.images * (1 - batch.masks), batch.masks)
    assert (output.refined - base).abs().max() < 0.05
    ((output.refined - batch.images).abs() * batch.masks).mean().backward()
    starved = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not starved, starved


def test_attention_factory_overrides_heads_and_temperature():
    module = run.attention_factory(run.Variant("constant", 2, 0.3))(channels=16)
    assert module.heads == 2 and module.temperature.mode == "constant"
    hole = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    assert torch.allclose(module.temperature(torch.zeros(1, 16, 3, 3), hole), torch.tensor(0.3))
    assert isinstance(run.attention_factory(run.Variant("contextual"))(channels=16), ContextualAttention)


def test_a_tiny_grid_ranks_the_oracle_first_and_none_last_and_reports_every_field(tmp_path):
    """The test bed on the copy task, 60 iterations: attention that copies beats the fill without it, the
    oracle copy beats them all, and results.json / results.md / the plots carry what the issue names."""
    labels = ["none", "constant 0.03 h1", "learned_map h4"]
    run.main(
        [
            "--out",
            str(tmp_path),
            "--seeds",
            "2",
            "--models",
            "testbed",
            "--tasks",
            "copy",
            "--iterations",
            "60",
        ]
        + ["--validation-images", "32", "--workers", "1", "--variants", *labels]
    )
    results = json.loads((tmp_path / "results.json").read_text())
    runs = results["runs"]
    assert sorted((r["label"], r["seed"]) for r in runs) == sorted(
        (label, s) for label in labels for s in (0, 1)
    )
    for r in runs:
        assert {"model", "task", "variant", "heads", "seed", "psnr_hole", "l1_hole"} <= set(r)
        assert r["model"] == "testbed" and r["task"] == "copy"
        if r["variant"] != "none":
            assert 0.0 <= r["mass_on_source"] <= 1.0 and len(r["temperature"]) == r["heads"]
            assert all(0.01 <= t <= 1.0 for t in r["temperature"])
            assert len(r["temperature_history"]["step"]) == len(r["temperature_history"]["temperature"]) > 5
    score = {label: min(r["psnr_hole"] for r in runs if r["label"] == label) for label in labels}
    best = {label: max(r["psnr_hole"] for r in runs if r["label"] == label) for label in labels}
    references = {r["variant"]: r["psnr_hole"] for r in results["references"]}
    assert references["oracle copy"] > max(best.values()) + 5.0
    assert score["constant 0.03 h1"] > best["none"] + 0.5, (score, best)
    assert score["learned_map h4"] > best["none"], (score, best)
    table = (tmp_path / "results.md").read_text()
    assert "| constant 0.03 h1 |" in table and "Paired comparisons" in table
    for picture in ("plot.png", "temperatures.png", "fills.png"):
        assert (tmp_path / picture).stat().st_size > 10_000


def test_unknown_variant_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        run.parse_args(["--variants", "learned_map h3"])
    assert "unknown --variants ['learned_map h3']" in capsys.readouterr().err
