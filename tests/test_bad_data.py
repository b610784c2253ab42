"""Training goes through a dataset folder with broken files and odd pixel formats mixed in.

The folder holds scikit-image photos and generated images in every format the readers convert (grey,
RGBA, 16-bit, palette, bilevel, images smaller than the crop down to 1x1, a 3x200 strip) next to files
no reader can use (0 bytes, text, random bytes, a broken TIFF, a PNG whose header claims 20000x20000,
a JPEG cut inside its header; a folder named like an image is not listed at all) and files whose header parses but whose pixels do not decode (truncated PNG and
JPEG, a PNG whose compressed data stops early). The policy under test (mtmsa/data/datasets.py): header
failures are dropped up front with one warning naming them; decode failures are replaced by the next
decodable file with a warning naming each; only a folder with nothing readable is an error.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mtmsa.data.datasets import (
    DatasetNotFoundError,
    ImageFolderDataset,
    UnreadableImageWarning,
    build_transform,
)
from mtmsa.data.io import ImageReadError
from mtmsa.train import train
from tests.helpers.bad_files import DECODE_FAILURES, HEADER_FAILURES, bad_files, good_files
from tests.helpers.runs import TINY, train_config


@pytest.fixture
def messy_dataset(tmp_path) -> Path:
    """root/train and root/val: good images of every format with every kind of bad file mixed in."""
    root = tmp_path / "messy"
    for split, seed in (("train", 0), ("val", 1)):
        good_files(root / split, seed)
        bad_files(root / split, seed)
    return root


def _warned_names(records) -> str:
    return " ".join(str(r.message) for r in records if issubclass(r.category, UnreadableImageWarning))


def test_dataset_serves_every_item_and_names_every_bad_file(messy_dataset):
    folder = messy_dataset / "train"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = ImageFolderDataset(folder, transform=build_transform(32, train=True, resize=40))
        header_warning = _warned_names(caught)
        assert re.search(rf"skipped {len(HEADER_FAILURES)} unreadable image file\(s\)", header_warning)
        assert f"and {len(HEADER_FAILURES) - 5} more" in header_warning  # five named, the rest counted
        assert sorted(p.name for p, _ in dataset.rejected_files) == sorted(HEADER_FAILURES)
        assert len(dataset) == 12 + len(DECODE_FAILURES)
        caught.clear()
        items = [dataset[i] for i in range(len(dataset))]
        substitution_warnings = _warned_names(caught)
    for name in DECODE_FAILURES:
        assert (
            f"{name}: " in substitution_warnings and "using the next readable file" in substitution_warnings
        )
    assert dataset.num_substitutions == len(DECODE_FAILURES)
    assert sorted(p.name for p, _ in dataset.substituted_files) == sorted(DECODE_FAILURES)
    for item in items:
        assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
        assert torch.isfinite(item["image"]).all() and item["image"].abs().max() <= 1

    plain = ImageFolderDataset(folder, transform=build_transform(32, train=False, resize=40))
    names = [plain.path(i).name for i in range(len(plain))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in DECODE_FAILURES:  # replaced by the next decodable file, the same every time
            index = names.index(name)
            following = [(index + k) % len(names) for k in range(1, len(names))]  # wrapping around
            replacement = next(i for i in following if names[i] not in DECODE_FAILURES)
            assert torch.equal(plain[index]["image"], plain[replacement]["image"])
            assert plain[index]["index"] == index


def test_batches_stay_full_in_dataloader_workers(messy_dataset):
    dataset = ImageFolderDataset(
        messy_dataset / "train", transform=build_transform(32, train=True, resize=40)
    )
    loader = DataLoader(dataset, batch_size=5, num_workers=2, drop_last=True)
    batches = list(loader)
    assert len(batches) == len(dataset) // 5
    for batch in batches:
        assert batch["image"].shape == (5, 3, 32, 32) and torch.isfinite(batch["image"]).all()


def test_training_goes_through_the_messy_folder(messy_dataset, tmp_path):
    overrides = ["dataset=folder", f"dataset.root={messy_dataset}", "dataset.num_workers=0",
                 "trainer.max_steps=4", "trainer.val_check_interval=2"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = train(train_config(TINY + overrides, tmp_path / "run"))
    assert metrics and all(np.isfinite(value) for value in metrics.values())
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    warned = _warned_names(caught)
    assert warned.count(f"skipped {len(HEADER_FAILURES)} unreadable image file(s)") == 2  # train and val
    for name in DECODE_FAILURES:  # validation reads every val file
        assert f"val/{name}: " in warned


def test_all_files_unreadable_is_one_clear_error(tmp_path):
    header_only = tmp_path / "header"
    header_only.mkdir()
    bad_files(header_only, seed=2)
    for name in DECODE_FAILURES:
        (header_only / name).unlink()
    with (
        pytest.warns(UnreadableImageWarning),
        pytest.raises(DatasetNotFoundError, match="holds no readable image"),
    ):
        ImageFolderDataset(header_only)

    undecodable = tmp_path / "undecodable"
    undecodable.mkdir()
    bad_files(undecodable, seed=3)
    for name in HEADER_FAILURES:
        (undecodable / name).unlink()
    dataset = ImageFolderDataset(undecodable)
    with (
        pytest.warns(UnreadableImageWarning),
        pytest.raises(ImageReadError, match="none of the 3 image files"),
    ):
        dataset[1]


def test_training_on_a_folder_of_unreadable_files_fails_before_the_first_step(tmp_path):
    root = tmp_path / "broken"
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        bad_files(root / split, seed=4)
        for name in DECODE_FAILURES:
            (root / split / name).unlink()
    overrides = ["dataset=folder", f"dataset.root={root}", "dataset.num_workers=0", "trainer.max_steps=2"]
    with (
        pytest.warns(UnreadableImageWarning),
        pytest.raises(DatasetNotFoundError, match="train: holds no readable"),
    ):
        train(train_config(TINY + overrides, tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_pixel_limit_applies_to_datasets_from_the_environment(messy_dataset, monkeypatch):
    monkeypatch.setenv("MTMSA_MAX_PIXELS", "2000")  # 56x48 astronaut and 64x44 coffee are above it
    with pytest.warns(UnreadableImageWarning, match="more than the limit of 2,000"):
        dataset = ImageFolderDataset(messy_dataset / "val")
    rejected = {p.name for p, _ in dataset.rejected_files}
    assert {"astronaut.png", "coffee.jpg"} <= rejected  # 2,688 and 2,816 pixels
    assert "grey.png" in {p.name for p in map(dataset.path, range(len(dataset)))}  # 50x40: at the limit
    monkeypatch.setenv("MTMSA_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="MTMSA_MAX_PIXELS='lots' is not a positive whole number"):
        ImageFolderDataset(messy_dataset / "val")
