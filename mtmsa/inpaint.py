"""Inpaint your own images with a trained checkpoint.

    python -m mtmsa.inpaint --checkpoint C --image in.png --mask hole.png [--sketch lines.png] --out out.png
    python -m mtmsa.inpaint --checkpoint C --image DIR --mask DIR [--sketch DIR] --out DIR
    python -m mtmsa.inpaint --model generator.onnx --image in.png --mask hole.png --out out.png

(``mtmsa-inpaint`` is the same command.) The pieces live in :mod:`mtmsa.inference`. ``--checkpoint`` is a
training checkpoint or a safetensors folder written by ``mtmsa-export``; ``--model`` an ONNX file written by
``mtmsa-export``, run through ONNX Runtime with the same result (within 2/255).

Any image size works. The image is padded (reflected) to the generator's size multiple and cropped back.
An image larger than the resolution the model was trained at (the checkpoint's ``dataset.image_size``)
is processed in a window around the hole: the hole's bounding box with a margin of half its size on
each side, at least the trained resolution wide; a window larger than that is shrunk to it, inpainted,
and the prediction enlarged back. Only hole pixels of the output ever change: the known pixels are
byte-identical to the input as decoded (8-bit RGB; 16-bit inputs are scaled to 8 bits, transparency
composited on white) when the output format is lossless (PNG, BMP, TIFF).

Hostile or broken input ends in one ``error: ...`` line and exit code 2, before anything is written:
unreadable files, sizes that do not match (compared from the headers, before any pixels are decoded),
images above the pixel limit (``--max-pixels``, default ``$MTMSA_MAX_PIXELS`` or 100 million, checked
from the header), an output that is one of the inputs (also through a link). Outputs are written to a
temporary file in the output folder and renamed into place, so an interrupted run leaves no partial file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mtmsa.conf.schema.rules import checkpoint_problem
from mtmsa.conf.schema.run import INPAINT_FLAGS, MASK_CONVENTIONS, SKETCH_CONVENTIONS
from mtmsa.utils.cli import OneLineParser, exit_on_user_error, flag_type, one_line_errors, program_name
from mtmsa.utils.errors import UserInputError

# OpenCV, torch and the model are imported inside run(): the flags are checked before they load.


def build_parser() -> argparse.ArgumentParser:
    """The flags; the value flags' types and ranges are declared in mtmsa.conf.schema.run.INPAINT_FLAGS."""
    parser = OneLineParser(
        prog=program_name("mtmsa.inpaint"),
        description="Fill the holes of images with a trained mtmsa checkpoint (EMA weights preferred) or an "
        "exported ONNX model. "
        "Give one --image/--mask/--out file each, or folders (files matched by name without extension, "
        "outputs written as <name>.png).",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--checkpoint",
        type=Path,
        help="a .ckpt written by mtmsa.train, or a folder written by mtmsa-export --format safetensors",
    )
    model.add_argument(
        "--model", type=Path, help="an .onnx file written by mtmsa-export, run by ONNX Runtime on the CPU"
    )
    parser.add_argument(
        "--image", required=True, type=Path, help="image file or folder (RGB, RGBA, grey, 16-bit)"
    )
    parser.add_argument("--mask", required=True, type=Path, help="mask file or folder, the size of the image")
    parser.add_argument(
        "--sketch",
        type=Path,
        help="optional line drawing (file or folder) guiding the fill; only strokes inside the hole are used",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output file or folder; never one of the inputs"
    )
    parser.add_argument(
        "--mask-convention",
        type=flag_type("--mask-convention", INPAINT_FLAGS["--mask-convention"]),
        metavar="{" + ",".join(MASK_CONVENTIONS) + "}",
        default="hole-white",
        help="which colour of the mask marks the hole (default: hole-white, white = fill, black = keep)",
    )
    parser.add_argument(
        "--sketch-convention",
        type=flag_type("--sketch-convention", INPAINT_FLAGS["--sketch-convention"]),
        metavar="{" + ",".join(SKETCH_CONVENTIONS) + "}",
        default="auto",
        help="black-on-white or white-on-black lines; auto (default): the majority colour is the background",
    )
    parser.add_argument(
        "--threshold",
        type=flag_type("--threshold", INPAINT_FLAGS["--threshold"]),
        default=0.5,
        help="grey level in (0, 1) binarising masks and sketches",
    )
    parser.add_argument(
        "--device",
        type=flag_type("--device", INPAINT_FLAGS["--device"]),
        default="auto",
        help="auto (CUDA when available, else CPU), cpu, cuda, cuda:1",
    )
    parser.add_argument(
        "--max-pixels",
        type=flag_type("--max-pixels", INPAINT_FLAGS["--max-pixels"]),
        help="refuse input images whose header announces more pixels than this (decompression-bomb "
        "guard; default: $MTMSA_MAX_PIXELS or 100000000)",
    )
    return parser


def run(args: argparse.Namespace) -> list[Path]:
    """Inpaint every job of ``args``; returns the written files."""
    if args.checkpoint is not None:
        problem = checkpoint_problem(str(args.checkpoint), f"--checkpoint {args.checkpoint}", exported=True)
        if problem is not None:
            raise UserInputError(problem)
    from tqdm.auto import tqdm

    from mtmsa.data.io import max_pixels_limit
    from mtmsa.inference.inpainter import Inpainter
    from mtmsa.inference.jobs import load_inputs, plan_jobs, save_image
    from mtmsa.inference.onnx_runtime import OnnxGenerator
    from mtmsa.inference.pretrained import load_pretrained
    from mtmsa.utils.cli import resolve_device

    args.max_pixels = max_pixels_limit(args.max_pixels)
    jobs = plan_jobs(args.image, args.mask, args.sketch, args.out)
    device = resolve_device(args.device, "--device")
    if args.model is not None:
        generator = OnnxGenerator(args.model)
        inpainter = Inpainter(generator, generator.image_size)
    else:
        trained = load_pretrained(args.checkpoint, device)
        inpainter = Inpainter(trained.generator, trained.image_size, device)
    conventions = dict(mask_convention=args.mask_convention, sketch_convention=args.sketch_convention)
    written = []
    for job in tqdm(jobs, desc="inpainting", unit="img", disable=len(jobs) == 1):
        image = load_inputs(job, **conventions, threshold=args.threshold, max_pixels=args.max_pixels)
        save_image(inpainter(*image), job.out)
        written.append(job.out)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    one_line_errors()
    with exit_on_user_error():
        written = run(args)
    print(
        f"wrote {written[0] if len(written) == 1 else f'{len(written)} images to {args.out}'}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
