"""The reports of ``python -m mtmsa.evaluate``: a table on the terminal, metrics.json, metrics.csv, metrics.md."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)


def _cell(value: Any, column: str, results: dict[str, Any]) -> str:
    if value is None:
        return "unavailable" if column == "lpips" and results["metrics"].get("lpips") is None else "n/a"
    if isinstance(value, float):
        if column.startswith("sketch_lift"):
            return f"{value:.3f}" if column.endswith("_se") else f"{value:+.3f}"
        return (
            f"{value:.4f}"
            if column.startswith(("ssim", "l1", "lpips", "sketch_fidelity"))
            else f"{value:.2f}"
        )
    return str(value)


def formatted_rows(results: dict[str, Any]) -> list[list[str]]:
    """The table's rows as strings: numbers rounded, missing values as "n/a" or "unavailable"."""
    return [
        [_cell(v, c, results) for v, c in zip(row, results["columns"], strict=True)]
        for row in results["rows"]
    ]


def _title(results: dict[str, Any]) -> str:
    source = results.get("checkpoint", results["method"])
    split = results["split"]
    folder = results.get("folder", split)  # the folder evaluated (dataset.val_dir may name another)
    where = split if folder == split else f"{split}: folder {folder}"
    return f"{source} on {results['dataset']} ({where}, {results['images']} images)"


def write_reports(results: dict[str, Any], folder: Path) -> None:
    """metrics.json (everything, missing values null), metrics.csv (the table), metrics.md (table + notes)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(results, indent=1))
    rows = formatted_rows(results)
    with open(folder / "metrics.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(results["columns"])
        writer.writerows([[_csv_value(v) for v in row] for row in results["rows"]])
    lines = [
        f"# Evaluation: {_title(results)}",
        "",
        "| " + " | ".join(results["columns"]) + " |",
        "|" + "---|" * len(results["columns"]),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *(f"- {note}" for note in results["notes"]),
    ]
    (folder / "metrics.md").write_text("\n".join(lines) + "\n")
    log.info("wrote %s/metrics.{json,csv,md}", folder)


def write_per_image(columns: list[str], rows: list[list], folder: Path) -> None:
    """per_image.csv: every image's metrics (:meth:`mtmsa.evaluation.evaluator.Evaluation.per_image`), to find
    the images a method fails on; values rounded to 6 digits, a missing one (NaN) left empty."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "per_image.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(
            [[v if isinstance(v, str) else _csv_value(round(v, 6)) for v in row] for row in rows]
        )
    log.info("wrote %s/per_image.csv (%d images)", folder, len(rows))


def _csv_value(value: Any) -> Any:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def print_table(results: dict[str, Any]) -> None:
    table = Table(title=_title(results), caption="\n".join(results["notes"]), caption_justify="left")
    for column in results["columns"]:
        table.add_column(column, justify="left" if column == "hole ratio" else "right")
    for row in formatted_rows(results):
        table.add_row(*row)
    Console(width=max(120, Console().width)).print(table)
