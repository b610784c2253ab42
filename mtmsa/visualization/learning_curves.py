"""The learning curve of a run: hole PSNR and hole L1 of the model over training steps, beside the classical
fills validation scored on the same images and masks (``val/psnr_hole_<fill>_fill``) and, for a model with a
learned blend of the smooth fills as its base (``model.generator.fill_blend``), that blend alone
(``val/psnr_hole_blend``): the gap between the two curves is what the networks' residuals add.

    python -m mtmsa.visualization.learning_curves logs/train/runs/<run>            # -> <run>/learning_curves.png
    python -m mtmsa.visualization.learning_curves <run> --out docs/images/learning_curves.png
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from mtmsa.visualization.figures import new_figure, save_figure

PANELS = (("psnr_hole", "hole PSNR (dB), higher is better"), ("l1_hole", "hole L1, lower is better"))
FILL_NAMES = {
    "mean": "mean colour",
    "harmonic": "harmonic fill",
    "pull_push": "pull-push fill",
    "telea": "Telea",
    "ns": "Navier-Stokes",
    "biharmonic": "biharmonic fill (scikit-image)",
    "bounded_biharmonic": "bounded biharmonic fill",
}
BLEND_LABEL = "its learned blend alone"


def read_validation(metrics_csv: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every ``val/*`` column of a CSV logger's ``metrics.csv`` as (step, value) pairs, rows without it skipped."""
    series: dict[str, list[tuple[int, float]]] = {}
    with open(metrics_csv, newline="") as file:
        for row in csv.DictReader(file):
            for name, value in row.items():
                if name.startswith("val/") and value not in ("", None):
                    series.setdefault(name, []).append((int(row["step"]), float(value)))
    return series


def plot_learning_curves(metrics_csv: str | Path, path: str | Path, title: str = "") -> Path:
    """Two panels (hole PSNR, hole L1): the model per validation (and its learned blend alone, if logged), and
    each classical fill as a dashed line."""
    series = read_validation(metrics_csv)
    if "val/psnr_hole" not in series:
        raise ValueError(f"{metrics_csv} has no val/psnr_hole values; the run has not validated yet")
    figure = new_figure(10, 3.6)
    for axis, (metric, label) in zip(figure.subplots(1, 2), PANELS, strict=True):
        steps, values = zip(*series[f"val/{metric}"], strict=True)
        axis.plot(steps, values, marker="o", markersize=3, color="black", label="model", zorder=3)
        if f"val/{metric}_blend" in series:
            steps, values = zip(*series[f"val/{metric}_blend"], strict=True)
            axis.plot(
                steps,
                values,
                marker="x",
                markersize=8,
                linestyle=":",
                color="tab:orange",
                label=BLEND_LABEL,
                zorder=4,
            )
        for fill, name in FILL_NAMES.items():
            scored = series.get(f"val/{metric}_{fill}_fill")
            if scored and math.isfinite(scored[-1][1]):
                axis.axhline(
                    scored[-1][1], linestyle="--", linewidth=1, label=name, color=f"C{len(axis.lines)}"
                )
        axis.set_xlabel("iteration (training batches)")
        axis.set_title(label)
        axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.suptitle(title or f"Learning curve: {Path(metrics_csv).parent}")
    figure.tight_layout()
    return save_figure(figure, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run", type=Path, help="a run folder (with csv/version_*/metrics.csv) or a metrics.csv"
    )
    parser.add_argument("--out", type=Path, help="the PNG to write (default: <run>/learning_curves.png)")
    parser.add_argument("--title", default="")
    args = parser.parse_args(argv)
    found = [args.run] if args.run.is_file() else sorted(args.run.glob("csv/version_*/metrics.csv"))
    if not found:
        print(
            f"error: {args.run} holds no csv/version_*/metrics.csv; train with logger=csv (the default)",
            file=sys.stderr,
        )
        return 2
    run = args.run if args.run.is_dir() else args.run.parent
    try:
        path = plot_learning_curves(found[-1], args.out or run / "learning_curves.png", args.title)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
