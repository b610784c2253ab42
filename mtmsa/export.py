"""Export a trained generator (EMA weights) for other runtimes and for sharing.

    python -m mtmsa.export --checkpoint C --out generator.onnx                        # ONNX, dynamic sizes
    python -m mtmsa.export --checkpoint C --out generator.pt --format torchscript     # traced TorchScript
    python -m mtmsa.export --checkpoint C --out model_dir --format safetensors        # weights + model card

(``mtmsa-export`` is the same command.) ``--checkpoint`` is a .ckpt written by mtmsa.train or a folder
written by ``--format safetensors``. The work is done in :mod:`mtmsa.inference.export` and
:mod:`mtmsa.inference.pretrained`; bad input ends in one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mtmsa.inference.export import FORMATS, export_onnx, export_torchscript
from mtmsa.inference.pretrained import load_pretrained, save_pretrained, training_record
from mtmsa.utils.cli import exit_on_user_error, one_line_errors, program_name
from mtmsa.utils.errors import UserInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name("mtmsa.export"),
        description="Write a trained generator (EMA weights) as ONNX (dynamic batch, height and width), "
        "TorchScript, or a safetensors folder with its configuration and a model card.",
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        type=Path,
        help="a .ckpt written by mtmsa.train, or a safetensors folder",
    )
    parser.add_argument(
        "--out", required=True, type=Path, help="output file (onnx, torchscript) or folder (safetensors)"
    )
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="what to write (default: onnx)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    return parser


def run(args: argparse.Namespace) -> Path:
    """Export ``args.checkpoint`` to ``args.out`` in ``args.format``; returns what was written."""
    if args.out.exists() and not args.force:
        raise UserInputError(f"--out {args.out} exists; choose another path or pass --force to replace it")
    if args.out.resolve() == args.checkpoint.resolve():
        raise UserInputError(f"--out {args.out} is the checkpoint itself; write the export somewhere else")
    if args.format != "safetensors" and args.out.is_dir():
        raise UserInputError(f"--out {args.out} is a folder; --format {args.format} writes one file")
    trained = load_pretrained(args.checkpoint)
    if args.format == "torchscript" and getattr(trained.generator, "fill_blend", None) is not None:
        raise UserInputError(
            f"{args.checkpoint} has the fill blend (model.generator.fill_blend): tracing would unroll its "
            "biharmonic solve into tens of thousands of steps; export it with --format onnx (one loop per "
            "level) or --format safetensors"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "safetensors":
        return save_pretrained(trained, args.out, training_record(args.checkpoint))
    writer = export_onnx if args.format == "onnx" else export_torchscript
    return writer(trained, args.out)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    one_line_errors()
    start = time.perf_counter()
    with exit_on_user_error():
        written = run(args)
    print(f"wrote {written} ({args.format}, {time.perf_counter() - start:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
