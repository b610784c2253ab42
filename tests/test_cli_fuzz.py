"""Hostile input to the command-line tools: every case ends in one ``error:`` line and exit code 2, or in
a correct result; nothing hangs, nothing runs out of memory, and no input is ever changed.

``mtmsa.inpaint`` and ``mtmsa.evaluate`` run in-process (their ``main`` / ``exit_on_user_error``); the
extreme sizes also run as real processes under a wall-clock timeout and an address-space limit.
The case tables are module constants; the README's reliability table quotes their sizes.
"""

from __future__ import annotations

import hashlib
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mtmsa.data.io import read_rgb
from mtmsa.evaluate import evaluate
from mtmsa.inference.checkpoints import load_checkpoint
from mtmsa.inference.jobs import read_mask
from mtmsa.utils.cli import exit_on_user_error
from tests.helpers.bad_files import bad_files, good_files, png_claiming_size
from tests.helpers.runs import evaluate_config, inpaint_in_process

SIZE = 32
MEMORY_LIMIT = 3 * 2**30  # address space of the subprocess runs: the tools need < 1.5 GB for any input here
TIMEOUT_S = 120


def bilevel_png_bomb(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of width x height zeros: ~width*height/8/1000 bytes of file that would
    decode to width*height pixels (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + (width + 7) // 8)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def _save(array: np.ndarray, path: Path, **options) -> Path:
    if array.dtype == np.uint16 and array.ndim == 3:
        cv2.imwrite(str(path), array[..., ::-1])
    else:
        Image.fromarray(array).save(path, **options)
    return path


def _hole(height: int = SIZE, width: int = SIZE) -> np.ndarray:
    hole = np.zeros((height, width), np.uint8)
    hole[height // 4 : height // 2 + 1, width // 4 : width // 2 + 1] = 255
    return hole


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with every input file of the case tables (made once; the tests check it never changes)."""
    folder = tmp_path_factory.mktemp("fuzz_inputs")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), np.uint8)
    _save(image, folder / "image.png")
    _save(image, folder / "image.jpg", quality=95)
    _save(_hole(), folder / "hole.png")
    _save(np.zeros((SIZE, SIZE), np.uint8), folder / "mask_all_zero.png")
    _save(np.full((SIZE, SIZE), 255, np.uint8), folder / "mask_all_one.png")
    _save(np.where(_hole() > 0, 200, 60).astype(np.uint8), folder / "mask_grey_levels.png")
    _save(np.repeat(_hole()[..., None], 3, 2), folder / "mask_rgb.png")
    _save(
        np.dstack([_hole(), _hole(), _hole(), np.full((SIZE, SIZE), 255, np.uint8)]), folder / "mask_rgba.png"
    )
    _save(_hole().astype(np.uint16) * 257, folder / "mask_16bit.png")
    _save(
        np.dstack([np.zeros((SIZE, SIZE, 3), np.uint8), np.zeros((SIZE, SIZE), np.uint8)]),
        folder / "mask_transparent.png",
    )
    _save(_hole(16, 32), folder / "mask_other_size.png")
    _save(_hole(SIZE, SIZE).T[:, :-4].copy(), folder / "mask_transposed.png")
    _save(np.full((1, 1), 255, np.uint8), folder / "mask_1x1.png")
    _save(np.full((1, 1, 3), 90, np.uint8), folder / "image_1x1.png")
    _save(rng.integers(0, 256, (3, 200, 3), np.uint8), folder / "image_strip.png")
    _save(np.full((3, 200), 255, np.uint8), folder / "mask_strip.png")
    _save(rng.integers(0, 65536, (SIZE, SIZE, 3), np.uint16), folder / "image_16bit.png")
    _save(np.dstack([image, rng.integers(0, 256, (SIZE, SIZE), np.uint8)]), folder / "image_rgba.png")
    _save(image[..., 0], folder / "image_grey.png")
    Image.fromarray(image).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "image_palette.png")
    (folder / "random_bytes.png").write_bytes(rng.bytes(4096))
    (folder / "zero_bytes.png").write_bytes(b"")
    (folder / "text.png").write_text("hello, I am not an image\n")
    (folder / "a_folder.png").mkdir()
    png = (folder / "image.png").read_bytes()
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    jpeg = (folder / "image.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "short_data.png").write_bytes(png_claiming_size(SIZE, SIZE, rows=3))
    (folder / "claims_20000px.png").write_bytes(png_claiming_size(20000, 20000))
    (folder / "bomb_20000px.png").write_bytes(bilevel_png_bomb(20000, 20000))
    (folder / "claims_2000px.png").write_bytes(bilevel_png_bomb(2000, 2000))
    os.mkfifo(folder / "fifo.png")
    return folder


IMAGE_CASES = {
    # --image, --mask, extra arguments -> expected: "ok" or a piece of the one-line error
    "random bytes image": ("random_bytes.png", "hole.png", [], "not a recognised image file"),
    "zero-byte image": ("zero_bytes.png", "hole.png", [], "empty (0 bytes)"),
    "text file image": ("text.png", "hole.png", [], "not a recognised image file"),
    "folder as image": ("a_folder.png", "hole.png", [], "must be folders too"),
    "truncated PNG image": ("truncated.png", "hole.png", [], "truncated"),
    "truncated JPEG image": ("truncated.jpg", "hole.png", [], "truncated"),
    "PNG with short pixel data": ("short_data.png", "hole.png", [], "PNG data is corrupt or truncated"),
    "FIFO as image": ("fifo.png", "hole.png", [], "not a regular file"),
    "device as image": ("/dev/zero", "hole.png", [], "not a regular file"),
    "header claims 20000x20000": ("claims_20000px.png", "hole.png", [], "decompression bomb"),
    "20000x20000 decompression bomb": ("bomb_20000px.png", "hole.png", [], "decompression bomb"),
    "over --max-pixels": ("claims_2000px.png", "hole.png", ["--max-pixels", "1000000"], "limit of 1,000,000"),
    "random bytes mask": ("image.png", "random_bytes.png", [], "not a recognised image file"),
    "zero-byte mask": ("image.png", "zero_bytes.png", [], "empty (0 bytes)"),
    "truncated PNG mask": ("image.png", "truncated.png", [], "truncated"),
    "bomb as mask": ("image.png", "bomb_20000px.png", [], "decompression bomb"),
    "mask of another size": ("image.png", "mask_other_size.png", [], "is 32x16 but image"),
    "mask transposed": ("image.png", "mask_transposed.png", [], "is 28x32 but image"),
    "1x1 mask for a 32x32 image": ("image.png", "mask_1x1.png", [], "is 1x1 but image"),
    "mask all zero": ("image.png", "mask_all_zero.png", [], "marks no hole pixel"),
    "mask all zero, hole-black": (
        "image.png",
        "mask_all_one.png",
        ["--mask-convention", "hole-black"],
        "marks no hole",
    ),
    "fully transparent mask": ("image.png", "mask_transparent.png", [], "marks no hole pixel"),
    "threshold 0": ("image.png", "hole.png", ["--threshold", "0"], "--threshold 0 is not a number in (0, 1)"),
    "threshold nan": (
        "image.png",
        "hole.png",
        ["--threshold", "nan"],
        "--threshold nan is not a number in (0, 1)",
    ),
    "max-pixels 0": ("image.png", "hole.png", ["--max-pixels", "0"], "--max-pixels 0 is not an integer >= 1"),
    "device that is missing": ("image.png", "hole.png", ["--device", "cuda:7"], "CUDA"),
    "mask all one": ("image.png", "mask_all_one.png", [], "ok"),
    "mask all one, hole-black": ("image.png", "mask_all_zero.png", ["--mask-convention", "hole-black"], "ok"),
    "grey-level mask": ("image.png", "mask_grey_levels.png", [], "ok"),
    "RGB mask": ("image.png", "mask_rgb.png", [], "ok"),
    "RGBA mask": ("image.png", "mask_rgba.png", [], "ok"),
    "16-bit mask": ("image.png", "mask_16bit.png", [], "ok"),
    "1x1 image": ("image_1x1.png", "mask_1x1.png", [], "ok"),
    "3x200 strip": ("image_strip.png", "mask_strip.png", [], "ok"),
    "16-bit RGB image": ("image_16bit.png", "hole.png", [], "ok"),
    "RGBA image": ("image_rgba.png", "hole.png", [], "ok"),
    "grey image": ("image_grey.png", "hole.png", [], "ok"),
    "palette image": ("image_palette.png", "hole.png", [], "ok"),
    "JPEG image": ("image.jpg", "hole.png", [], "ok"),
}

OUTPUT_CASES = {
    # --out: "image" (the --image file), "symlink"/"hardlink" (a link to it), else a path in the inputs folder
    "out is the image": ("image", "is one of the inputs"),
    "out is the mask": ("hole.png", "is one of the inputs"),
    "out is a symbolic link to the image": ("symlink", "is one of the inputs"),
    "out is a hard link to the image": ("hardlink", "is one of the inputs"),
    "out is a folder": ("a_folder.png", "must be files too"),
    "out has no image ending": ("out.txt", "needs an image file ending"),
    "out below a file": ("image.jpg/out.png", "cannot write"),
}

CHECKPOINT_CASES = {
    "missing checkpoint": ("missing", "does not exist"),
    "random bytes checkpoint": ("random", "not a torch checkpoint"),
    "zero-byte checkpoint": ("empty", "not a torch checkpoint"),
    "text checkpoint": ("text", "not a torch checkpoint"),
    "folder as checkpoint": ("folder", "holds no model.safetensors"),
    "truncated checkpoint": ("truncated", "not a torch checkpoint"),
    "pickle that runs code": ("evil_pickle", "unsupported GLOBAL posix.system"),
    "config that calls os.system": ("evil_config", "outside mtmsa.models."),
    "checkpoint without weights": ("no_weights", "no generator_ema.* or generator.* weights"),
    "weights of another shape": ("wrong_shapes", "do not fit the generator"),
}


class RunsCode:
    """Unpickling this would call os.system."""

    def __reduce__(self):
        return os.system, ("touch PWNED",)


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory, checkpoint) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    rng = np.random.default_rng(1)
    (folder / "random").write_bytes(rng.bytes(5000))
    (folder / "empty").write_bytes(b"")
    (folder / "text").write_text("model weights: trust me\n")
    (folder / "folder").mkdir()
    data = checkpoint.read_bytes()
    (folder / "truncated").write_bytes(data[: len(data) // 2])
    torch.save({"state_dict": {}, "mtmsa_config": RunsCode()}, folder / "evil_pickle")
    contents = load_checkpoint(checkpoint)
    evil = {**contents, "mtmsa_config": {**contents["mtmsa_config"]}}
    evil["mtmsa_config"]["model"] = {
        **evil["mtmsa_config"]["model"],
        "attention": {"_target_": "os.system", "command": "touch PWNED"},
    }
    torch.save(evil, folder / "evil_config")
    torch.save({**contents, "state_dict": {}}, folder / "no_weights")
    wrong = {k: v[..., :1] if v.ndim else v for k, v in contents["state_dict"].items()}
    torch.save({**contents, "state_dict": wrong}, folder / "wrong_shapes")
    return {
        name: folder / name
        for name in (
            "random",
            "empty",
            "text",
            "folder",
            "truncated",
            "evil_pickle",
            "evil_config",
            "no_weights",
            "wrong_shapes",
        )
    } | {"missing": folder / "missing"}


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink()
    }


DECODER_NOISE = ("libpng ",)
"""Lines that C decoders print to stderr themselves (libpng's error handler); not ours to silence."""


def assert_one_line_error(code: int, stderr: str, expected: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith(DECODER_NOISE)]
    assert code == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize("case", IMAGE_CASES)
def test_inpaint_inputs(case, inputs, checkpoint, tmp_path, capfd):
    image, mask, extra, expected = IMAGE_CASES[case]
    before = digest(inputs)
    out = tmp_path / "result.png"
    image_path = Path(image) if image.startswith("/") else inputs / image
    code, stderr = inpaint_in_process(
        ["--checkpoint", str(checkpoint), "--image", str(image_path), "--mask", str(inputs / mask),
         "--out", str(out), "--device", "cpu", *extra], capfd,
    )  # fmt: skip
    assert digest(inputs) == before
    if expected != "ok":
        assert_one_line_error(code, stderr, expected)
        assert not out.exists() and list(tmp_path.iterdir()) == []
        return
    assert code == 0, stderr
    decoded = read_rgb(image_path)
    result = np.asarray(Image.open(out))
    assert result.shape == decoded.shape and result.dtype == np.uint8
    convention = "hole-black" if "hole-black" in extra else "hole-white"
    hole = read_mask(inputs / mask, convention)
    assert np.array_equal(result[~hole], decoded[~hole])  # known pixels as decoded, byte for byte
    assert hole.any()


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_inpaint_never_overwrites_an_input(case, inputs, checkpoint, tmp_path, capfd):
    target, expected = OUTPUT_CASES[case]
    image = tmp_path / "image.png"
    image.write_bytes((inputs / "image.png").read_bytes())
    out = {"image": image, "symlink": tmp_path / "link.png", "hardlink": tmp_path / "hard.png"}.get(
        target, inputs / target
    )
    if target == "symlink":
        out.symlink_to(image)
    elif target == "hardlink":
        os.link(image, out)
    before, image_before = digest(inputs), image.read_bytes()
    code, stderr = inpaint_in_process(
        ["--checkpoint", str(checkpoint), "--image", str(image), "--mask", str(inputs / "hole.png"),
         "--out", str(out)], capfd,
    )  # fmt: skip
    assert_one_line_error(code, stderr, expected)
    assert digest(inputs) == before and image.read_bytes() == image_before


def test_inpaint_folder_output_never_overwrites_inputs(inputs, checkpoint, tmp_path, capfd):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for name in ("a", "b"):
        _save(np.full((SIZE, SIZE, 3), 100, np.uint8), images / f"{name}.png")
        _save(_hole(), masks / f"{name}.png")
    before = digest(images) | {f"m/{k}": v for k, v in digest(masks).items()}
    for out in (images, masks, images / "."):
        code, stderr = inpaint_in_process(["--checkpoint", str(checkpoint), "--image", str(images), "--mask", str(masks),
                                    "--out", str(out)], capfd)  # fmt: skip
        assert_one_line_error(code, stderr, "is one of the inputs")
    assert digest(images) | {f"m/{k}": v for k, v in digest(masks).items()} == before


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_inpaint_refuses_bad_checkpoints(case, inputs, bad_checkpoints, tmp_path, capfd, monkeypatch):
    name, expected = CHECKPOINT_CASES[case]
    monkeypatch.chdir(tmp_path)  # where "touch PWNED" would write if anything ran
    code, stderr = inpaint_in_process(
        ["--checkpoint", str(bad_checkpoints[name]), "--image", str(inputs / "image.png"),
         "--mask", str(inputs / "hole.png"), "--out", str(tmp_path / "o.png")], capfd,
    )  # fmt: skip
    assert_one_line_error(code, stderr, expected)
    assert list(tmp_path.iterdir()) == []


def run_evaluate(
    overrides: list[str], output_dir: Path, data_dir: Path, capfd
) -> tuple[int, str, dict | None]:
    """(exit code, stderr, results) of ``python -m mtmsa.evaluate <overrides>``, in this process."""
    results = None
    try:
        with exit_on_user_error():
            results = evaluate(evaluate_config(overrides, output_dir, data_dir))
        code = 0
    except SystemExit as exit_info:
        code = exit_info.code
    return code, capfd.readouterr().err, results


QUICK = [
    "dataset.image_size=32",
    "dataset.resize=40",
    "dataset.num_workers=0",
    "fid=false",
    "lpips=null",
    "samples=0",
    "limit=6",
]

EVALUATE_CASES = {
    # overrides (with {inputs}, {messy}, {masks_*} and {ckpt_*} filled in) -> expected
    **{
        f"checkpoint: {case}": ([f"ckpt_path={{ckpt_{name}}}"], expected)
        for case, (name, expected) in CHECKPOINT_CASES.items()
    },
    "dataset root is a file": (
        ["dataset=folder", "dataset.root={inputs}/image.png", "baseline=mean"],
        "val: does not exist",
    ),
    "dataset of unreadable files": (
        ["dataset=folder", "dataset.root={unreadable}", "baseline=mean"],
        "holds no readable image",
    ),
    "dataset with bad files mixed in": (["dataset=folder", "dataset.root={messy}", "baseline=mean"], "ok"),
    "mask folder with a corrupt mask": (["baseline=mean", "mask_dir={masks_corrupt}"], "cannot read image"),
    "mask folder that is empty": (["baseline=mean", "mask_dir={masks_empty}"], "holds no mask images"),
    "mask folder all zero": (["baseline=mean", "mask_dir={masks_zero}"], "ok"),
    "mask folder all one": (["baseline=mean", "mask_dir={masks_one}"], "ok"),
    "mask folder of RGB, 16-bit, grey-level, 1x1 masks": (["baseline=mean", "mask_dir={masks_mixed}"], "ok"),
    "unknown baseline": (["baseline=magic"], "baseline='magic' is unknown"),
    "unknown split": (["baseline=mean", "split=test"], "split='test' is unknown"),
    "missing device": (["baseline=mean", "device=cuda:3"], "CUDA"),
    "nonsense device": (["baseline=mean", "device=abacus"], "not a device"),
}


@pytest.fixture(scope="module")
def evaluation_inputs(tmp_path_factory, inputs, bad_checkpoints) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("evaluation_inputs")
    messy = folder / "messy"
    for split, seed in (("train", 0), ("val", 1)):
        good_files(messy / split, seed)
        bad_files(messy / split, seed)
    unreadable = folder / "unreadable"
    for split in ("train", "val"):
        (unreadable / split).mkdir(parents=True)
        (unreadable / split / "zero.png").write_bytes(b"")
        (unreadable / split / "noise.jpg").write_bytes(b"\xff\xd8 noise")
    mask_sets = {
        "corrupt": {"a.png": "hole.png", "b.png": "truncated.png"},
        "zero": {"a.png": "mask_all_zero.png"},
        "one": {"a.png": "mask_all_one.png"},
        "mixed": {
            "a.png": "mask_rgb.png",
            "b.png": "mask_16bit.png",
            "c.png": "mask_grey_levels.png",
            "d.png": "mask_1x1.png",
            "e.png": "mask_rgba.png",
        },
        "empty": {},
    }
    paths = {"inputs": inputs, "messy": messy, "unreadable": unreadable}
    for name, files in mask_sets.items():
        (folder / f"masks_{name}").mkdir()
        for target, source in files.items():
            (folder / f"masks_{name}" / target).write_bytes((inputs / source).read_bytes())
        paths[f"masks_{name}"] = folder / f"masks_{name}"
    return paths | {f"ckpt_{name}": path for name, path in bad_checkpoints.items()}


@pytest.mark.parametrize("case", EVALUATE_CASES)
def test_evaluate_inputs(case, evaluation_inputs, sample_data_dir, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where "touch PWNED" would write if a checkpoint ran code
    overrides, expected = EVALUATE_CASES[case]
    overrides = [item.format(**evaluation_inputs) for item in overrides]
    code, stderr, results = run_evaluate(QUICK + overrides, tmp_path / "run", sample_data_dir, capfd)
    if expected != "ok":
        assert code == 2, stderr
        errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and expected in errors[0], stderr
        assert "Traceback" not in stderr
        assert not (tmp_path / "run").exists() and not (tmp_path / "PWNED").exists()
        return
    assert code == 0, stderr
    assert results["images"] == 6
    metrics = results["metrics"]
    assert np.isfinite(metrics["psnr"]) and np.isfinite(metrics["l1"])
    if "all zero" in case:  # no hole: the fill changes nothing
        assert metrics["l1"] == 0 and [row[0] for row in results["rows"]] == ["0-10%", "all"]
    if "all one" in case:
        assert [row[0] for row in results["rows"]] == ["90-100%", "all"] or results["rows"][-1][0] == "all"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("image", ["claims_20000px.png", "bomb_20000px.png", "fifo.png"])
def test_extreme_inputs_in_a_real_process_under_time_and_memory_limits(image, inputs, checkpoint, tmp_path):
    before = digest(inputs)
    result = subprocess.run(
        [sys.executable, "-m", "mtmsa.inpaint", "--checkpoint", str(checkpoint), "--image", str(inputs / image),
         "--mask", str(inputs / "bomb_20000px.png"), "--out", str(tmp_path / "o.png"), "--device", "cpu"],
        capture_output=True, text=True, timeout=TIMEOUT_S, preexec_fn=_limit_memory,
    )  # fmt: skip
    assert_one_line_error(result.returncode, result.stderr, "")
    assert digest(inputs) == before and not (tmp_path / "o.png").exists()
