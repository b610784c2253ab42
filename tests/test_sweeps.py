"""Sweeps: the summary callback, grid and Optuna sweeps on the CLI, the SLURM launcher config, experiments."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from mtmsa.conf import CONFIG_DIR
from mtmsa.training.sweeps import JobRecord, SweepSummary, rank, read_records, write_summary
from mtmsa.utils.errors import UserInputError
from tests.helpers.runs import TINY, run_cli, train_config

# One iteration and one validation batch per job: the sweep machinery, not the model, is under test.
TINY_JOB = [
    *(override for override in TINY if not override.startswith("callbacks.")),
    "callbacks=none",
    "trainer.max_steps=2",
    "trainer.val_check_interval=1000",
    "+trainer.limit_val_batches=1",
]


def write_record(sweep_dir: Path, record: JobRecord) -> None:
    job_dir = sweep_dir / record.job
    job_dir.mkdir(parents=True)
    (job_dir / "metrics.json").write_text(json.dumps(record.__dict__))


def table_jobs(markdown: str) -> list[str]:
    """The job column of a summary table, top to bottom."""
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and not line.startswith("| rank")]
    return [row.split("|")[2].strip() for row in rows]


@pytest.fixture
def three_jobs(tmp_path) -> Path:
    common = ["trainer.max_steps=4"]
    write_record(
        tmp_path,
        JobRecord(
            "0_a",
            [*common, "model.attention.heads=1"],
            "completed",
            "val/psnr_hole",
            20.5,
            {"val/psnr_hole": 20.5, "val/ssim": 0.7, "val/psnr_0-10%": 30.0},
            1.5,
        ),
    )
    write_record(
        tmp_path,
        JobRecord(
            "1_b",
            [*common, "model.attention.heads=2"],
            "failed",
            "val/psnr_hole",
            None,
            {},
            0.1,
            "RuntimeError: CUDA out of memory",
        ),
    )
    write_record(
        tmp_path,
        JobRecord(
            "2_c",
            [*common, "model.attention.heads=4"],
            "completed",
            "val/psnr_hole",
            22.25,
            {"val/psnr_hole": 22.25, "val/ssim": 0.75, "val/psnr_0-10%": 31.0},
            1.25,
        ),
    )
    return tmp_path


def test_summary_ranks_best_first_and_lists_failed_jobs_last(three_jobs):
    markdown, records = write_summary(three_jobs, "maximize")
    assert len(records) == 3
    assert table_jobs(markdown) == ["2_c", "0_a", "1_b"]
    assert "3 jobs (1 failed), ranked by `val/psnr_hole` (higher is better)" in markdown
    assert "Overrides shared by every job: `trainer.max_steps=4`" in markdown
    failed_row = markdown.splitlines()[-1]
    assert "failed: RuntimeError: CUDA out of memory" in failed_row and "| -    |" in failed_row
    assert "22.2500" in markdown and "0.7500" in markdown
    assert "val/psnr_0-10%" not in markdown  # bucketed metrics only in the CSV
    assert (three_jobs / "summary.md").read_text() == markdown
    rows = list(csv.DictReader((three_jobs / "summary.csv").open()))
    assert [(r["rank"], r["job"], r["status"]) for r in rows] == [
        ("1", "2_c", "completed"),
        ("2", "0_a", "completed"),
        ("", "1_b", "failed"),
    ]
    assert float(rows[0]["val/psnr_0-10%"]) == 31.0
    assert rows[2]["error"] == "RuntimeError: CUDA out of memory"


def test_minimize_puts_the_lowest_value_first(three_jobs):
    assert [r.job for r in rank(read_records(three_jobs), "minimize")] == ["0_a", "2_c", "1_b"]
    markdown, _ = write_summary(three_jobs, "minimize")
    assert "lower is better" in markdown


def test_unknown_direction_is_a_user_error():
    with pytest.raises(UserInputError, match="direction='max'"):
        SweepSummary(direction="max")


def job_config(tmp_path: Path, mode: RunMode = RunMode.MULTIRUN):
    return OmegaConf.create(
        {
            "optimized_metric": "val/psnr_hole",
            "hydra": {
                "mode": mode,
                "sweep": {"dir": str(tmp_path)},
                "runtime": {"output_dir": str(tmp_path / "3_x")},
            },
        }
    )


def test_failed_job_is_recorded_and_handed_to_the_sweeper_without_a_value(tmp_path):
    (tmp_path / "3_x").mkdir()
    job_return = JobReturn(
        overrides=["model.attention.heads=3"],
        status=JobStatus.FAILED,
        _return_value=ValueError("heads=3 must divide channels=16"),
    )
    callback = SweepSummary()
    callback.on_job_start(config=job_config(tmp_path), task_function=None)
    callback.on_job_end(config=job_config(tmp_path), job_return=job_return)
    assert job_return.status == JobStatus.COMPLETED and job_return.return_value is None  # the sweep goes on
    record = json.loads((tmp_path / "3_x" / "metrics.json").read_text())
    assert record["status"] == "failed" and record["error"] == "ValueError: heads=3 must divide channels=16"
    assert record["overrides"] == ["model.attention.heads=3"] and record["minutes"] >= 0
    assert "failed: ValueError: heads=3" in (tmp_path / "summary.md").read_text()


def test_single_runs_are_left_alone(tmp_path):
    job_return = JobReturn(overrides=[], status=JobStatus.FAILED, _return_value=ValueError("x"))
    SweepSummary().on_job_end(config=job_config(tmp_path, RunMode.RUN), job_return=job_return)
    assert job_return.status == JobStatus.FAILED
    assert not list(tmp_path.rglob("*.json")) and not (tmp_path / "summary.md").exists()


def sweep_dir(root: Path) -> Path:
    (folder,) = (root / "logs" / "train" / "multiruns").iterdir()
    return folder


def test_grid_sweep_gives_each_job_a_folder_and_prints_the_ranked_summary(tmp_path, sample_data_dir):
    """A failing combination (a data set folder of unreadable files: a mistake no config check sees) is
    listed as failed; the others still run."""
    unreadable = tmp_path / "unreadable"
    for split in ("train", "val"):
        (unreadable / split).mkdir(parents=True)
        (unreadable / split / "noise.png").write_bytes(b"not an image")
    roots = f"{sample_data_dir / 'sample'},{unreadable}"
    result = run_cli(
        ["-m", "model.attention.heads=1,2", "dataset=folder", f"dataset.root={roots}", "dataset.num_workers=0",
         *TINY_JOB],
        tmp_path,
        sample_data_dir,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: 2 of 4 sweep jobs failed" in result.stderr
    folder = sweep_dir(tmp_path)
    jobs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == [
        "0_folder-mtmsa-h1-learned_map",
        "1_folder-mtmsa-h1-learned_map",
        "2_folder-mtmsa-h2-learned_map",
        "3_folder-mtmsa-h2-learned_map",
    ]
    records = {r.job: r for r in read_records(folder)}
    assert {r.job for r in records.values() if r.status == "failed"} == {jobs[1], jobs[3]}
    completed = [records[jobs[0]], records[jobs[2]]]
    for record in completed:
        assert record.value == record.metrics["val/psnr_hole"] > 0
        assert {"val/psnr", "val/ssim", "val/l1_hole"} <= record.metrics.keys()
    # The temperature each head used, so that a sweep compares them: 1 head, then 2.
    assert [k for k in records[jobs[0]].metrics if k.endswith("_mean")] == ["temperature/head0_mean"]
    assert {"temperature/head1_mean", "temperature/head1_max"} <= records[jobs[2]].metrics.keys()
    summary = (folder / "summary.md").read_text()
    assert "temperature/head1_mean" in summary and "temperature/head1_max" not in summary
    assert summary in result.stdout
    best = max(completed, key=lambda r: r.value)
    assert table_jobs(summary)[0] == best.job and set(table_jobs(summary)[2:]) == {jobs[1], jobs[3]}
    assert "holds no readable image" in records[jobs[1]].error and "| failed: " in summary
    assert f"model.attention.heads=1 dataset.root={sample_data_dir / 'sample'}" in summary


def test_grid_sweep_with_a_bad_value_is_refused_before_any_job(tmp_path, sample_data_dir):
    """Every job's config is checked before the sweep starts: no sweep folder, one line naming the job."""
    result = run_cli(["-m", "model.attention.heads=1,2", "model.optimizer_g.lr=1e-3,-1", *TINY_JOB], tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "error: job 1 of the sweep (model.attention.heads=1 model.optimizer_g.lr=-1): "
        "model.optimizer_g.lr=-1 is not a number > 0"
    ]
    assert not (tmp_path / "logs").exists()


@pytest.mark.slow
def test_optuna_search_runs_two_trials_and_prints_the_summary(tmp_path, sample_data_dir):
    result = run_cli(
        ["hparams_search=heads_temperature", "hydra.sweeper.n_trials=2", *TINY_JOB], tmp_path, sample_data_dir
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = sweep_dir(tmp_path)
    optuna_result = OmegaConf.load(folder / "optimization_results.yaml")
    records = read_records(folder)
    assert len(records) == 2 and all(r.status == "completed" for r in records)
    assert {
        "model.attention.heads",
        "model.attention.temperature.mode",
        "model.attention.temperature.init",
        "model.attention.temperature.range",
    } <= {o.split("=")[0] for o in records[0].overrides}
    best = rank(records, "maximize")[0]
    assert optuna_result.best_value == pytest.approx(best.value)
    summary = (folder / "summary.md").read_text()
    assert summary in result.stdout and table_jobs(summary)[0] == best.job


def compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_summary_direction_follows_the_optuna_sweeper():
    assert compose_with_hydra([]).hydra.callbacks.sweep_summary.direction == "maximize"
    cfg = compose_with_hydra(["hparams_search=heads_temperature", "hydra.sweeper.direction=minimize"])
    assert cfg.hydra.callbacks.sweep_summary.direction == "minimize"
    assert cfg.hydra.sweeper._target_.endswith("OptunaSweeper")


def test_slurm_launcher_asks_for_one_task_and_gpu_per_device_on_each_node():
    cfg = compose_with_hydra(
        ["hydra/launcher=slurm", "dataset=celebahq", "trainer.devices=4", "trainer.num_nodes=2"]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert launcher.timeout_min > 0 and launcher.cpus_per_task > 0 and launcher.partition is None


def test_slurm_sweep_submits_an_sbatch_script(tmp_path):
    """The real command with stand-in `srun` and `sbatch` (which keeps the script and refuses the job)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(
        '#!/bin/sh\ncp "$1" "$SBATCH_COPY"\necho "sbatch: refused by the test" >&2\nexit 1\n'
    )
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    script = tmp_path / "job.sh"
    result = run_cli(
        [
            "-m",
            "hydra/launcher=slurm",
            "dataset=celebahq",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
        ],
        tmp_path,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SBATCH_COPY": str(script)},
        timeout=120,
    )
    assert "sbatch: refused by the test" in result.stderr, result.stderr[-3000:]
    sbatch = script.read_text()
    for line in ("--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--partition=gpu", "--time=1440"):
        assert f"#SBATCH {line}\n" in sbatch
    assert "srun" in sbatch and "submitit" in sbatch


EXPERIMENTS = {
    # name: (data set, generator width, iterations, batch, lr, sketch probability)
    "celebahq_256": ("celebahq", 24, 200_000, 16, 1e-4, 0.5),
    "places2_256": ("places2", 24, 1_000_000, 16, 1e-4, 0.5),
    "paris_256": ("paris", 24, 100_000, 16, 1e-4, 0.5),
    "sketch_guided": ("celebahq", 24, 200_000, 16, 1e-4, 0.9),
}


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_experiment_config_holds_its_schedule(name, tmp_path):
    data, width, iterations, batch, lr, sketch_p = EXPERIMENTS[name]
    cfg = train_config([f"experiment={name}"], tmp_path)
    OmegaConf.resolve(cfg)
    assert cfg.dataset.name == data and cfg.dataset.image_size == 256
    assert cfg.model.generator.width == width and cfg.model.discriminator.width == 64
    assert cfg.trainer.max_steps == 2 * iterations  # two optimizer steps per iteration
    assert cfg.dataset.batch_size == batch
    assert cfg.model.optimizer_g.lr == cfg.model.optimizer_d.lr == lr
    assert cfg.sketch._target_ == "mtmsa.data.sketch.EdgeSketches" and cfg.sketch.p == sketch_p
    assert cfg.logger.wandb.group == f"{data}-mtmsa"
    assert 0 < cfg.trainer.val_check_interval < iterations
