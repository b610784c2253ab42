"""The learning-curve picture from a run's metrics.csv."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mtmsa.visualization.learning_curves import main, read_validation

HEADER = (
    "epoch,step,train/l1_refined_step,val/psnr_hole,val/l1_hole,val/psnr_hole_telea_fill,val/l1_hole_telea_fill,"
    "val/psnr_hole_blend\n"
)


def write_metrics(folder, rows: str):
    path = folder / "csv" / "version_0" / "metrics.csv"
    path.parent.mkdir(parents=True)
    path.write_text(HEADER + rows)
    return path


def test_validation_series_skip_training_rows_and_the_picture_is_drawn(tmp_path):
    metrics = write_metrics(
        tmp_path,
        "0,9,0.2,,,,,\n0,149,,20.5,0.07,21.9,0.061,20.4\n1,299,,21.25,0.065,21.9,0.061,21.0\n1,300,0.1,,,,,\n",
    )
    series = read_validation(metrics)
    assert series["val/psnr_hole"] == [(149, 20.5), (299, 21.25)]
    assert set(series) == {
        "val/psnr_hole",
        "val/l1_hole",
        "val/psnr_hole_telea_fill",
        "val/l1_hole_telea_fill",
        "val/psnr_hole_blend",
    }
    assert main([str(tmp_path)]) == 0
    picture = np.asarray(Image.open(tmp_path / "learning_curves.png"))
    assert picture.shape[0] > 200 and picture.shape[1] > 600
    assert picture[..., :3].std() > 10  # lines and text, not a blank canvas


def test_a_run_that_never_validated_is_one_clear_error(tmp_path, capsys):
    write_metrics(tmp_path, "0,9,0.2,,,,,\n")
    assert main([str(tmp_path)]) == 2
    assert "no val/psnr_hole values" in capsys.readouterr().err
    assert main([str(tmp_path / "elsewhere")]) == 2
    assert "holds no csv/version_*/metrics.csv" in capsys.readouterr().err
