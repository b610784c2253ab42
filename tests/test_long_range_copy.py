"""The long-range copy ablation: its data set needs long-range copy, and its runner trains and reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments" / "long_range_copy"))

import patterns  # noqa: E402
import run  # noqa: E402

from mtmsa.evaluation.baselines import mean_fill  # noqa: E402
from mtmsa.models.attention import ContextualAttention  # noqa: E402


def _batch(seed: int, size: int = 32, count: int = 16) -> patterns.PatternBatch:
    return patterns.make_batch(count, size, torch.Generator().manual_seed(seed))


def test_batch_shapes_ranges_and_hole_placement():
    batch = _batch(0)
    assert batch.images.shape == (16, 3, 32, 32)
    assert batch.masks.shape == batch.distractors.shape == (16, 1, 32, 32)
    assert batch.images.min() >= -1.0 and batch.images.max() <= 1.0
    assert set(batch.masks.unique().tolist()) == {0.0, 1.0}
    hole_side = batch.masks.amax(dim=2).sum(dim=(1, 2))  # hole width in pixels per image
    assert hole_side.min() >= 0.3 * 32 - 1 and hole_side.max() <= 0.45 * 32 + 1
    margin = 8  # a quarter of the side: every border ring of this width is known
    assert batch.masks[..., :margin, :].sum() == 0 and batch.masks[..., -margin:].sum() == 0
    assert (batch.masks * batch.distractors).sum() == 0, "distractors lie outside the hole"
    period = batch.lattices.double().norm(dim=2)
    assert (period < hole_side[:, None]).all(), "the hole spans more than one period"


def test_same_seed_same_batch_other_seed_other_batch():
    first, again, other = _batch(3), _batch(3), _batch(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first.images, other.images)


def test_textures_are_exactly_periodic_on_the_pixel_grid():
    lattices = patterns.random_lattices(6, 32, torch.Generator().manual_seed(1))
    texture = patterns.render_textures(lattices, 32, torch.Generator().manual_seed(2))
    for image, (a1, a2) in zip(texture, lattices, strict=True):
        for dx, dy in (a1.tolist(), a2.tolist()):
            shifted = torch.roll(image, shifts=(dy, dx), dims=(1, 2))
            rows = slice(max(dy, 0), 32 + min(dy, 0))
            cols = slice(max(dx, 0), 32 + min(dx, 0))
            torch.testing.assert_close(shifted[:, rows, cols], image[:, rows, cols], atol=1e-6, rtol=0)


def test_copying_one_lattice_shift_away_beats_mean_fill_by_far():
    batch = _batch(5)
    copied, found = patterns.lattice_copy_fill(batch, reach=3)
    assert found.sum() / batch.masks.sum() > 0.99, "a copy source exists for nearly every hole pixel"
    copy_psnr, mean_psnr = (
        run.hole_metrics(fill, batch)[:, 0].mean().item()
        for fill in (copied, mean_fill(batch.images, batch.masks))
    )
    assert mean_psnr < 20.0 and copy_psnr > mean_psnr + 30.0
    assert torch.equal(copied * (1 - batch.masks), batch.images * (1 - batch.masks))


def test_attention_factory_uses_the_configs_with_overrides():
    variant = run.Variant("mtmsa", 2, "learned_scalar")
    module = run.attention_factory(variant)(channels=16)
    assert module.heads == 2 and module.temperature.mode == "learned_scalar"
    assert isinstance(run.attention_factory(run.Variant("contextual"))(channels=16), ContextualAttention)


def test_runs_train_append_and_write_the_report(tmp_path):
    tiny = ["--out", str(tmp_path), "--iterations", "3", "--threads", "1", "--width", "4", "--batch", "4"]
    tiny += [
        "--training-images",
        "16",
        "--validation-images",
        "8",
        "--example-variants",
        "mtmsa learned_map h2",
    ]
    run.main([*tiny, "--seeds", "1", "--variants", "none"])
    run.main([*tiny, "--seeds", "2", "--variants", "mtmsa learned_map h2", "--append"])
    report = json.loads((tmp_path / "results.json").read_text())
    assert [(r["variant"], r["heads"], r["seed"]) for r in report["runs"]] == [
        ("none", None, 0),
        ("mtmsa learned_map", 2, 0),
        ("mtmsa learned_map", 2, 1),
    ]
    for result in report["runs"]:
        assert 0.0 < result["psnr_hole"] < 100.0 and 0.0 < result["l1_hole"] < 1.0
    for key in ("min", "max"):
        assert all(0.01 <= t <= 1.0 for t in report["runs"][1]["temperature"][key])
    assert len(report["sections"]) == 2
    assert report["total_wall_s"] == pytest.approx(sum(s["wall_s"] for s in report["sections"]))
    assert [row["variant"] for row in report["references"]][:2] == ["mean fill", "OpenCV Telea"]
    table = (tmp_path / "results.md").read_text()
    assert "| none | - |" in table and "| mtmsa learned_map | 2 |" in table
    assert (tmp_path / "plot.png").stat().st_size > 10_000


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(SystemExit):
        run.parse_args(["--variants", "mtmsa learned_map h3"])
