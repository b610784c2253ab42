"""Time and peak memory of the attention modules: fused MTMSA, its reference path, contextual attention.

    python experiments/bench_attention.py --out experiments/attention_results.md
    python experiments/bench_attention.py --device cuda --dtype bfloat16

Every case runs in a fresh subprocess (forward under ``torch.no_grad``): a tiny 8x8 forward first loads
kernels and thread pools, then one full-size forward gives the peak memory, then ``--repeats`` timed
forwards give the median time. Peak memory on CPU is the growth of the process's peak resident set
(``ru_maxrss``) over that full-size forward, inputs and weights excluded; on CUDA it is
``max_memory_allocated`` over the forward. FLOPs are counted with ``FlopCounterMode`` on the reference
path on the meta device, less the hole-key attention the fused path skips, and compared with the FLOP/s of a
4096x4096 matmul measured on the same device, dtype and threads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mtmsa.models.attention import ContextualAttention, TemperatureMaskedAttention, feature_hole, usable_keys

CASES = ("fused", "reference", "contextual")
MATMUL_SIZE = 4096


def build(case: str, args: argparse.Namespace) -> torch.nn.Module:
    if case == "contextual":
        return ContextualAttention(args.channels)
    return TemperatureMaskedAttention(
        args.channels, heads=args.heads, temperature=args.temperature, fused=case == "fused"
    )


def inputs(
    size: int, args: argparse.Namespace, device: str | torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (B,C,size,size) and a centred square hole over a quarter of the area."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(args.batch, args.channels, size, size, generator=generator).to(device, args.dtype)
    mask = torch.zeros(args.batch, 1, size, size, device=device)
    mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    return x, mask


class PeakMemory:
    """Peak memory growth (MiB) over a block, relative to its start."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
        else:
            self.start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.mib = (peak - self.start) / 2**20


def seconds(function, repeats: int, device: torch.device) -> dict[str, float]:
    """Median and minimum wall time of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "min_seconds": min(times)}


@torch.no_grad()
def measure_case(case: str, size: int, args: argparse.Namespace) -> dict[str, float]:
    """Runs in the subprocess: peak memory of one forward, then the median time."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    if case == "matmul":
        a, b = (torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, dtype=args.dtype) for _ in range(2))
        a @ b
        timing = seconds(lambda: a @ b, args.repeats, device)
        return {**timing, "flops_per_s": 2 * MATMUL_SIZE**3 / timing["seconds"]}
    module = build(case, args).to(device, args.dtype).eval()
    module(*inputs(8, args, device))
    x, mask = inputs(size, args, device)
    with PeakMemory(device) as memory:
        module(x, mask)
    return {**seconds(lambda: module(x, mask), args.repeats, device), "peak_mib": memory.mib}


def count_flops(case: str, size: int, args: argparse.Namespace) -> int:
    """FLOPs one forward executes: the reference path counted on the meta device, less, for the fused
    path, the attention on the hole keys it drops (4 * B * HW * dropped * C)."""
    with torch.device("meta"):
        module = build("reference", args).to(args.dtype)
        x, mask = inputs(size, args, "meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x, mask)
    if case != "fused":
        return counter.get_total_flops()
    positions = size * size
    usable, _ = usable_keys(feature_hole(inputs(size, args, "cpu")[1], (size, size)))
    dropped = positions - int(usable.sum(dim=1).max())
    return counter.get_total_flops() - 4 * args.batch * positions * dropped * args.channels


def run_in_subprocess(case: str, size: int, args: argparse.Namespace) -> dict[str, float]:
    options = {
        "--channels": args.channels,
        "--heads": args.heads,
        "--batch": args.batch,
        "--temperature": args.temperature,
        "--device": args.device,
        "--dtype": str(args.dtype).removeprefix("torch."),
        "--threads": torch.get_num_threads(),
        "--repeats": args.repeats,
        "--worker": case,
        "--worker-size": size,
    }
    command = [sys.executable, __file__, *(str(item) for pair in options.items() for item in pair)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise RuntimeError(f"benchmark case {case} at {size}x{size} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(args: argparse.Namespace) -> str:
    size, load = args.size, os.getloadavg()[0]
    matmul = run_in_subprocess("matmul", MATMUL_SIZE, args)
    main = {case: run_in_subprocess(case, size, args) for case in CASES}
    scaling = {
        s: main["fused"] if s == size else run_in_subprocess("fused", s, args) for s in args.memory_sizes
    }
    flops = {case: count_flops(case, size, args) for case in ("fused", "reference")}
    fused, reference = main["fused"], main["reference"]
    fraction = flops["fused"] / fused["seconds"] / matmul["flops_per_s"]
    dtype = str(args.dtype).removeprefix("torch.")
    lines = [
        f"Device {args.device} ({torch.get_num_threads()} threads), {dtype}, torch {torch.__version__}; "
        f"batch {args.batch}, {args.channels} channels, {args.heads} heads, temperature {args.temperature}, "
        f"forward only; median of {args.repeats} runs; load average before the run "
        f"{load:.1f} (2 cores shared with other jobs: compare the min column when it is high).",
        "",
        "| module | positions | median time (ms) | min time (ms) | peak memory (MiB) | GFLOP/s (median) |",
        "|---|---|---|---|---|---|",
    ]
    for case in CASES:
        rate = f"{flops[case] / main[case]['seconds'] / 1e9:.1f}" if case in flops else "-"
        lines.append(
            f"| {case} | {size}x{size} | {main[case]['seconds'] * 1e3:.1f} | {main[case]['min_seconds'] * 1e3:.1f} "
            f"| {main[case]['peak_mib']:.1f} | {rate} |"
        )
    lines += [
        "",
        f"- fused vs reference: {reference['seconds'] / fused['seconds']:.1f}x faster, "
        f"{reference['peak_mib'] / max(fused['peak_mib'], 1e-3):.1f}x less peak memory (targets: 4x, 8x).",
        f"- fused: {flops['fused'] / 1e9:.1f} GFLOP executed per forward (reference: "
        f"{flops['reference'] / 1e9:.1f}; fused drops hole keys), {flops['fused'] / fused['seconds'] / 1e9:.1f} GFLOP/s = "
        f"{100 * fraction:.0f}% of this machine's {MATMUL_SIZE}x{MATMUL_SIZE} matmul "
        f"({matmul['flops_per_s'] / 1e9:.1f} GFLOP/s; target 40%); with minimum times: "
        f"{100 * matmul['min_seconds'] / fused['min_seconds'] * flops['fused'] / (2 * MATMUL_SIZE**3):.0f}%.",
        "",
        "| fused, positions | HW | peak memory (MiB) | MiB per 1k positions | time (ms) |",
        "|---|---|---|---|---|",
    ]
    for s, result in scaling.items():
        lines.append(
            f"| {s}x{s} | {s * s} | {result['peak_mib']:.1f} | {result['peak_mib'] / (s * s / 1e3):.2f} "
            f"| {result['seconds'] * 1e3:.1f} |"
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=64, help="feature positions per side for the main table")
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--temperature", default="learned_map")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--out", default=None, help="also write the markdown table to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-size", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.dtype = getattr(torch, args.dtype)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        print(json.dumps(measure_case(args.worker, args.worker_size, args)))
        return
    table = report(args)
    print(table)
    if args.out:
        with open(args.out, "w") as file:
            file.write(table)


if __name__ == "__main__":
    main()
