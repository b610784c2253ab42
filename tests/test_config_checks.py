"""Configuration that refuses mistakes before any work (issue 15).

Every option of every config group is declared once with its type and range (mtmsa/conf/schema). The table
(tests/helpers/config_cases.py) tries each with a value of the wrong type, values out of range and valid
edge values; the hand-written cases below add the rules across options and the file system, and the mistakes
of the issue. In this process every case goes through the same check the commands run; a representative
subset runs as real commands (each: exit code 2, one ``error:`` line naming the option, no traceback, no run
folder, in a few seconds); the whole table as commands is ``slow``.
"""

from __future__ import annotations

import copy
import functools
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from mtmsa.conf.schema import ConfigError, config_problems
from mtmsa.conf.schema.kinds import Boolean
from mtmsa.conf.schema.run import INPAINT_FLAGS
from mtmsa.inpaint import build_parser
from mtmsa.utils.config import compose_config
from mtmsa.utils.entry import check_command_line
from tests.helpers.config_cases import Case, cases, options

TABLE = cases()
BAD = [case for case in TABLE if case.bad]
EDGES = [case for case in TABLE if not case.bad]
FEW_SECONDS = 8.0
"""A refused command must end within this (about 1 s on a quiet 2-core machine: torch is never imported)."""

PARSER = OverridesParser.create()


@functools.cache
def host_config(tool: str, host: tuple[str, ...]) -> DictConfig:
    return compose_config(tool, list(host), "not-written")


def problems_of(case: Case) -> list[str]:
    """The problems the check finds in the case's command line (composed once per host, then overridden)."""
    *host, last = case.argv
    cfg = copy.deepcopy(host_config(case.option.tool, tuple(host)))
    override = PARSER.parse_override(last)
    OmegaConf.update(cfg, override.key_or_group, override.value(), force_add=True)
    return config_problems(cfg, case.option.tool, files=False)


def test_the_table_holds_every_option_with_all_three_kinds_of_value():
    found = options()
    assert len(found) >= 170, len(found)
    for option in found:
        whats = {case.what for case in TABLE if case.option == option}
        assert "wrong type" in whats and "edge" in whats, option.path
        if not isinstance(option.kind, Boolean) and not getattr(option.kind, "empty", False):
            assert "out of range" in whats, option.path  # a boolean or any text at all has no range
    assert len(BAD) >= 350 and len(EDGES) >= 250, (len(BAD), len(EDGES))


@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_a_bad_value_is_refused_naming_the_option(case):
    problems = problems_of(case)
    assert problems, f"{case.argv} was accepted"
    assert problems[0].startswith(f"{case.option.path}="), problems[0]


@pytest.mark.parametrize("case", EDGES, ids=lambda case: case.id)
def test_a_valid_edge_value_is_accepted(case):
    assert problems_of(case) == []


@pytest.mark.parametrize(
    "tool,host",
    [(tool, (f"{group}={option}", *(("dataset.root=/data",) if option == "folder" else ()))) for tool, group, option in [
        *(("train", g, o) for g in ("dataset", "model", "model/attention", "mask", "sketch", "trainer",
                                     "logger", "callbacks", "experiment", "debug", "hparams_search")
          for o in sorted(p.stem for p in (Path(__file__).parents[1] / "mtmsa/conf" / g).glob("*.yaml"))),
    ]],
)  # fmt: skip
def test_every_shipped_config_passes_its_own_check(tool, host):
    """The schemas declare every key the YAML files use (a key missing from a schema fails here)."""
    assert config_problems(host_config(tool, host), tool, files=False) == []


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Things on disk the file rules look at."""
    folder = tmp_path_factory.mktemp("config_files")
    (folder / "a_file.txt").write_text("not a folder")
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "text.ckpt").write_text("weights: trust me")
    with zipfile.ZipFile(folder / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "a zip, not a checkpoint")
    with zipfile.ZipFile(folder / "good.ckpt", "w") as archive:  # what torch.save writes, in outline
        archive.writestr("good/data.pkl", b"\x80\x02}q\x00.")
    for split in ("train", "val"):
        (folder / "images" / split).mkdir(parents=True)
    (folder / "no_val" / "train").mkdir(parents=True)
    return {path.name.replace(".", "_").removesuffix("_txt"): path for path in folder.iterdir()} | {
        "folder": folder
    }


# (tool, command line, what the one error line says); {name} are the files above.
CASES = {
    # The examples.
    "a metric no one logs": ("train", ["optimized_metric=val/psnr_hol"], "optimized_metric=val/psnr_hol is not one of val/psnr"),
    "reversed gradients": ("train", ["model.gradient_clip_norm=-1"], "model.gradient_clip_norm=-1 is not a number > 0 or null"),
    "EMA decay above 1": ("train", ["model.ema_decay=1.5"], "model.ema_decay=1.5 is not a number in (0, 1)"),
    "negative adversarial weight": ("train", ["model.loss.adversarial_weight=-1"], "model.loss.adversarial_weight=-1 is not a number >= 0"),
    "8 pixel images": ("train", ["dataset.image_size=8"], "dataset.image_size=8 is not a multiple of 4 >= 32"),
    "62 pixel images": ("train", ["dataset.image_size=62"], "dataset.image_size=62 is not a multiple of 4"),
    "no steps": ("train", ["trainer.max_steps=0"], "trainer.max_steps=0 is not an integer >= 1"),
    "steps abc": ("train", ["trainer.max_steps=abc"], "trainer.max_steps=abc is not an integer"),
    "evaluate limit -1": ("evaluate", ["baseline=mean", "limit=-1"], "limit=-1 is not an integer >= 1"),
    "evaluate samples -1": ("evaluate", ["baseline=mean", "samples=-1"], "samples=-1 is not an integer >= 0"),
    "batch size abc": ("train", ["dataset.batch_size=abc"], "dataset.batch_size=abc is not an integer >= 1"),
    "batch size 0": ("train", ["dataset.batch_size=0"], "dataset.batch_size=0 is not an integer >= 1"),
    "batch size -4": ("train", ["dataset.batch_size=-4"], "dataset.batch_size=-4 is not an integer >= 1"),
    "workers -1": ("train", ["dataset.num_workers=-1"], "dataset.num_workers=-1 is not an integer >= 0"),
    "seed abc": ("train", ["seed=abc"], "seed=abc is not an integer"),
    "learning rate abc": ("train", ["model.optimizer_g.lr=abc"], "model.optimizer_g.lr=abc is not a number > 0"),
    "devices abc": ("train", ["trainer.devices=abc"], "trainer.devices=abc is not an integer >= 1"),
    "validation every 0": ("train", ["trainer.val_check_interval=0"], "trainer.val_check_interval=0 is not"),
    "previews every 0": ("train", ["callbacks.previews.every_n_steps=0"], "callbacks.previews.every_n_steps=0 is not an integer >= 1"),
    "folder data set without root": ("train", ["dataset=folder"], "dataset.root is not set; give dataset.root=<a folder of images>"),
    "checkpoint that is text": ("train", ["ckpt_path={text_ckpt}"], "is not a torch checkpoint"),
    "data folder that is a file": ("train", ["paths.data_dir={a_file}"], "is a file, not a folder"),
    "evaluate batch size 0": ("evaluate", ["baseline=mean", "batch_size=0"], "batch_size=0 is not an integer >= 1"),
    "evaluate mask convention foo": ("evaluate", ["baseline=mean", "mask_convention=foo"], "mask_convention=foo is not one of hole-white, hole-black"),
    "misspelt key": ("train", ["dataset.batchsize=4"], "dataset.batchsize is not an option of dataset (did you mean dataset.batch_size?)"),
    "misspelt key added": ("train", ["+dataset.batchsize=4"], "did you mean dataset.batch_size?"),
    "misspelt attention key": ("train", ["model.attention.head=2"], "did you mean model.attention.heads?"),
    "misspelt trainer key": ("train", ["trainer.max_step=2"], "did you mean trainer.max_steps?"),
    # Rules across options.
    "heads that do not divide the channels": ("train", ["model.attention.heads=5"], "model.attention.heads=5 does not divide the attention's 48 channels"),
    "initial temperature outside the range": ("train", ["model.attention.temperature.init=2.0"], "model.attention.temperature.init=2.0 is not strictly inside"),
    "temperature range reversed": ("train", ["model.attention.temperature.range=[1.0,0.01]"], "model.attention.temperature.range=[1.0, 0.01] is not a range"),
    "contextual attention at 36 px": ("train", ["model/attention=contextual", "dataset.image_size=36", "dataset.resize=40"], "dataset.image_size=36 is not a multiple of 8"),
    "resize below the crop": ("train", ["dataset.resize=48"], "dataset.resize=48 is smaller than dataset.image_size=64"),
    "training that never ends": ("train", ["trainer.max_steps=-1", "trainer.max_epochs=-1"], "never ends"),
    "fraction of an epoch across epochs": ("train", ["trainer.val_check_interval=0.5"], "trainer.val_check_interval=0.5 is a fraction of an epoch"),
    "fp16 on the CPU": ("train", ["trainer=cpu", "trainer.precision=16-mixed"], "not supported on the CPU"),
    "best checkpoint that keeps the worst": ("train", ["optimized_metric=val/l1_hole", "callbacks.model_checkpoint.mode=max"], "would keep the worst val/l1_hole"),
    "mixed masks with a probability too few": ("train", ["mask=mixed", "~mask.probabilities.lama_thin"], "give one probability per generator"),
    "mixed masks with negative weight": ("train", ["mask=mixed", "mask.probabilities.deepfill=-1"], "mask.probabilities={deepfill: -1"),
    "free-form masks of nothing": ("train", ["mask=box", "mask.boxes=null"], "mask.strokes and mask.boxes are both null"),
    "gradient clipping by Lightning": ("train", ["+trainer.gradient_clip_val=1.0"], "the GAN step clips by hand"),
    "sweep with one bad job": ("train", ["-m", "model.attention.heads=2,5"], "job 1 of the sweep (model.attention.heads=5): model.attention.heads=5"),
    # The file system.
    "data set root missing": ("train", ["dataset=celebahq", "paths.data_dir={folder}"], "/celebahq does not exist; put the images there"),
    "data set root a file": ("train", ["dataset=folder", "dataset.root={a_file}"], "is a file, not a folder of images"),
    "data set without val": ("train", ["dataset=folder", "dataset.root={no_val}"], "dataset.val_dir="),
    "checkpoint missing": ("train", ["ckpt_path={folder}/nothing.ckpt"], "nothing.ckpt does not exist"),
    "checkpoint a folder": ("evaluate", ["ckpt_path={folder}"], "is a folder that holds no model.safetensors"),
    "checkpoint empty": ("evaluate", ["ckpt_path={empty_ckpt}"], "the file is empty"),
    "checkpoint a zip without a pickle": ("evaluate", ["ckpt_path={other_zip}"], "no data.pkl inside"),
    "evaluate with neither checkpoint nor baseline": ("evaluate", [], "ckpt_path is not set"),
    "evaluate mask folder missing": ("evaluate", ["baseline=mean", "mask_dir={folder}/none"], "mask_dir="),
    "log folder under a file": ("train", ["paths.log_dir={a_file}/logs"], "cannot be made: "),
    # What Hydra refuses while composing, in one line.
    "unknown option of a group": ("train", ["dataset=imagenet"], "dataset=imagenet is not a config of the dataset group; use one of celebahq, folder"),
    "override that does not parse": ("train", ["dataset.batch_size=[1,"], "dataset.batch_size=[1,"),
    "config folder missing": ("train", ["--config-dir", "{folder}/none"], "--config-dir"),
}  # fmt: skip

VALID = {
    "the quickstart": ("train", []),
    "a checkpoint of the right kind": ("train", ["ckpt_path={good_ckpt}"]),
    "resume from last": ("train", ["ckpt_path=last"]),
    "a folder data set": ("train", ["dataset=folder", "dataset.root={images}"]),
    "lower-is-better metric (the best checkpoint follows)": ("train", ["optimized_metric=val/l1_hole"]),
    "a grid sweep": ("train", ["-m", "model.attention.heads=1,2,4"]),
    "the Optuna sweep": ("train", ["hparams_search=heads_temperature"]),
    "a key of your own": ("train", ["+my_note=hello", "+trainer.benchmark=true"]),
    "evaluate a baseline": ("evaluate", ["baseline=telea", "device=cpu", "limit=1"]),
    "evaluate a checkpoint": ("evaluate", ["ckpt_path={good_ckpt}", "mask_dir={images}"]),
    "preview": ("preview", ["mask=lama_thick", "sketch=none"]),
}  # fmt: skip


def filled(argv: list[str], files: dict[str, Path]) -> list[str]:
    return [arg.format(**{name: str(path) for name, path in files.items()}) for arg in argv]


@pytest.mark.parametrize("case", CASES)
def test_rules_refuse_with_one_line_naming_the_option(case, files, tmp_path, monkeypatch):
    monkeypatch.setenv("MTMSA_ROOT", str(tmp_path))
    tool, argv, expected = CASES[case]
    with pytest.raises(ConfigError) as refused:
        check_command_line(tool, filled(argv, files))
    assert expected in str(refused.value) and "\n" not in str(refused.value), str(refused.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", VALID)
def test_valid_command_lines_pass(case, files, tmp_path, monkeypatch, sample_data_dir):
    monkeypatch.setenv("MTMSA_ROOT", str(tmp_path))
    monkeypatch.setenv("MTMSA_DATA", str(sample_data_dir))
    tool, argv = VALID[case]
    assert check_command_line(tool, filled(argv, files)) is None
    assert check_command_line(tool, [*filled(argv, files), "dry_run=true"]).startswith("dry run: ")
    assert list(tmp_path.iterdir()) == []


MODULES = {"train": "mtmsa.train", "evaluate": "mtmsa.evaluate", "preview": "mtmsa.data.preview"}


def run_command(tool: str, argv: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    environment = {**os.environ, "MTMSA_ROOT": str(cwd), "PYTHONUNBUFFERED": "1"}
    environment.pop("MTMSA_DATA", None)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", MODULES[tool], *argv], cwd=cwd, env=environment, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    return result, time.perf_counter() - started


def assert_refused(result: subprocess.CompletedProcess, seconds: float, expected: str, cwd: Path) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not (cwd / "logs").exists(), "a refused run left a folder"
    assert seconds < FEW_SECONDS, f"took {seconds:.1f} s"


def representative(table: list[Case]) -> list[Case]:
    """The first bad value of each schema (group or sub-group), so every kind of node is tried for real."""
    seen, chosen = set(), []
    for case in table:
        if case.bad and id(case.option.schema) not in seen:
            seen.add(id(case.option.schema))
            chosen.append(case)
    return chosen


COMMAND_CASES = [case for case in CASES if case not in ("config folder missing",)][::3]


@pytest.mark.parametrize("case", representative(BAD), ids=lambda case: case.id)
def test_a_bad_value_on_the_command_line(case, tmp_path):
    result, seconds = run_command(case.option.tool, case.argv, tmp_path)
    assert_refused(result, seconds, f"error: {case.option.path}=", tmp_path)


@pytest.mark.parametrize("case", COMMAND_CASES)
def test_a_rule_on_the_command_line(case, files, tmp_path):
    tool, argv, expected = CASES[case]
    result, seconds = run_command(tool, filled(argv, files), tmp_path)
    assert_refused(result, seconds, expected, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD, ids=lambda case: case.id)
def test_every_bad_value_on_the_command_line(case, tmp_path):
    result, seconds = run_command(case.option.tool, case.argv, tmp_path)
    assert_refused(result, seconds, f"error: {case.option.path}=", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("case", [c for c in CASES if c not in COMMAND_CASES])
def test_every_rule_on_the_command_line(case, files, tmp_path):
    tool, argv, expected = CASES[case]
    result, seconds = run_command(tool, filled(argv, files), tmp_path)
    assert_refused(result, seconds, expected, tmp_path)


def test_the_commands_load_neither_torch_nor_lightning_before_the_check():
    """What makes a refused command fast: the check runs before the heavy imports (see mtmsa/utils/entry.py)."""
    code = "import sys, mtmsa.train, mtmsa.evaluate, mtmsa.inpaint, mtmsa.data.preview; print(sorted(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for heavy in ("torch", "pytorch_lightning", "cv2", "kornia", "numpy"):
        assert f"'{heavy}'" not in loaded, heavy


def test_help_and_cfg_job_still_go_to_hydra(tmp_path):
    result, _ = run_command("train", ["--help"], tmp_path)
    assert result.returncode == 0 and "== Configuration groups ==" in result.stdout
    result, _ = run_command("train", ["dataset.batch_size=abc", "--cfg", "job"], tmp_path)
    assert (
        result.returncode == 0 and "batch_size: abc" in result.stdout
    )  # shows what was asked, checks nothing
    assert not (tmp_path / "logs").exists()


def test_a_run_that_fails_before_it_starts_leaves_no_folder(tmp_path):
    """The options pass, but the data set folder holds no image: training never starts, and the folder Hydra
    made for it (with its record and log) is removed; the error is printed once."""
    for split in ("train", "val"):
        (tmp_path / "no_images" / split).mkdir(parents=True)
    result, _ = run_command(
        "train", ["dataset=folder", f"dataset.root={tmp_path / 'no_images'}", "model=small", "dataset.num_workers=0"],
        tmp_path,
    )  # fmt: skip
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and lines[-1].startswith("error: ") and "holds no image files" in lines[-1]
    assert (
        sum(line.startswith(("error: ", "[")) and "holds no image" in line for line in lines) == 1
    )  # not twice
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()


def test_a_folder_that_existed_is_never_removed(tmp_path):
    """A run pointed at a folder of yours (hydra.run.dir) that fails keeps the folder, your file and its log."""
    run = tmp_path / "my_run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    result, _ = run_command("evaluate", ["baseline=mean", "device=cuda:99", f"hydra.run.dir={run}"], tmp_path)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        "error: device=cuda:99"
    )
    assert (run / "notes.txt").read_text() == "mine"
    assert "device=cuda:99" in (run / "evaluate.log").read_text()  # the error is in the run's log


def test_unused_means_nothing_but_hydra_s_record_and_logs(tmp_path):
    from mtmsa.utils.run_folder import unused

    for name in (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "train.log"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "csv" / "version_0").mkdir(parents=True)
    (tmp_path / "csv" / "version_0" / "hparams.yaml").write_text("x")
    assert unused(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert unused(tmp_path)  # an empty folder is nothing
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"x")
    assert not unused(tmp_path)


INPAINT_CASES = [
    (flag, what, value)
    for flag, kind in INPAINT_FLAGS.items()
    for what, values in (("wrong type", kind.wrong_types()[:1]), ("out of range", kind.out_of_range()[:2]),
                         ("edge", kind.edges()))
    for value in values
    if value != "null"
]  # fmt: skip


@pytest.mark.parametrize("flag,what,value", INPAINT_CASES, ids=lambda x: str(x))
def test_inpaint_flags(flag, what, value, capsys):
    """mtmsa.inpaint's value flags are declared with the same kinds (mtmsa.conf.schema.run.INPAINT_FLAGS)."""
    required = ["--checkpoint", "c.ckpt", "--image", "i.png", "--mask", "m.png", "--out", "o.png"]
    value = value.strip("'")
    if what == "edge":
        assert getattr(
            build_parser().parse_args([*required, flag, value]), flag.lstrip("-").replace("-", "_")
        )
        return
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*required, flag, value])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith(f"error: {flag} {value} is not "), lines[0]


def test_an_inpaint_flag_on_the_command_line(tmp_path):
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.inpaint", "--checkpoint", "c.ckpt", "--image", "i.png", "--mask", "m.png",
         "--out", "o.png", "--device", "foo"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_refused(
        result, time.perf_counter() - started, "error: --device foo is not auto, cpu, cuda", tmp_path
    )


def test_training_resumes_only_from_a_training_checkpoint(tmp_path, checkpoint):
    """ckpt_path passes the cheap check when it is a torch file; before Lightning unpickles it in full (which
    would run code), train reads it weights-only and wants the weights and the optimizers' state."""
    import torch

    from mtmsa.inference.checkpoints import CheckpointError
    from mtmsa.training.fault_tolerance import check_training_checkpoint

    check_training_checkpoint(checkpoint)
    torch.save(torch.zeros(3), tmp_path / "tensor.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "weights.ckpt")
    with pytest.raises(CheckpointError, match="holds a Tensor, not a checkpoint dict"):
        check_training_checkpoint(tmp_path / "tensor.ckpt")
    with pytest.raises(CheckpointError, match="holds no optimizer_states, so training cannot resume"):
        check_training_checkpoint(tmp_path / "weights.ckpt")


def test_the_declared_choices_are_the_code_s():
    """The schemas name the choices without importing torch; these are the values the code accepts."""
    from mtmsa.conf.schema import model, run
    from mtmsa.evaluation import baselines, lpips, metrics
    from mtmsa.models import attention, generator

    assert model.FEATURE_STRIDE == generator.FEATURE_STRIDE == generator.InpaintGenerator.size_multiple
    assert model.INITIAL_FILLS == generator.INITIAL_FILLS
    assert (model.TEMPERATURE_MODES, model.MERGES, model.MATCHINGS) == (
        attention.TEMPERATURE_MODES, attention.MERGES, attention.MATCHINGS
    )  # fmt: skip
    assert set(model.BASELINES) == set(baselines.BASELINES)
    assert model.METRICS == metrics.METRIC_NAMES
    assert set(run.LPIPS_NETS) == set(lpips.BACKBONE_FILES)
