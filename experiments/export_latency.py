"""CPU latency of the generator in PyTorch and in ONNX Runtime, at 256x256 and 512x512.

    python experiments/export_latency.py                       # paper-scale model (width 24), untrained
    python experiments/export_latency.py --checkpoint <ckpt>   # a trained one (the weights do not change the time)

One generator forward (batch 1, a centred square hole over a quarter of the image, no sketch), median of
``--repeats`` after one warm-up call, for: PyTorch eager (the default fused attention, usable keys gathered
first), PyTorch with the export's fixed-shape paths (all keys, unusable ones masked in the kernel), and the
exported ONNX graph in ONNX Runtime (CPU provider, graph optimisations on). Both runtimes get ``--threads``
threads. The ONNX file is written once to a temporary folder (about a minute for the paper-scale model).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mtmsa.inference.checkpoints import TrainedGenerator, build_generator
from mtmsa.inference.export import example_inputs, export_onnx, fixed_shape_copy
from mtmsa.inference.pretrained import load_pretrained
from mtmsa.utils.config import compose_config


def paper_scale_model(image_size: int) -> TrainedGenerator:
    """The default model config's generator (``model=default``), freshly initialised."""
    from omegaconf import OmegaConf

    cfg = compose_config("train", ["model=default"], Path(tempfile.mkdtemp()))
    config = OmegaConf.to_container(cfg, resolve=True)
    config["dataset"]["image_size"] = image_size
    torch.manual_seed(0)
    return TrainedGenerator(build_generator(config["model"]).eval().requires_grad_(False), config)


def median_seconds(repeats: int, call: Callable[..., object], *arguments: object) -> float:
    """Median wall time of ``call(*arguments)`` over ``repeats`` calls after one warm-up call."""
    call(*arguments)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call(*arguments)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="a .ckpt or safetensors folder (default: paper scale)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trained = load_pretrained(args.checkpoint) if args.checkpoint else paper_scale_model(max(args.sizes))
    generator, fixed = trained.generator, fixed_shape_copy(trained.generator)

    import onnxruntime

    folder = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    export_onnx(trained, folder / "generator.onnx")
    export_seconds = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    session = onnxruntime.InferenceSession(
        str(folder / "generator.onnx"), options, providers=["CPUExecutionProvider"]
    )

    parameters = sum(p.numel() for p in generator.parameters())
    print(
        f"model: {parameters:,} parameters; ONNX export {export_seconds:.0f} s; {args.threads} thread(s); "
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )
    print("| size | PyTorch eager (ms) | PyTorch fixed-shape (ms) | ONNX Runtime (ms) | ORT / eager |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        images, masks, sketches = example_inputs(generator, (1, size, size))
        masks.zero_()
        masks[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
        feeds = {"images": images.numpy(), "masks": masks.numpy(), "sketches": sketches.numpy()}
        with torch.no_grad():
            eager = median_seconds(args.repeats, generator, images, masks, sketches)
            fixed_time = median_seconds(args.repeats, fixed, images, masks, sketches)
        onnx = median_seconds(args.repeats, session.run, None, feeds)
        print(
            f"| {size}x{size} | {1000 * eager:.0f} | {1000 * fixed_time:.0f} | {1000 * onnx:.0f} | "
            f"{onnx / eager:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
