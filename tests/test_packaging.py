"""The package installs anywhere: a wheel built from the checkout, installed into a fresh virtual environment
outside it, carries its configs and runs its console scripts from any folder.

The environment reuses the dependencies installed for this interpreter (a ``.pth`` file lists their
folders as plain paths, so their own ``.pth`` files, e.g. an editable install of this checkout, are not
read); nothing is downloaded: the wheel is built without isolation and installed with ``--no-index``.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mtmsa.conf import CONFIG_DIR
from tests.helpers.runs import TINY

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("mtmsa-train", "mtmsa-evaluate", "mtmsa-inpaint", "mtmsa-preview", "mtmsa-app", "mtmsa-export")


def run(command: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """``command`` in ``cwd`` with an environment that does not point into the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MTMSA_ROOT", "MTMSA_DATA")}
    env.update(MPLBACKEND="Agg", WANDB_MODE="offline", PYTHONUNBUFFERED="1")
    return subprocess.run(
        [str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A folder with the wheel and the sdist that ``python -m build`` makes of a copy of the checkout."""
    root = tmp_path_factory.mktemp("build")
    source = root / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(REPO / "mtmsa", source / "mtmsa", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    result = run([sys.executable, "-m", "build", "--no-isolation", "--outdir", root / "dist", source], root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root / "dist"


@pytest.fixture(scope="module")
def venv(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the checkout with the wheel installed; returns its bin folder."""
    venv = tmp_path_factory.mktemp("venv")
    assert run([sys.executable, "-m", "venv", "--without-pip", venv], venv).returncode == 0
    (site_packages,) = venv.glob("lib/python*/site-packages")
    (site_packages / "installed_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (wheel,) = dist.glob("mtmsa-*.whl")
    install = [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "--no-deps"]
    result = run([*install, "--no-index", "--no-compile", wheel], venv)
    assert result.returncode == 0, result.stderr[-3000:]
    return venv / "bin"


def test_wheel_and_sdist_carry_the_configs_license_and_console_scripts(dist):
    (wheel,) = dist.glob("mtmsa-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read("mtmsa-0.1.0.dist-info/entry_points.txt").decode()
        metadata = archive.read("mtmsa-0.1.0.dist-info/METADATA").decode()
    configs = {f"mtmsa/conf/{p.relative_to(CONFIG_DIR).as_posix()}" for p in CONFIG_DIR.rglob("*.yaml")}
    assert len(configs) > 40 and configs <= names
    assert {"mtmsa/conf/__init__.py", "mtmsa/py.typed", "mtmsa-0.1.0.dist-info/licenses/LICENSE"} <= names
    assert not any(name.startswith(("tests/", "experiments/")) for name in names)
    for script in SCRIPTS:
        assert f"{script} = mtmsa." in entry_points
    assert "License-Expression: MIT" in metadata
    (sdist,) = dist.glob("mtmsa-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = set(archive.getnames())
    assert {
        "mtmsa-0.1.0/LICENSE",
        "mtmsa-0.1.0/mtmsa/conf/train.yaml",
        "mtmsa-0.1.0/pyproject.toml",
    } <= members


def test_installed_scripts_run_from_any_folder_with_the_packaged_and_the_users_configs(venv, tmp_path):
    where = run([venv / "python", "-c", "import mtmsa; print(mtmsa.__file__)"], tmp_path)
    assert where.stdout.startswith(str(venv.parent)), where.stdout + where.stderr  # the wheel's copy
    job = run([venv / "mtmsa-train", "--cfg", "job"], tmp_path)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "_target_: mtmsa.training.module.InpaintingModule" in job.stdout and "name: sample" in job.stdout
    usage = run([venv / "mtmsa-inpaint", "--help"], tmp_path)
    assert (
        usage.returncode == 0
        and usage.stdout.startswith("usage: mtmsa-inpaint")
        and "--checkpoint" in usage.stdout
    )
    mine = tmp_path / "my_configs" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text("# @package _global_\ntags: [mine]\ntrainer:\n  max_steps: 7\n")
    searched = run(
        [venv / "mtmsa-train", f"hydra.searchpath=[file://{mine.parent}]", "experiment=mine", "--cfg", "job"],
        tmp_path,
    )
    assert searched.returncode == 0, searched.stderr[-3000:]
    assert "max_steps: 7" in searched.stdout and "- mine" in searched.stdout


def test_installed_package_trains_two_steps_and_inpaints_with_the_result(venv, tmp_path, sample_data_dir):
    run_dir = tmp_path / "run"
    overrides = [
        *TINY,
        "trainer.max_steps=2",
        f"paths.data_dir={sample_data_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    trained = run([venv / "mtmsa-train", *overrides], tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and list((run_dir / "previews").glob("inpainting_step*.png"))
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    hole = np.zeros((32, 32), np.uint8)
    hole[8:20, 8:20] = 255
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(hole).save(tmp_path / "hole.png")
    command = ["--checkpoint", checkpoint, "--image", "in.png", "--mask", "hole.png", "--out", "out.png"]
    inpainted = run([venv / "mtmsa-inpaint", *command], tmp_path)
    assert inpainted.returncode == 0, inpainted.stderr[-3000:]
    filled = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(filled[hole == 0], image[hole == 0]) and (filled[hole > 0] != image[hole > 0]).any()
