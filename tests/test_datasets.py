"""Image reading (mtmsa.data.io) and image-folder datasets (mtmsa.data.datasets)."""

from __future__ import annotations

import json
import pickle
import struct
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader

from mtmsa.data import io as image_io
from mtmsa.data.datasets import (
    DatasetNotFoundError,
    ImageFolderDataset,
    UnreadableImageWarning,
    build_transform,
    list_image_files,
    read_file_list,
)
from mtmsa.data.io import ImageReadError, read_gray, read_image_size, read_rgb
from mtmsa.data.sample import (
    HOLDOUT_PHOTOS,
    SAMPLE_MANIFEST,
    SAMPLE_PHOTOS,
    SCENE_PHOTOS,
    SCENES_LIST,
    ensure_sample_dataset,
)


def _gradient(height: int = 24, width: int = 32) -> np.ndarray:
    """RGB uint8 (H, W, 3) with distinct values per pixel."""
    y, x = np.mgrid[:height, :width]
    return np.stack([x * 7 % 256, y * 11 % 256, (x + y) * 5 % 256], axis=2).astype(np.uint8)


def _save(path: Path, array: np.ndarray, mode: str | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path, **options)
    return path


def _truncate(path: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A valid 1x1 PNG whose IHDR chunk (with a correct CRC) announces width x height."""
    _save(path, np.zeros((1, 1, 3), np.uint8))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


# --------------------------------------------------------------------------------------------- io


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp"])
def test_read_rgb_lossless_formats_round_trip(tmp_path, suffix):
    image = _gradient()
    options = {"lossless": True} if suffix == ".webp" else {}
    result = read_rgb(_save(tmp_path / f"image{suffix}", image, **options))
    assert result.dtype == np.uint8 and result.shape == (24, 32, 3)
    np.testing.assert_array_equal(result, image)


def test_read_rgb_jpeg_close_to_original(tmp_path):
    image = _gradient()
    result = read_rgb(_save(tmp_path / "image.JPEG", image, quality=95))
    assert result.shape == (24, 32, 3)
    assert np.abs(result.astype(int) - image).mean() < 4


def _format_cases(tmp_path: Path) -> dict[str, tuple[Path, np.ndarray]]:
    """Files in awkward pixel formats, with the RGB uint8 image each must read as."""
    gray = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    alpha = np.zeros((24, 32), np.uint8)
    alpha[:, 8:16], alpha[:, 16:] = 128, 255
    colour = _gradient()
    on_white = (colour * (alpha[..., None] / 255.0) + 255 * (1 - alpha[..., None] / 255.0) + 0.5).astype(
        np.uint8
    )
    gray_on_white = (gray * (alpha / 255.0) + 255 * (1 - alpha / 255.0) + 0.5).astype(np.uint8)
    palette = Image.new("P", (32, 24))
    palette.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30] + [0] * 759)
    indices = np.arange(24 * 32).reshape(24, 32) % 3
    palette.putdata(indices.reshape(-1).tolist())
    palette.save(tmp_path / "palette.png")
    palette.save(tmp_path / "palette_transparent.png", transparency=0)
    palette_colours = np.array([[255, 0, 0], [0, 255, 0], [10, 20, 30]], np.uint8)[indices]
    palette_on_white = np.where((indices == 0)[..., None], 255, palette_colours).astype(np.uint8)
    gray16 = np.full((24, 32), 65535, np.uint16)
    gray16[:, :16] = 257 * 100
    rgb16 = np.zeros((24, 32, 3), np.uint16)
    rgb16[..., 0], rgb16[..., 1], rgb16[..., 2] = 65535, 257 * 100, 0
    expected16 = np.where(np.arange(32)[None, :, None] < 16, 100, 255).repeat(24, 0).repeat(3, 2)
    cv2.imwrite(str(tmp_path / "gray16.png"), gray16)
    cv2.imwrite(str(tmp_path / "rgb16.png"), rgb16[..., ::-1])
    cv2.imwrite(str(tmp_path / "rgb16.tif"), rgb16[..., ::-1])
    return {
        "gray": (_save(tmp_path / "gray.png", gray), np.repeat(gray[..., None], 3, 2)),
        "bilevel": (
            _save(tmp_path / "bilevel.png", np.arange(32)[None].repeat(24, 0) % 2 == 1),
            np.repeat(np.where(np.arange(32)[None, :, None] % 2 == 1, 255, 0).repeat(24, 0), 3, 2),
        ),
        "gray_alpha": (
            _save(tmp_path / "gray_alpha.png", np.stack([gray, alpha], 2), "LA"),
            np.repeat(gray_on_white[..., None], 3, 2),
        ),
        "rgba": (_save(tmp_path / "rgba.png", np.dstack([colour, alpha])), on_white),
        "palette": (tmp_path / "palette.png", palette_colours),
        "palette_transparent": (tmp_path / "palette_transparent.png", palette_on_white),
        "gray16": (tmp_path / "gray16.png", expected16),
        "rgb16_png": (
            tmp_path / "rgb16.png",
            np.broadcast_to(np.array([255, 100, 0], np.uint8), (24, 32, 3)),
        ),
        "rgb16_tif": (
            tmp_path / "rgb16.tif",
            np.broadcast_to(np.array([255, 100, 0], np.uint8), (24, 32, 3)),
        ),
    }


CASES = [
    "gray",
    "bilevel",
    "gray_alpha",
    "rgba",
    "palette",
    "palette_transparent",
    "gray16",
    "rgb16_png",
    "rgb16_tif",
]


@pytest.mark.parametrize("case", CASES)
def test_read_rgb_converts_pixel_formats_to_rgb_uint8(tmp_path, case):
    path, expected = _format_cases(tmp_path)[case]
    result = read_rgb(path)
    assert result.dtype == np.uint8 and result.shape == (24, 32, 3)
    assert result.flags.c_contiguous
    np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("case", CASES)
def test_pillow_fallback_reads_the_same_pixels(tmp_path, case, monkeypatch):
    path, expected = _format_cases(tmp_path)[case]
    monkeypatch.setattr(image_io, "_decode_with_opencv", lambda data: None)
    monkeypatch.setattr(image_io, "_FORMATS_WITHOUT_FALLBACK", ())  # PNG never falls back in real use
    result = read_rgb(path)
    # Pillow reduces 16-bit colour to its high byte (100 * 257 -> 100, 65535 -> 255): at most 1 apart.
    assert np.abs(result.astype(int) - expected).max() <= (1 if "16" in case else 0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_image_viewers(tmp_path, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _save(tmp_path / "oriented.png", _gradient(), exif=exif)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    np.testing.assert_array_equal(read_rgb(path), expected)


def test_exif_orientation_of_jpeg(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees clockwise for display
    path = _save(tmp_path / "photo.jpg", _gradient(24, 32), quality=95, exif=exif)
    result = read_rgb(path)
    assert result.shape == (32, 24, 3)
    with Image.open(path) as image:
        expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.abs(result.astype(int) - expected).mean() < 1


def test_read_gray_reduces_channels(tmp_path):
    gray = np.arange(24 * 32, dtype=np.uint8).reshape(24, 32)
    np.testing.assert_allclose(read_gray(_save(tmp_path / "g.png", gray)), gray / 255.0, atol=1e-6)

    colour = _gradient()
    luminance = (colour @ np.array([0.299, 0.587, 0.114])) / 255.0
    np.testing.assert_allclose(read_gray(_save(tmp_path / "c.png", colour)), luminance, atol=1e-5)
    opaque = np.dstack([colour, np.full((24, 32), 255, np.uint8)])
    np.testing.assert_allclose(read_gray(_save(tmp_path / "o.png", opaque)), luminance, atol=1e-5)

    # Strokes painted black on a transparent layer: the alpha channel is the mask.
    alpha = np.zeros((24, 32), np.uint8)
    alpha[5:10, :] = 255
    painted = np.dstack([np.zeros((24, 32, 3), np.uint8), alpha])
    result = read_gray(_save(tmp_path / "layer.png", painted))
    assert result.dtype == np.float32 and result.shape == (24, 32)
    np.testing.assert_array_equal(result, alpha / 255.0)

    gray16 = np.full((4, 4), 65535, np.uint16)
    gray16[0, 0] = 1
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    result = read_gray(tmp_path / "g16.png")
    assert result[1, 1] == 1.0 and result[0, 0] == pytest.approx(1 / 65535)


def _broken_files(folder: Path) -> dict[str, Path]:
    """Files that no reader can use, by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.jpg").write_text("this is not a picture\n")
    _truncate(_save(folder / "header_cut.png", _gradient()), 0.02)
    return {
        "empty": folder / "empty.png",
        "text": folder / "text.jpg",
        "header_cut": folder / "header_cut.png",
    }


@pytest.mark.parametrize("reader", [read_rgb, read_gray, read_image_size])
def test_readers_raise_image_read_error_naming_the_file(tmp_path, reader):
    files = _broken_files(tmp_path)
    files["missing"] = tmp_path / "missing.png"
    files["folder"] = tmp_path / "folder.png"
    files["folder"].mkdir()
    for path in files.values():
        with pytest.raises(ImageReadError, match=path.name) as caught:
            reader(path)
        assert isinstance(caught.value, ValueError) and caught.value.path == path
    with pytest.raises(ImageReadError, match="empty"):
        reader(files["empty"])


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_pixel_data_passes_the_header_check_but_not_decoding(tmp_path, suffix):
    path = _truncate(
        _save(tmp_path / f"cut{suffix}", np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    )
    assert read_image_size(path) == (64, 64)
    with pytest.raises(ImageReadError, match=f"cut{suffix}.*truncated"):
        read_rgb(path)


def test_truncated_jpeg_is_refused_even_if_opencv_returns_pixels(tmp_path, monkeypatch):
    # OpenCV 4.x returns a grey-filled image for a truncated JPEG: the missing end marker must catch it.
    path = _truncate(_save(tmp_path / "cut.jpg", _gradient(64, 64)))
    monkeypatch.setattr(image_io, "_decode_with_opencv", lambda data: np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(ImageReadError, match="cut.jpg.*truncated"):
        read_rgb(path)
    whole = _save(tmp_path / "whole.jpg", _gradient(64, 64))
    np.testing.assert_array_equal(read_rgb(whole), np.full((64, 64, 3), 128, np.uint8))


def test_image_read_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ImageReadError("/data/x.png", "broken")))
    assert str(error) == "cannot read image /data/x.png: broken" and error.reason == "broken"


def test_decompression_bomb_is_refused_from_the_header(tmp_path):
    bomb = _png_claiming_size(tmp_path / "bomb.png", 60_000, 60_000)
    tracemalloc.start()
    start = time.perf_counter()
    for reader in (read_rgb, read_gray, read_image_size):
        with pytest.raises(ImageReadError, match="bomb.png.*decompression bomb"):
            reader(bomb)
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 5_000_000

    small = _save(tmp_path / "small.png", _gradient(40, 50))
    assert read_image_size(small, max_pixels=2000) == (40, 50)
    with pytest.raises(ImageReadError, match=r"small.png.*50x40 = 2,000 pixels.*limit of 1,999"):
        read_rgb(small, max_pixels=1999)


# --------------------------------------------------------------------------------------- datasets


def test_list_image_files_is_recursive_sorted_and_filtered(tmp_path):
    for name in ["b/2.png", "b/10.jpg", "a.PNG", "b/c/d.webp", "z.tiff"]:
        _save(tmp_path / name, _gradient(4, 4))
    (tmp_path / "notes.txt").write_text("x")
    _save(tmp_path / "._a.png", _gradient(4, 4))
    _save(tmp_path / ".cache" / "e.png", _gradient(4, 4))
    names = [path.relative_to(tmp_path).as_posix() for path in list_image_files(tmp_path)]
    assert names == ["a.PNG", "b/10.jpg", "b/2.png", "b/c/d.webp", "z.tiff"]


def test_items_are_model_range_tensors(tmp_path):
    image = np.zeros((8, 12, 3), np.uint8)
    image[:, 6:] = 255
    image[0, 0] = [51, 102, 153]
    _save(tmp_path / "x" / "a.png", image)
    _save(tmp_path / "b.png", _gradient(8, 12))
    dataset = ImageFolderDataset(tmp_path)
    assert len(dataset) == 2 and dataset.path(0) == tmp_path / "b.png"
    item = dataset[1]
    assert item["index"] == 1
    tensor = item["image"]
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 8, 12)
    assert tensor[:, :, 6:].eq(1).all() and tensor[:, 1:, :6].eq(-1).all()
    torch.testing.assert_close(tensor[:, 0, 0], torch.tensor([51, 102, 153]) / 127.5 - 1)


def test_unreadable_files_are_skipped_with_one_warning(tmp_path):
    for k in range(3):
        _save(tmp_path / f"good_{k}.png", _gradient())
    broken = _broken_files(tmp_path / "sub")
    _png_claiming_size(tmp_path / "sub" / "bomb.png", 60_000, 60_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = ImageFolderDataset(tmp_path)
    ours = [w for w in caught if issubclass(w.category, UnreadableImageWarning)]
    assert len(ours) == 1
    message = str(ours[0].message)
    assert "skipped 4 unreadable image file(s), using 3" in message
    assert all(path.name in message for path in broken.values()) and "bomb.png" in message
    assert len(dataset) == 3 and len(dataset.rejected_files) == 4
    assert [dataset.path(i).name for i in range(3)] == ["good_0.png", "good_1.png", "good_2.png"]


def test_truncated_file_is_substituted_by_its_neighbour(tmp_path):
    for k, value in enumerate([10, 20, 30]):
        _save(tmp_path / f"{k}.png", np.full((16, 16, 3), value, np.uint8))
    _truncate(tmp_path / "1.png", 0.6)
    dataset = ImageFolderDataset(tmp_path)
    assert len(dataset) == 3  # the header is intact
    with pytest.warns(UnreadableImageWarning, match=r"1\.png"):
        item = dataset[1]
    assert item["index"] == 1
    torch.testing.assert_close(item["image"], torch.full((3, 16, 16), 30 / 127.5 - 1))
    assert dataset.num_substitutions == 1 and dataset.substituted_files[0][0] == tmp_path / "1.png"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = dataset[1]  # the known-bad file is not decoded (nor warned about) again
    torch.testing.assert_close(again["image"], item["image"])
    assert dataset.num_substitutions == 1


def test_missing_empty_or_unreadable_folder_raises_dataset_not_found(tmp_path):
    layout = "celebahq/train/*.jpg and celebahq/val/*.jpg"
    missing = tmp_path / "celebahq"
    with pytest.raises(DatasetNotFoundError, match="does not exist") as caught:
        ImageFolderDataset(missing, expected_layout=layout)
    assert str(missing) in str(caught.value) and layout in str(caught.value)
    missing.mkdir()
    (missing / "readme.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="no image files") as caught:
        ImageFolderDataset(missing, expected_layout=layout)
    assert str(missing) in str(caught.value) and layout in str(caught.value)
    _broken_files(missing)
    with pytest.warns(UnreadableImageWarning), pytest.raises(DatasetNotFoundError, match="no readable image"):
        ImageFolderDataset(missing, expected_layout=layout)
    assert isinstance(caught.value, ValueError)


def test_file_list_selects_and_orders_images(tmp_path):
    for name in ["a/1.jpg", "a/2.jpg", "b/3.png"]:
        _save(tmp_path / name, _gradient(8, 8))
    list_file = tmp_path / "train.txt"
    list_file.write_text("# my split\n\nb/3.png\n/a/1.jpg 17\n a/gone.jpg \n")
    with pytest.warns(UnreadableImageWarning, match="gone.jpg"):
        dataset = ImageFolderDataset(tmp_path, file_list="train.txt")  # found relative to root
    assert [dataset.path(i) for i in range(len(dataset))] == [tmp_path / "b/3.png", tmp_path / "a/1.jpg"]
    with pytest.raises(DatasetNotFoundError, match="nothing.txt.*does not exist"):
        ImageFolderDataset(tmp_path, file_list=tmp_path / "nothing.txt")
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    with pytest.raises(DatasetNotFoundError, match="empty.txt names no image"):
        ImageFolderDataset(tmp_path, file_list=tmp_path / "empty.txt")


@pytest.mark.parametrize("train", [True, False])
def test_transform_enlarges_images_smaller_than_the_crop(tmp_path, train):
    _save(tmp_path / "tiny.png", _gradient(10, 15))
    dataset = ImageFolderDataset(tmp_path, transform=build_transform(32, train=train, resize=40))
    image = dataset[0]["image"]
    assert image.shape == (3, 32, 32) and image.min() >= -1 and image.max() <= 1


def test_evaluation_transform_is_a_deterministic_centre_crop():
    image = np.zeros((40, 80, 3), np.uint8)
    image[:, 30:50] = 255  # a centred white band, 20 of 80 columns
    transform = build_transform(16, train=False, resize=20)
    result = transform(image=image)["image"]
    assert result.shape == (16, 16, 3)
    # halved to 20x40 the band covers columns 15..24; the centre crop takes columns 12..27
    expected = np.zeros((16, 16, 3), np.uint8)
    expected[:, 3:13] = 255
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(transform(image=image)["image"], result)


def test_build_transform_rejects_resize_below_crop():
    with pytest.raises(ValueError, match="resize=16"):
        build_transform(32, train=True, resize=16)


def test_dataloader_workers_draw_different_reproducible_augmentations(tmp_path):
    for k in range(4):
        _save(tmp_path / f"{k}.png", _gradient(64, 64))  # the same picture four times
    dataset = ImageFolderDataset(tmp_path, transform=build_transform(16, train=True))

    def crops() -> list[torch.Tensor]:
        loader = DataLoader(dataset, batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(3))
        return [batch["image"] for batch in loader]

    first = crops()
    assert not torch.equal(first[0], first[1])  # items 0 and 1 come from different workers
    assert all(torch.equal(a, b) for a, b in zip(first, crops(), strict=True))


# ------------------------------------------------------------------------------------ sample data


def test_sample_photos_load_offline():
    for name, load in {**SAMPLE_PHOTOS, **HOLDOUT_PHOTOS}.items():
        photo = load()
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
    for name, load in HOLDOUT_PHOTOS.items():
        assert min(load().shape[:2]) >= 256, f"{name} would be enlarged for the holdout split"


def test_sample_dataset_is_made_once_split_by_photo(tmp_path):
    root = ensure_sample_dataset(tmp_path / "sample")
    splits = {split: list_image_files(root / split) for split in ("train", "val", "holdout")}
    assert {split: len(files) for split, files in splits.items()} == {"train": 96, "val": 12, "holdout": 12}
    photos = {split: {path.stem.rsplit("_", 1)[0] for path in files} for split, files in splits.items()}
    assert photos["val"] == {"chelsea", "coffee"} and photos["holdout"] == set(HOLDOUT_PHOTOS)
    assert not photos["train"] & (photos["val"] | photos["holdout"])
    scenes = read_file_list(root / SCENES_LIST, root / "train")
    assert len(scenes) == 42 and all(path.is_file() for path in scenes)
    assert {path.stem.rsplit("_", 1)[0] for path in scenes} == set(SCENE_PHOTOS) < photos["train"]
    train = splits["train"]
    assert read_rgb(train[0]).shape == (128, 128, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # no staging folder left behind

    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*")}
    assert ensure_sample_dataset(tmp_path / "sample") == root
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*")} == stamps
    dataset = ImageFolderDataset(root / "val", transform=build_transform(64, train=False))
    assert len(dataset) == 12 and dataset[11]["image"].shape == (3, 64, 64)


def test_sample_dataset_interrupted_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def failing_save(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        ensure_sample_dataset(tmp_path / "sample", tile=32)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(Image.Image, "save", original)
    root = ensure_sample_dataset(tmp_path / "sample", tile=32)
    assert (root / SAMPLE_MANIFEST).is_file() and read_rgb(next((root / "val").iterdir())).shape == (
        32,
        32,
        3,
    )


def test_a_sample_dataset_of_an_earlier_version_is_replaced(tmp_path):
    old = tmp_path / "sample"
    (old / "train").mkdir(parents=True)
    (old / "train" / "astronaut_00.png").write_bytes(b"version 1")
    (old / SAMPLE_MANIFEST).write_text(json.dumps({"tile": 128, "val_photos": ["chelsea", "coffee"]}))
    root = ensure_sample_dataset(old)
    assert json.loads((root / SAMPLE_MANIFEST).read_text())["version"] == 3
    assert len(list_image_files(root / "holdout")) == 12
    assert read_rgb(root / "train" / "astronaut_00.png").shape == (128, 128, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["sample"]  # nothing staged or retired is left


def test_sample_dataset_refuses_other_settings_or_foreign_folders(tmp_path):
    ensure_sample_dataset(tmp_path / "sample", tile=32)
    with pytest.raises(ValueError, match="tile.*32.*delete the folder"):
        ensure_sample_dataset(tmp_path / "sample", tile=64)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(ValueError, match="mine.*no manifest.json"):
        ensure_sample_dataset(tmp_path / "mine", tile=32)
    assert (tmp_path / "mine" / "holiday.jpg").read_bytes() == b"precious"
    with pytest.raises(ValueError, match="val_photos"):
        ensure_sample_dataset(tmp_path / "other", val_photos=("lena",))
