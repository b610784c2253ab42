"""Throughput of training masks and sketches: the batched on-device generators of mtmsa.data against a
per-sample OpenCV reference of the same distributions, made the way LaMa and DeepFill make them (one sample
at a time, numpy + cv2.line / cv2.circle / cv2.rectangle for masks; cv2.Canny, morphology and
connectedComponentsWithStats for sketches), and the share of one training step that masks + sketches take.

    python experiments/bench_data.py                                 # CPU, 2 threads, runs bench_train.py
    python experiments/bench_data.py --train-step-seconds 12.3       # reuse a measured step time
    python experiments/bench_data.py --device cuda --out table.md    # batched generators on the GPU

The reference generators read their parameters from the same mtmsa/conf/mask and mtmsa/conf/sketch configs (through
the instantiated batched generators), so both sides draw from the same distributions.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mtmsa.conf import CONFIG_DIR
from mtmsa.data.masks import (
    Boxes,
    BrushStrokes,
    FreeFormMasks,
    IrregularStrokes,
    MaskGenerator,
    MixedMasks,
)
from mtmsa.data.sample import SAMPLE_PHOTOS
from mtmsa.data.sketch import EdgeSketches
from mtmsa.utils.images import hole_ratio, to_model_range

MASK_NAMES = sorted(path.stem for path in (CONFIG_DIR / "mask").glob("*.yaml"))


def load_config(group: str, name: str):
    """The object of mtmsa/conf/<group>/<name>.yaml."""
    return instantiate(OmegaConf.load(CONFIG_DIR / group / f"{name}.yaml"))


# Per-sample OpenCV reference masks (DeepFill v2 / LaMa style), parameters from the batched generators.


def draw_brush_strokes(strokes: BrushStrokes, mask: np.ndarray, rng: np.random.Generator) -> None:
    """DeepFill v2 brush strokes onto ``mask`` (H,W) uint8: zig-zag polylines of cv2.line + cv2.circle."""
    height, width = mask.shape
    mean_length = strokes.length * math.hypot(height, width)
    for _ in range(rng.integers(strokes.strokes[0], strokes.strokes[1] + 1)):
        low = strokes.mean_angle - rng.uniform(0, strokes.angle_range)
        high = strokes.mean_angle + rng.uniform(0, strokes.angle_range)
        thickness = max(1, int(rng.uniform(*strokes.width) * min(height, width)))
        point = (rng.uniform(0, width - 1), rng.uniform(0, height - 1))
        for index in range(rng.integers(strokes.vertices[0], strokes.vertices[1] + 1)):
            angle = rng.uniform(low, high)
            angle = 2 * math.pi - angle if index % 2 == 0 else angle
            length = np.clip(rng.normal(mean_length, mean_length / 2), 0, 2 * mean_length)
            end = (
                float(np.clip(point[0] + length * math.cos(angle), 0, width - 1)),
                float(np.clip(point[1] + length * math.sin(angle), 0, height - 1)),
            )
            start_px, end_px = (round(point[0]), round(point[1])), (round(end[0]), round(end[1]))
            cv2.line(mask, start_px, end_px, 1, thickness)
            cv2.circle(mask, start_px, thickness // 2, 1, -1)
            cv2.circle(mask, end_px, thickness // 2, 1, -1)
            point = end


def draw_irregular_strokes(strokes: IrregularStrokes, mask: np.ndarray, rng: np.random.Generator) -> None:
    """LaMa irregular strokes onto ``mask`` (H,W) uint8: each segment its own angle, length and width."""
    height, width = mask.shape
    size = min(height, width)
    for stroke in range(rng.integers(strokes.strokes[0], strokes.strokes[1] + 1)):
        point = (rng.uniform(0, width - 1), rng.uniform(0, height - 1))
        for _ in range(rng.integers(strokes.segments[0], strokes.segments[1] + 1)):
            angle = rng.uniform(0, strokes.max_angle)
            angle = 2 * math.pi - angle if stroke % 2 == 0 else angle
            length = rng.uniform(*strokes.length) * size
            thickness = max(1, int(rng.uniform(*strokes.width) * size))
            end = (
                float(np.clip(point[0] + length * math.sin(angle), 0, width - 1)),
                float(np.clip(point[1] + length * math.cos(angle), 0, height - 1)),
            )
            cv2.line(mask, (round(point[0]), round(point[1])), (round(end[0]), round(end[1])), 1, thickness)
            point = end


def draw_boxes(boxes: Boxes, mask: np.ndarray, rng: np.random.Generator) -> None:
    """Filled cv2.rectangle boxes onto ``mask`` (H,W) uint8, sides and margin as in :class:`Boxes`."""
    height, width = mask.shape
    size = min(height, width)
    margin = boxes.margin * size
    for _ in range(rng.integers(boxes.count[0], boxes.count[1] + 1)):
        box_w = min(rng.uniform(*boxes.size) * size, width - 2 * margin)
        box_h = min(rng.uniform(*boxes.size) * size, height - 2 * margin)
        x0 = margin + rng.uniform() * (width - 2 * margin - box_w)
        y0 = margin + rng.uniform() * (height - 2 * margin - box_h)
        cv2.rectangle(mask, (round(x0), round(y0)), (round(x0 + box_w) - 1, round(y0 + box_h) - 1), 1, -1)


STROKE_DRAWERS = {BrushStrokes: draw_brush_strokes, IrregularStrokes: draw_irregular_strokes}


def reference_mask(masks: MaskGenerator, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """One (H,W) uint8 0/1 mask from the distribution of the batched generator ``masks``."""
    if masks.hole_ratio is not None:
        raise ValueError(
            "the OpenCV reference has no hole-ratio rejection; use a mask config with hole_ratio: null"
        )
    if isinstance(masks, MixedMasks):
        choice = min(
            int(np.searchsorted(masks.cumulative.numpy(), rng.uniform(), side="right")), len(masks.names) - 1
        )
        return reference_mask(masks.generators[choice], height, width, rng)
    if not isinstance(masks, FreeFormMasks):
        raise TypeError(f"no OpenCV reference for mask generator {type(masks).__name__}")
    mask = np.zeros((height, width), np.uint8)
    if masks.strokes is not None:
        STROKE_DRAWERS[type(masks.strokes)](masks.strokes, mask, rng)
    if masks.boxes is not None:
        draw_boxes(masks.boxes, mask, rng)
    return mask


def reference_masks(
    masks: MaskGenerator, batch_size: int, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    """(B,1,H,W) uint8 0/1, made one sample at a time."""
    return np.stack([reference_mask(masks, height, width, rng) for _ in range(batch_size)])[:, None]


def reference_sketch(
    sketches: EdgeSketches, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One (H,W) uint8 0/1 sketch of an (H,W,3) uint8 image and its (H,W) 0/1 mask, the steps of
    :class:`EdgeSketches` with OpenCV: Gaussian blur, Canny with hysteresis at thresholds relative to the
    image's 99.9% Sobel-magnitude quantile, fragments joined by dilation and measured with
    connectedComponentsWithStats, a bicubic drop field, a cv2.remap wobble, and the dilated hole."""
    height, width = mask.shape
    if rng.uniform() >= sketches.p:
        return np.zeros((height, width), np.uint8)
    size = min(height, width)
    blurred = cv2.GaussianBlur(
        cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (0, 0), max(0.5, sketches.blur * size)
    )
    magnitude = cv2.magnitude(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
    level = max(float(np.quantile(magnitude, 0.999)), 0.1 * 8 * 255)  # kornia's Sobel is normalised by 8
    high = rng.uniform(*sketches.high_threshold) * level
    edges = cv2.Canny(blurred, high * rng.uniform(*sketches.low_ratio), high, L2gradient=True) > 0
    cell = max(1, round(sketches.join * size))
    joined = cv2.dilate(edges.astype(np.uint8), np.ones((cell, cell), np.uint8))
    count, labels, _, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    lengths = np.bincount(labels[edges], minlength=count)
    long_enough = lengths >= max(1, round(sketches.min_length * size))
    long_enough[0] = False
    strokes = edges & long_enough[labels]
    cells = sketches.drop_cells
    field = cv2.resize(
        rng.uniform(size=(cells, cells)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
    strokes &= field >= np.quantile(field, rng.uniform(*sketches.drop))
    cells = sketches.warp_cells
    shift = rng.normal(0, sketches.warp * size, (cells, cells, 2)).astype(np.float32)
    shift = cv2.resize(shift, (width, height), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = (
        cv2.remap(strokes.astype(np.float32), xs + shift[..., 0], ys + shift[..., 1], cv2.INTER_LINEAR) > 0.3
    )
    radius = sketches.margin_pixels(height, width)
    hole = cv2.dilate(mask, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)) > 0
    return (warped & hole).astype(np.uint8)


def reference_sketches(
    sketches: EdgeSketches, images: np.ndarray, masks: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(B,H,W,3) uint8 images, (B,1,H,W) 0/1 masks -> (B,1,H,W) uint8 sketches, one sample at a time."""
    sketches_of = [
        reference_sketch(sketches, image, mask[0], rng) for image, mask in zip(images, masks, strict=True)
    ]
    return np.stack(sketches_of)[:, None]


# Timing.


def photo_crops(count: int, size: int, seed: int = 0) -> np.ndarray:
    """(count, size, size, 3) uint8 random crops of scikit-image's photos (resized to a short side of 1.25 x size)."""
    rng = np.random.default_rng(seed)
    photos = []
    for load in SAMPLE_PHOTOS.values():
        photo = load()
        scale = 1.25 * size / min(photo.shape[:2])
        photos.append(
            cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)), cv2.INTER_AREA)
        )
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        top = rng.integers(0, photo.shape[0] - size + 1)
        left = rng.integers(0, photo.shape[1] - size + 1)
        crops.append(photo[top : top + size, left : left + size])
    return np.stack(crops)


def median_seconds(call: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall time of ``call`` over ``repeats`` runs after one warm-up (synchronised on GPUs)."""
    times = []
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def train_step_seconds(device: torch.device) -> float:
    """s / iteration of experiments/bench_train.py (paper-scale model, 256 px, batch 8) on ``device``."""
    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("bench_train.py"))
    bench_train = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_train)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        bench_train.main(["trainer=gpu"] if device.type == "cuda" else [])
    lines = [line for line in captured.getvalue().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    values = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    return float(dict(zip(header, values, strict=True))["s / iteration"])


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads)"


def throughput_table(args: argparse.Namespace, device: torch.device) -> list[str]:
    """Rows: per mask config and the edges sketch, per second batched on ``device`` and per-sample on CPU."""
    size, batch = args.size, args.batch
    crops = photo_crops(batch, size)
    images = to_model_range(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255).to(device)
    generator = torch.Generator(device=device).manual_seed(0)
    rng = np.random.default_rng(0)
    rows = [
        f"| generator | batched on {device_name(device)} (/s) | per-sample OpenCV, CPU (/s) | batched / per-sample "
        "| mean hole ratio batched | mean hole ratio OpenCV |",
        "|---|---|---|---|---|---|",
    ]
    for name in args.masks:
        masks = load_config("mask", name)
        batched = median_seconds(
            lambda m=masks: m(batch, size, size, generator=generator), args.repeats, device
        )
        reference = median_seconds(
            lambda m=masks: reference_masks(m, batch, size, size, rng), args.repeats, device
        )
        ratio = hole_ratio(masks(256, size, size, generator=generator)).mean().item()
        reference_ratio = reference_masks(masks, 256, size, size, rng).mean()
        rows.append(
            f"| mask={name} | {batch / batched:.0f} | {batch / reference:.0f} | {reference / batched:.2f}x "
            f"| {ratio:.3f} | {reference_ratio:.3f} |"
        )
    sketches = load_config("sketch", "edges")
    masks = load_config("mask", "deepfill")(batch, size, size, generator=torch.Generator().manual_seed(1))
    device_masks, numpy_masks = masks.to(device), masks.numpy().astype(np.uint8)
    batched = median_seconds(
        lambda: sketches(images, device_masks, generator=generator), args.repeats, device
    )
    reference = median_seconds(
        lambda: reference_sketches(sketches, crops, numpy_masks, rng), args.repeats, device
    )
    rows.append(
        f"| sketch=edges (p={sketches.p:g}, deepfill masks) | {batch / batched:.0f} | {batch / reference:.0f} "
        f"| {reference / batched:.2f}x | | |"
    )
    return rows


def share_table(args: argparse.Namespace, device: torch.device, step_seconds: float) -> list[str]:
    """Rows: time of masks + edges sketches for one training batch (``args.train_batch``) on ``device``, and
    its share of a training step of ``step_seconds``."""
    size, batch = args.size, args.train_batch
    images = to_model_range(torch.from_numpy(photo_crops(batch, size)).permute(0, 3, 1, 2).float() / 255).to(
        device
    )
    sketches = load_config("sketch", "edges")
    generator = torch.Generator(device=device).manual_seed(0)
    rows = [
        f"| masks + sketch=edges, batch {batch} | ms on {device_name(device)} | share of a training step "
        f"({step_seconds:.2f} s) |",
        "|---|---|---|",
    ]
    for name in args.masks:
        masks = load_config("mask", name)

        def make(m=masks) -> torch.Tensor:
            return sketches(images, m(batch, size, size, generator=generator), generator=generator)

        seconds = median_seconds(make, args.repeats, device)
        rows.append(f"| mask={name} | {1000 * seconds:.1f} | {100 * seconds / step_seconds:.2f}% |")
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="device of the batched generators: cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the throughput table")
    parser.add_argument("--train-batch", type=int, default=8, help="batch size of a training step")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per entry (median reported)")
    parser.add_argument(
        "--masks", nargs="+", default=MASK_NAMES, choices=MASK_NAMES, help="conf/mask options"
    )
    parser.add_argument(
        "--train-step-seconds",
        type=float,
        default=None,
        help="s / iteration of a training step; default: measure it with experiments/bench_train.py",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the tables (markdown) to this file"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    load_before = load_average()
    step_seconds = args.train_step_seconds or train_step_seconds(device)
    throughput = throughput_table(args, device)
    share = share_table(args, device, step_seconds)
    lines = [
        f"Masks and sketches per second at {args.size}x{args.size}, batch {args.batch}:",
        "",
        *throughput,
        "",
        f"Share of one training step (paper-scale model, {args.size}x{args.size}, batch {args.train_batch}):",
        "",
        *share,
        "",
        f"Load average (1/5/15 min) before: {load_before}; after: {load_average()}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return text


if __name__ == "__main__":
    main()
