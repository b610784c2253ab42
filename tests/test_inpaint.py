"""mtmsa.inpaint: any image size, known pixels byte-identical, large images around the hole, folders, errors."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mtmsa.data.io import read_rgb
from mtmsa.inference.checkpoints import load_generator
from mtmsa.inference.inpainter import Inpainter, context_window
from mtmsa.inpaint import main
from tests.helpers.runs import CHECKPOINT_V0_1

TRAINED_SIZE = 32  # the tiny checkpoint's dataset.image_size


@pytest.fixture(scope="module")
def generator(checkpoint) -> nn.Module:
    return load_generator(checkpoint)[0]


class RecordingGenerator(nn.Module):
    """Wraps a generator and records the (H, W) of every input it is given."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator
        self.size_multiple = generator.size_multiple
        self.sizes: list[tuple[int, int]] = []

    def forward(self, images, masks, sketches):
        self.sizes.append(tuple(images.shape[-2:]))
        return self.generator(images, masks, sketches)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def box_hole(height: int, width: int, top: int, left: int, size: int) -> np.ndarray:
    hole = np.zeros((height, width), bool)
    hole[top : top + size, left : left + size] = True
    return hole


@pytest.mark.parametrize("height, width", [(30, 30), (37, 53), (5, 3)])
def test_any_size_keeps_known_pixels_byte_identical(generator, height, width):
    image = random_image(height, width)
    hole = box_hole(height, width, 1, 1, 2 if height < 8 else 12)
    recorder = RecordingGenerator(generator)
    result = Inpainter(recorder, TRAINED_SIZE)(image, hole)
    assert result.shape == image.shape and result.dtype == np.uint8
    assert np.array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any()
    assert all(h % 4 == 0 and w % 4 == 0 for h, w in recorder.sizes)  # reflect-padded to the size multiple


def test_large_image_is_processed_around_the_hole_at_the_trained_size(generator):
    image = random_image(150, 110, seed=1)
    recorder = RecordingGenerator(generator)
    inpainter = Inpainter(recorder, TRAINED_SIZE)
    small_hole = box_hole(150, 110, 60, 40, 8)
    result = inpainter(image, small_hole)
    assert recorder.sizes == [(32, 32)]  # a 32 px window around the 8 px hole, at full resolution
    assert np.array_equal(result[~small_hole], image[~small_hole])
    large_hole = box_hole(150, 110, 10, 10, 90)  # window: the whole image, shrunk to 32 px on its long side
    result = inpainter(image, large_hole)
    assert recorder.sizes[-1] == (32, 24)
    assert np.array_equal(result[~large_hole], image[~large_hole])
    assert (result[large_hole] != image[large_hole]).mean() > 0.9


def test_context_window_stays_inside_the_image():
    hole = box_hole(100, 80, 90, 0, 10)
    rows, columns = context_window(hole, 32)
    assert (rows.start, rows.stop, columns.start, columns.stop) == (68, 100, 0, 32)
    rows, columns = context_window(box_hole(100, 80, 20, 20, 40), 32)  # 40 px hole + 20 px margins
    assert (rows.start, rows.stop, columns.start, columns.stop) == (0, 80, 0, 80)


def test_strokes_outside_the_hole_are_ignored_and_both_sketch_conventions_agree(checkpoint, tmp_path):
    image = random_image(40, 40, seed=2)
    hole = box_hole(40, 40, 10, 10, 16)
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    lines = np.full((40, 40), 255, np.uint8)
    lines[18, :] = 0  # a horizontal stroke through the hole
    Image.fromarray(lines).save(tmp_path / "black_on_white.png")
    Image.fromarray(255 - lines).save(tmp_path / "white_on_black.png")
    outside = np.full((40, 40), 255, np.uint8)
    outside[35, :] = 0
    Image.fromarray(outside).save(tmp_path / "outside.png")
    outputs = {}
    for name in ("black_on_white", "white_on_black", "outside", None):
        sketch = [] if name is None else ["--sketch", str(tmp_path / f"{name}.png")]
        out = tmp_path / f"out_{name}.png"
        main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / "in.png"),
              "--mask", str(tmp_path / "hole.png"), "--out", str(out), *sketch])  # fmt: skip
        outputs[name] = np.asarray(Image.open(out))
    assert np.array_equal(outputs["black_on_white"], outputs["white_on_black"])
    assert np.array_equal(outputs["outside"], outputs[None])
    assert not np.array_equal(outputs["black_on_white"], outputs[None])


def test_rgba_grey_and_16_bit_inputs_in_a_folder_matched_by_name(checkpoint, tmp_path):
    images, masks, out = tmp_path / "images", tmp_path / "masks", tmp_path / "out"
    images.mkdir(), masks.mkdir()
    rgba = np.dstack([random_image(24, 36, seed=3), np.full((24, 36), 128, np.uint8)])
    Image.fromarray(rgba).save(images / "rgba.png")
    grey16 = np.random.default_rng(4).integers(0, 65536, (28, 20), dtype=np.uint16)
    Image.fromarray(grey16).save(images / "grey16.png")
    Image.fromarray(random_image(30, 30, seed=5)[..., 0]).save(images / "grey8.bmp")
    for name, (height, width) in {"rgba": (24, 36), "grey16": (28, 20), "grey8": (30, 30)}.items():
        hole = box_hole(height, width, 4, 4, 10).astype(np.uint8) * 255
        Image.fromarray(255 - hole).save(masks / f"{name}.{'tif' if name == 'grey8' else 'png'}")
    main(["--checkpoint", str(checkpoint), "--image", str(images), "--mask", str(masks), "--out", str(out),
          "--mask-convention", "hole-black"])  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["grey16.png", "grey8.png", "rgba.png"]
    for source in images.iterdir():
        decoded = read_rgb(source)
        result = np.asarray(Image.open(out / f"{source.stem}.png"))
        hole = box_hole(*decoded.shape[:2], 4, 4, 10)
        assert result.shape == decoded.shape and result.dtype == np.uint8
        assert np.array_equal(result[~hole], decoded[~hole]), source.name


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_user_errors_exit_2_with_one_message_and_inputs_untouched(checkpoint, tmp_path, capsys):
    Image.fromarray(random_image(32, 32)).save(tmp_path / "in.png")
    Image.fromarray(box_hole(32, 32, 4, 4, 8).astype(np.uint8) * 255).save(tmp_path / "hole.png")
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "empty.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    before = digest(tmp_path)
    cases = {
        ("in.png", "small.png", "out.png"): "small.png is 32x16 but image",
        ("in.png", "empty.png", "out.png"): "marks no hole pixel",
        ("broken.png", "hole.png", "out.png"): "cannot read image",
        ("in.png", "hole.png", "in.png"): "is one of the inputs",
        ("in.png", "hole.png", "out.txt"): "needs an image file ending",
        ("missing.png", "hole.png", "out.png"): "missing.png does not exist",
    }
    for (image, mask, out), message in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(["--checkpoint", str(checkpoint), "--image", str(tmp_path / image),
                  "--mask", str(tmp_path / mask), "--out", str(tmp_path / out)])  # fmt: skip
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
    assert digest(tmp_path) == before  # nothing written, nothing changed


def test_command_line_refuses_a_checkpoint_with_code_without_a_traceback(tmp_path):
    Image.fromarray(random_image(32, 32)).save(tmp_path / "in.png")
    Image.fromarray(box_hole(32, 32, 4, 4, 8).astype(np.uint8) * 255).save(tmp_path / "hole.png")
    torch.save({"state_dict": {}, "payload": print}, tmp_path / "evil.ckpt")
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.inpaint", "--checkpoint", str(tmp_path / "evil.ckpt"),
         "--image", str(tmp_path / "in.png"), "--mask", str(tmp_path / "hole.png"), "--out", str(tmp_path / "o.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        "Traceback" not in result.stderr and "refused" in result.stderr and "refers to print" in result.stderr
    )
    assert not (tmp_path / "o.png").exists()


def test_a_checkpoint_written_by_version_0_1_still_inpaints_from_the_command_line(tmp_path):
    image, hole = random_image(48, 40, seed=7), box_hole(48, 40, 10, 8, 16)
    Image.fromarray(image).save(tmp_path / "in.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "hole.png")
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.inpaint", "--checkpoint", str(CHECKPOINT_V0_1), "--image",
         str(tmp_path / "in.png"), "--mask", str(tmp_path / "hole.png"), "--out", str(tmp_path / "out.png")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    filled = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.array_equal(filled[~hole], image[~hole]) and (filled[hole] != image[hole]).any()
    expected = Inpainter(load_generator(CHECKPOINT_V0_1).generator, TRAINED_SIZE)(image, hole)
    assert np.array_equal(filled, expected)  # the command and the library give the same pixels
