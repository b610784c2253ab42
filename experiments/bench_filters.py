"""The window maximum the fills, the sketches, the masks and the metrics use (``mtmsa.utils.filters.window_max``)
against ``torch.nn.functional.max_pool2d`` with the same window, on one CPU thread: median milliseconds of 50 calls.

    python experiments/bench_filters.py
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F

from mtmsa.utils.filters import window_max

CASES = [  # (shape, radius, where it is used)
    ((8, 3, 64, 64), 4, "the bounded fill's border range, a batch of sample tiles"),
    ((1, 3, 512, 512), 4, "the same, one 512x512 photo in the editor"),
    ((8, 1, 64, 64), 1, "3x3: hole growth (fit_hole_ratio), the sketch fidelity's edge maps"),
    ((8, 1, 256, 256), 1, "3x3 at 256x256"),
]


def median_ms(call, repeats: int = 50) -> float:
    for _ in range(5):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    print("| input | radius | use | max_pool2d (ms) | window_max (ms) |\n|---|---|---|---|---|")
    for shape, radius, use in CASES:
        x = torch.randn(*shape)
        assert torch.equal(window_max(x, radius), F.max_pool2d(x, 2 * radius + 1, 1, radius))
        pooled = median_ms(lambda: F.max_pool2d(x, 2 * radius + 1, 1, radius))  # noqa: B023
        sliced = median_ms(lambda: window_max(x, radius))  # noqa: B023
        print(f"| {tuple(shape)} | {radius} | {use} | {pooled:.2f} | {sliced:.2f} |")


if __name__ == "__main__":
    main()
