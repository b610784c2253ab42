"""Does a learned softmax temperature beat a constant one when the hole must be copied from distant context?

    python experiments/long_range_copy/run.py                     # the whole grid, 5 seeds
    python experiments/long_range_copy/run.py --seeds 1           # one seed: a first answer
    python experiments/long_range_copy/run.py --variants none "learned_map h4" --models testbed
    python experiments/long_range_copy/run.py --report-only       # redo results.md and the plots

Tasks (generated on the fly from the run's seed; a fixed validation set per task):

- ``copy`` (:mod:`copy_task`): the hole's content is a block copied from a random place, aligned with the
  attention's 4-pixel grid, found by the ring of known cells it shares with its source; a decoy shares
  half of that ring and has other content, so how sharply the attention selects matters.
- ``texture`` (:mod:`textures`): near-periodic bricks, tiles and weaves (noise, a small distortion) with
  periods of several cells and a box hole about a period wide.

Models: the real generator (:class:`mtmsa.models.generator.InpaintGenerator`, each variant in its attention
slot) and the shallow :class:`testbed.Testbed` around the attention alone. Variants: ``none``, DeepFill
``contextual``, MTMSA ``constant`` at each of ``--constants``, ``learned_scalar`` and ``learned_map``
(starting at ``--learned-init``), MTMSA with 1 and 4 heads, every one built from
``mtmsa/conf/model/attention/<name>.yaml`` with heads and temperature overridden. Training: the
generator's loss without the discriminator (hole L1 of both stages), Adam, the same iterations, batch and
learning rate for every variant; a seed sets the initial weights and the training batches.

Measured on the validation set: hole PSNR and L1 of the composited fill (in [0, 1]); for MTMSA the
attention mass that hole queries put on their true source (for ``copy`` the cell the hole's content was
copied from, for ``texture`` every cell whose true content matches, one or more periods away), the mean temperature per head at hole
positions, and its course over training. References: mean fill, OpenCV Telea, pull-push (the initial
fill both models start from) and the oracle copy (the true source; for textures the best translation).

Writes to ``--out`` (default: next to this file) ``results.json`` (``{"settings", "references", "runs",
"machine", "wall_s"}``, one run per model, task, variant, heads and seed), ``examples.pt``, and through
:mod:`report` ``results.md``, ``plot.png`` and ``temperatures.png``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from functools import cache
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import copy_task  # noqa: E402
import report  # noqa: E402
import textures  # noqa: E402
from testbed import Testbed  # noqa: E402

from mtmsa.conf import CONFIG_DIR  # noqa: E402
from mtmsa.evaluation.baselines import mean_fill, telea_fill  # noqa: E402
from mtmsa.evaluation.metrics import METRIC_NAMES, per_image_metrics  # noqa: E402
from mtmsa.models.attention import feature_hole  # noqa: E402
from mtmsa.models.generator import FEATURE_STRIDE, InpaintGenerator  # noqa: E402
from mtmsa.models.initial_fill import pull_push_fill  # noqa: E402
from mtmsa.models.losses import InpaintingLoss  # noqa: E402
from mtmsa.utils.images import composite, to_unit_range  # noqa: E402

ATTENTION_CONFIGS = CONFIG_DIR / "model" / "attention"
MODELS = ("testbed", "generator")
TASKS = ("copy", "texture")
VALIDATION_SEED = 1_000_003
EXAMPLES = 4
MATCH_RMS = 0.15
"""Texture task: a key is a source for a hole query when their true 4x4 cells differ by less than this RMS
(images in [-1, 1]; copies one period away differ by the noise and the distortion only)."""
PSNR, L1 = METRIC_NAMES.index("psnr_hole"), METRIC_NAMES.index("l1_hole")


@dataclass(frozen=True)
class Variant:
    """``attention``: ``none``, ``contextual`` or an MTMSA temperature mode; ``heads`` and ``temperature``
    (the constant, or where a learned one starts) for MTMSA."""

    attention: str
    heads: int | None = None
    temperature: float | None = None

    @property
    def mtmsa(self) -> bool:
        return self.heads is not None

    @property
    def name(self) -> str:
        """The ``variant`` of results.json: none, contextual, constant 0.03, learned_scalar, learned_map."""
        return f"constant {self.temperature:g}" if self.attention == "constant" else self.attention

    @property
    def label(self) -> str:
        return f"{self.name} h{self.heads}" if self.mtmsa else self.name


@dataclass(frozen=True)
class Settings:
    """The budget every run gets and the tasks' geometry."""

    size: int = 48
    width: int = 8  # the generator's; 4 * width = 32 attention channels, as the test bed's
    batch: int = 8
    iterations: int = 200
    lr: float = 2e-3
    validation_images: int = 128
    learned_init: float = 0.1
    constants: tuple[float, ...] = (0.03, 0.1, 0.3)
    copy_hole: int = 2  # cells
    copy_ring: int = 2  # cells
    copy_decoys: int = 1
    log_every: int = 10


def variants(settings: Settings) -> list[Variant]:
    mtmsa = [
        *(("constant", t) for t in settings.constants),
        ("learned_scalar", settings.learned_init),
        ("learned_map", settings.learned_init),
    ]
    return [
        Variant("none"),
        Variant("contextual"),
        *(Variant(mode, heads, t) for heads in (1, 4) for mode, t in mtmsa),
    ]


def make_batch(task: str, batch: int, settings: Settings, generator: torch.Generator):
    """A batch of ``task`` with fields images, masks and oracle (see the module docstring)."""
    if task == "copy":
        hole = (settings.copy_hole, settings.copy_hole)
        return copy_task.copy_batch(
            batch, settings.size, generator, hole=hole, ring=settings.copy_ring, decoys=settings.copy_decoys
        )
    return textures.texture_batch(batch, settings.size, generator)


@cache
def validation_set(task: str, settings: Settings):
    return make_batch(
        task, settings.validation_images, settings, torch.Generator().manual_seed(VALIDATION_SEED)
    )


def attention_factory(variant: Variant):
    """The attention config of ``variant`` with heads and temperature overridden, as a factory."""
    config = OmegaConf.load(ATTENTION_CONFIGS / f"{'mtmsa' if variant.mtmsa else variant.attention}.yaml")
    if variant.mtmsa:
        config.heads = variant.heads
        config.temperature.mode = variant.attention
        config.temperature.init = variant.temperature
    return hydra.utils.instantiate(config)


def build_model(model: str, variant: Variant, settings: Settings) -> nn.Module:
    if model == "generator":
        return InpaintGenerator(width=settings.width, attention=attention_factory(variant))
    return Testbed(attention_factory(variant), channels=4 * settings.width)


def attention_slot(model: nn.Module) -> tuple[nn.Module, str]:
    """(module holding the attention, its attribute name)."""
    return (model.refinement if isinstance(model, InpaintGenerator) else model), "attention"


class _ReturningAttention(nn.Module):
    """Calls the wrapped attention with ``return_attention=True`` (the probabilities, for measuring)."""

    def __init__(self, attention: nn.Module) -> None:
        super().__init__()
        self.inner = attention

    def forward(self, x, mask, return_attention=False, guide=None):
        return self.inner(x, mask, return_attention=True, guide=guide)


@contextmanager
def returning_attention(model: nn.Module) -> Iterator[None]:
    holder, name = attention_slot(model)
    inner = getattr(holder, name)
    setattr(holder, name, _ReturningAttention(inner))
    try:
        yield
    finally:
        setattr(holder, name, inner)


def hole_metrics(filled: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(B, 2): hole PSNR (dB) and hole L1 per image of a composited fill, measured in [0, 1]."""
    return per_image_metrics(to_unit_range(filled), to_unit_range(images), masks)[:, [PSNR, L1]]


def cell_distances(images: torch.Tensor) -> torch.Tensor:
    """(B, N, N) RMS difference between cells i and j of the images (N = h * w cells of 4x4 pixels)."""
    cells = F.pixel_unshuffle(images, FEATURE_STRIDE).flatten(2).transpose(1, 2)  # (B, N, 48)
    return torch.cdist(cells, cells) / cells.shape[-1] ** 0.5


def matching_keys(images: torch.Tensor) -> torch.Tensor:
    """(B, N, N) True where cells i and j of the true image match (:data:`MATCH_RMS`)."""
    return cell_distances(images) < MATCH_RMS


def source_keys(batch, start: int, stop: int) -> torch.Tensor:
    """(B, N, N) True at (query, key) where the key holds the query's true content: for the copy task the
    cell its offset points to, for textures every cell whose true content matches (:func:`matching_keys`)."""
    images = batch.images[start:stop]
    if not hasattr(batch, "offsets"):
        return matching_keys(images)
    b, _, height, width = images.shape
    h, w = height // FEATURE_STRIDE, width // FEATURE_STRIDE
    rows, columns = torch.meshgrid(
        torch.arange(h, device=images.device), torch.arange(w, device=images.device), indexing="ij"
    )
    offsets = batch.offsets[start:stop]
    source_rows = (rows[None] + offsets[:, 0, None, None]).clamp(0, h - 1)
    source_columns = (columns[None] + offsets[:, 1, None, None]).clamp(0, w - 1)
    sources = (source_rows * w + source_columns).flatten(1)  # (B, N): meaningful at hole queries
    return F.one_hot(sources, h * w).bool()


def hole_temperatures(temperature: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean temperature per head over hole positions: (heads,)."""
    hole = feature_hole(masks, temperature.shape[-2:]).to(temperature.dtype)
    return (temperature * hole).sum(dim=(0, 2, 3)) / hole.sum().clamp_min(1)


@torch.no_grad()
def evaluate(model: nn.Module, variant: Variant, validation) -> dict:
    """Hole metrics, and for MTMSA the mass on matching keys and the temperatures, on ``validation``."""
    model.eval()
    metrics, mass, temperature_sum, examples = [], [], 0.0, {}
    for start in range(0, len(validation.images), 32):
        images, masks = validation.images[start : start + 32], validation.masks[start : start + 32]
        stop = start + len(images)
        if variant.mtmsa:
            with returning_attention(model):
                output = model(images, masks, torch.zeros_like(masks))
            aux = output.aux
            hole = feature_hole(masks, aux.temperature.shape[-2:]).flatten(1)  # (B, N) hole queries
            on_match = (aux.attention * source_keys(validation, start, stop)[:, None]).sum(
                dim=-1
            )  # (B, heads, N)
            mass.append(on_match.transpose(1, 2)[hole])  # (hole queries, heads)
            temperature_sum = temperature_sum + hole_temperatures(aux.temperature, masks) * len(images)
            if start == 0:
                examples["temperature_map"] = aux.temperature[:EXAMPLES].clone()
        else:
            output = model(images, masks, torch.zeros_like(masks))
        filled = composite(output.refined, images, masks)
        metrics.append(hole_metrics(filled, images, masks))
        if start == 0:
            examples["fill"] = filled[:EXAMPLES].clone()
    values = torch.cat(metrics)
    result = {"psnr_hole": float(values[:, 0].mean()), "l1_hole": float(values[:, 1].mean())}
    if variant.mtmsa:
        per_head = torch.cat(mass).mean(dim=0)
        result["mass_on_source"] = float(per_head.mean())
        result["mass_on_source_per_head"] = per_head.tolist()
        result["temperature"] = (temperature_sum / len(validation.images)).tolist()
    return result, examples


def on_device(batch, device: str):
    """A task batch (a NamedTuple of tensors) on ``device``."""
    return type(batch)(*(t.to(device) for t in batch))


def train_run(
    model_name: str, task: str, variant: Variant, seed: int, settings: Settings, device: str = "cpu"
) -> tuple[dict, dict]:
    """Trains one model from ``seed`` for the fixed budget and evaluates it on the task's validation set.
    Batches are drawn on the CPU (the same on every device) and moved to ``device``."""
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)  # denormals are slow on the CPU (experiments/README.md, "Quickstart")
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = build_model(model_name, variant, settings).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, betas=(0.5, 0.999))
    loss = InpaintingLoss()
    data = torch.Generator().manual_seed(seed * 1000 + TASKS.index(task))
    history = {"step": [], "temperature": []}
    for step in range(settings.iterations):
        batch = on_device(make_batch(task, settings.batch, settings, data), device)
        output = model(batch.images, batch.masks, torch.zeros_like(batch.masks))
        terms = loss.generator_loss(output, batch.images, batch.masks, fake_logits=None)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        if variant.mtmsa and (step % settings.log_every == 0 or step == settings.iterations - 1):
            history["step"].append(step)
            history["temperature"].append(
                hole_temperatures(output.aux.temperature.detach(), batch.masks).tolist()
            )
    result, examples = evaluate(model, variant, on_device(validation_set(task, settings), device))
    examples = {name: tensor.cpu() for name, tensor in examples.items()}
    run = {
        "model": model_name,
        "task": task,
        "variant": variant.name,
        "label": variant.label,
        "heads": variant.heads,
        "seed": seed,
        **result,
        "wall_s": time.perf_counter() - start,
    }
    if variant.mtmsa:
        run["temperature_history"] = history
    return run, examples


def reference_rows(settings: Settings, tasks: tuple[str, ...]) -> list[dict]:
    """Classical fills and the oracle copy on each task's validation set."""
    rows = []
    for task in tasks:
        validation = validation_set(task, settings)
        images, masks = validation.images, validation.masks
        for name, fill in (
            ("mean fill", mean_fill(images, masks)),
            ("OpenCV Telea", telea_fill(images, masks)),
            ("pull-push (initial fill)", pull_push_fill(images * (1 - masks), masks)),
            ("oracle copy", validation.oracle),
        ):
            values = hole_metrics(composite(fill, images, masks), images, masks)
            rows.append(
                {
                    "task": task,
                    "variant": name,
                    "psnr_hole": float(values[:, 0].mean()),
                    "l1_hole": float(values[:, 1].mean()),
                }
            )
    return rows


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_grid(args: argparse.Namespace, settings: Settings) -> None:
    chosen = [v for v in variants(settings) if args.variants is None or v.label in args.variants]
    jobs = [
        (model, task, variant, seed)
        for seed in range(args.seeds)
        for model in args.models
        for task in args.tasks
        for variant in chosen
    ]
    start = time.perf_counter()
    runs, examples = [], {}
    # spawn: workers start clean (no copied CUDA or thread-pool state), on every device alike
    with ProcessPoolExecutor(
        max_workers=args.workers, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = {pool.submit(train_run, *job, settings, args.device): job for job in jobs}
        for future in tqdm(as_completed(futures), total=len(jobs), desc="long-range copy runs", unit="run"):
            run, fills = future.result()
            runs.append(run)
            if run["seed"] == 0:
                examples[(run["model"], run["task"], run["label"])] = fills
            tqdm.write(
                f"{run['model']} {run['task']} {run['label']} seed {run['seed']}: "
                f"hole PSNR {run['psnr_hole']:.2f} dB ({run['wall_s']:.0f} s)"
            )
    order = {job: i for i, job in enumerate((m, t, v.label, s) for m, t, v, s in jobs)}
    runs.sort(key=lambda run: order[(run["model"], run["task"], run["label"], run["seed"])])
    for task in args.tasks:
        validation = validation_set(task, settings)
        shown = slice(0, EXAMPLES)  # cloned below: a slice would save the whole validation set's storage
        examples[("input", task)] = {"fill": (validation.images * (1 - validation.masks))[shown].clone()}
        examples[("truth", task)] = {"fill": validation.images[shown].clone()}
        examples[("oracle copy", task)] = {"fill": validation.oracle[shown].clone()}
    results = {
        "settings": asdict(settings),
        "references": reference_rows(settings, tuple(args.tasks)),
        "runs": runs,
        "machine": machine(),
        "workers": args.workers,
        "device": args.device,
        "wall_s": time.perf_counter() - start,
        "command": " ".join(sys.argv),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    torch.save(examples, args.out / "examples.pt")
    report.write(results, examples, args.out)
    print(
        f"{len(runs)} runs in {results['wall_s'] / 60:.1f} min; wrote results.json, results.md and plots to {args.out}"
    )


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Settings]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per model, task and variant")
    parser.add_argument("--variants", nargs="+", default=None, help="labels, e.g. none 'learned_map h4'")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="runs in parallel, 1 thread each"
    )
    parser.add_argument(
        "--device", default="cpu", help="where runs train, e.g. cuda (batches are drawn on the CPU)"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: next to this file)")
    parser.add_argument(
        "--report-only", action="store_true", help="redo results.md and the plots from results.json"
    )
    defaults = Settings()
    for setting in fields(Settings):
        if setting.name != "constants":
            parser.add_argument(
                f"--{setting.name.replace('_', '-')}", type=type(getattr(defaults, setting.name))
            )
    parser.add_argument(
        "--constants", type=float, nargs="+", default=None, help="MTMSA constant temperatures"
    )
    args = parser.parse_args(argv)
    overrides = {
        s.name: tuple(v) if s.name == "constants" else v
        for s in fields(Settings)
        if (v := getattr(args, s.name)) is not None
    }
    settings = replace(defaults, **overrides)
    known = {v.label for v in variants(settings)}
    unknown = sorted(set(args.variants or []) - known)
    if unknown:
        parser.error(f"unknown --variants {unknown}; choose from {sorted(known)}")
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args, settings


def main(argv: list[str] | None = None) -> None:
    args, settings = parse_args(argv)
    if args.report_only:
        results = json.loads((args.out / "results.json").read_text())
        report.write(results, torch.load(args.out / "examples.pt"), args.out)
        return
    run_grid(args, settings)


if __name__ == "__main__":
    main()
