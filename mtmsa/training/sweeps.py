"""Sweep summaries: a Hydra callback that records every job of a multirun and tables them at the end.

Registered in conf/hydra/default.yaml (``hydra.callbacks.sweep_summary``). For every job of a multirun
(grid sweep, Optuna, local or SLURM) the process that ran the job writes ``<job dir>/metrics.json``: its
overrides, status, the value of ``optimized_metric`` it returned, the other metrics of its final validation
(read from its CSV log) and its error if it failed. After each job and at the end of the sweep, the records
are ranked best first and written to ``<sweep dir>/summary.md`` and ``summary.csv``; at the end the table is
also printed. Because the records live on disk, the table is the same whether the jobs ran in this process
or on cluster nodes.

A failed job does not stop the sweep: its error is logged in its own log and listed in the table, and its
job return is handed to the sweeper as completed without a value (the basic sweeper would otherwise stop
at the first failure; Optuna counts a trial without a value as failed). After the summary, a sweep with
failed jobs exits with status 1 and one line naming them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_only

from mtmsa.utils.errors import UserInputError
from mtmsa.utils.files import replaced_atomically

log = logging.getLogger(__name__)

RECORD_NAME = "metrics.json"
SUMMARY_NAMES = ("summary.md", "summary.csv")
DIRECTIONS = ("maximize", "minimize")
ERROR_WIDTH = 80


@dataclass
class JobRecord:
    """What one job of a sweep did. ``value`` is the job's ``optimized_metric`` (None: none returned)."""

    job: str
    overrides: list[str]
    status: str
    metric: str
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    minutes: float | None = None
    error: str | None = None

    @property
    def has_value(self) -> bool:
        return self.value is not None and math.isfinite(self.value)


def csv_log_path(config: DictConfig) -> Path | None:
    """``metrics.csv`` of the run's Lightning CSVLogger (``logger.csv``), or None without one."""
    node = OmegaConf.select(config, "logger.csv")
    if node is None:
        return None
    return Path(node.save_dir) / str(node.name) / f"version_{node.version}" / "metrics.csv"


LOGGED = ("val/", "temperature/")
"""Prefixes of the metrics a job record keeps."""


def tabled(name: str, metric: str) -> bool:
    """Whether a metric gets a column of the summary: not the ranked one, no per-bucket values, and of the
    temperature statistics only each head's mean."""
    if name == metric or "%" in name:
        return False
    return not name.startswith("temperature/") or name.endswith("_mean")


def final_validation_metrics(path: Path | None) -> dict[str, float]:
    """The ``val/*`` metrics and the attention's ``temperature/*`` statistics logged with them, from the last
    row of a Lightning CSV log that has any ``val/*`` value (the final validation)."""
    if path is None or not path.is_file():
        return {}
    with path.open(newline="") as file:
        rows = [
            row for row in csv.DictReader(file) if any(k.startswith("val/") and v for k, v in row.items())
        ]
    if not rows:
        return {}
    return {name: float(value) for name, value in rows[-1].items() if name.startswith(LOGGED) and value}


def job_record(config: DictConfig, job_return: JobReturn, minutes: float | None) -> JobRecord:
    """The record of a finished job (``config``: the job's config with its ``hydra`` node)."""
    metric = str(config.get("optimized_metric"))
    metrics = final_validation_metrics(csv_log_path(config))
    job = Path(config.hydra.runtime.output_dir).name
    if job_return.status == JobStatus.FAILED:
        error = job_return._return_value
        return JobRecord(
            job,
            list(job_return.overrides),
            "failed",
            metric,
            None,
            metrics,
            minutes,
            f"{type(error).__name__}: {error}",
        )
    value = job_return.return_value
    return JobRecord(
        job,
        list(job_return.overrides),
        "completed",
        metric,
        None if value is None else float(value),
        metrics,
        minutes,
    )


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step (jobs on several nodes may refresh the same summary at once)."""
    with replaced_atomically(path) as partial:
        partial.write_text(text)


def read_records(sweep_dir: Path) -> list[JobRecord]:
    """The records of the jobs under ``sweep_dir`` (one folder per job)."""
    return [JobRecord(**json.loads(p.read_text())) for p in sorted(sweep_dir.glob(f"*/{RECORD_NAME}"))]


def rank(records: list[JobRecord], direction: str) -> list[JobRecord]:
    """Best first by value; then completed jobs without a value; failed jobs last."""
    sign = -1.0 if direction == "maximize" else 1.0

    def key(record: JobRecord) -> tuple:
        if record.has_value:
            return (0, sign * record.value, record.job)
        return (1 if record.status == "completed" else 2, 0.0, record.job)

    return sorted(records, key=key)


def split_overrides(records: list[JobRecord]) -> tuple[list[str], list[list[str]]]:
    """(overrides every job shares, each job's other overrides): the table shows what the sweep varied."""
    shared = set.intersection(*(set(r.overrides) for r in records)) if records else set()
    return sorted(shared), [[o for o in r.overrides if o not in shared] for r in records]


def _number(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _status(record: JobRecord) -> str:
    if record.error is None:
        return record.status
    message = " ".join(record.error.split())
    return f"failed: {message[:ERROR_WIDTH]}{'...' if len(message) > ERROR_WIDTH else ''}"


def summary_markdown(records: list[JobRecord], sweep_dir: Path, direction: str) -> str:
    """The ranked table of a sweep as Markdown (columns padded, so it reads in a terminal too)."""
    ranked = rank(records, direction)
    metric = ranked[0].metric if ranked else "optimized_metric"
    shared, varied = split_overrides(ranked)
    others = sorted({name for r in ranked for name in r.metrics if tabled(name, metric)})
    header = ["rank", "job", "overrides", "status", metric, *others, "minutes"]
    rows = [
        [
            str(position) if record.has_value else "-",
            record.job,
            " ".join(overrides),
            _status(record),
            _number(record.value),
            *(_number(record.metrics.get(name)) for name in others),
            "n/a" if record.minutes is None else f"{record.minutes:.2f}",
        ]
        for position, (record, overrides) in enumerate(zip(ranked, varied, strict=True), start=1)
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    failed = sum(r.status == "failed" for r in ranked)
    better = "higher" if direction == "maximize" else "lower"
    lines = [
        f"# Sweep {sweep_dir}",
        "",
        f"{len(ranked)} jobs ({failed} failed), ranked by `{metric}` ({better} is better).",
        f"Overrides shared by every job: `{' '.join(shared)}`"
        if shared
        else "No override is shared by every job.",
        "",
        line(header),
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
        *(line(row) for row in rows),
    ]
    return "\n".join(lines) + "\n"


def summary_csv(records: list[JobRecord], direction: str) -> str:
    """Every job with all its overrides and metrics (bucketed ones included), ranked best first."""
    ranked = rank(records, direction)
    metrics = sorted({name for r in ranked for name in r.metrics})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["rank", "job", "status", "overrides", "optimized_metric", "value", *metrics, "minutes", "error"]
    )
    for position, record in enumerate(ranked, start=1):
        writer.writerow(
            [
                position if record.has_value else "",
                record.job,
                record.status,
                " ".join(record.overrides),
                record.metric,
                "" if record.value is None else record.value,
                *(record.metrics.get(name, "") for name in metrics),
                "" if record.minutes is None else round(record.minutes, 3),
                record.error or "",
            ]
        )
    return buffer.getvalue()


def write_summary(sweep_dir: Path, direction: str) -> tuple[str, list[JobRecord]]:
    """Write summary.md and summary.csv of the jobs recorded under ``sweep_dir``; (markdown, records)."""
    records = read_records(sweep_dir)
    markdown = summary_markdown(records, sweep_dir, direction)
    for name, text in zip(SUMMARY_NAMES, (markdown, summary_csv(records, direction)), strict=True):
        write_atomically(sweep_dir / name, text)
    return markdown, records


class SweepSummary(Callback):
    """Hydra callback: per-job records and the ranked sweep table (see the module docstring).

    Args:
        direction: ``maximize`` or ``minimize`` ``optimized_metric``; the config follows the Optuna
            sweeper's ``direction`` and is ``maximize`` for grid sweeps.
    """

    def __init__(self, direction: str = "maximize") -> None:
        if direction not in DIRECTIONS:
            raise UserInputError(
                f"hydra.callbacks.sweep_summary.direction={direction!r} is not supported; use one of {list(DIRECTIONS)}"
            )
        self.direction = direction
        self.started: float | None = None

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        # On SLURM every task (one per device) of a job runs this; the first writes the record.
        if rank_zero_only.rank == 0:
            minutes = None if self.started is None else (time.perf_counter() - self.started) / 60
            record = job_record(config, job_return, minutes)
            write_atomically(
                Path(config.hydra.runtime.output_dir) / RECORD_NAME, json.dumps(asdict(record), indent=1)
            )
            write_summary(Path(config.hydra.sweep.dir), self.direction)
        if job_return.status == JobStatus.FAILED:
            log.error(
                "job %s failed, the sweep goes on (it is listed in the summary)",
                Path(config.hydra.runtime.output_dir).name,
                exc_info=job_return._return_value,
            )
            job_return.status = JobStatus.COMPLETED
            job_return.return_value = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        markdown, records = write_summary(sweep_dir, self.direction)
        print(markdown + f"\nwritten to {sweep_dir / SUMMARY_NAMES[0]} and {SUMMARY_NAMES[1]}", flush=True)
        failed = [r.job for r in records if r.status == "failed"]
        if failed:
            print(
                f"error: {len(failed)} of {len(records)} sweep jobs failed ({', '.join(failed)}); their errors "
                f"are in the summary and in each job's log",
                file=sys.stderr,
            )
            sys.exit(1)
