"""Long-range copy ablation: which attention in the generator's attention slot learns to copy distant context?

    python experiments/long_range_copy/run.py                 # the full ablation (~35 min on 2 CPU cores)
    python experiments/long_range_copy/run.py --quick         # a 1-minute smoke version, into a temp folder
    python experiments/long_range_copy/run.py --report-only   # redo results.md and plot.png from results.json

Data: :mod:`patterns` (periodic textures, box holes larger than the period, distractors outside the hole):
a training pool and a validation set made once from two fixed seeds; each run draws its batches from the
pool in an order given by its seed (the seed also sets the initial weights). Model: the real :class:`mtmsa.models.generator.InpaintGenerator` at small width with
each attention variant built from ``mtmsa/conf/model/attention/<name>.yaml`` (the factories the configs use) with
``heads`` and ``temperature.mode`` overridden. Training: the reconstruction loss only
(``InpaintingLoss.generator_loss(..., fake_logits=None)``, L1 of both stages), no discriminator, so the
ablation isolates the attention; Adam and the same iterations, batch and learning rate for every variant.
Evaluation: PSNR and L1 over hole pixels of the composited output, in [0, 1], averaged over validation
images; the temperatures the attention used, per head, over the validation set.

Writes ``results.json`` (every run), ``examples.pt`` (example fills of the first seed), ``results.md`` and
``plot.png`` next to this file (or under ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import hydra
import torch
from omegaconf import OmegaConf
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

from patterns import PatternBatch, lattice_copy_fill, make_batch  # noqa: E402

from mtmsa.conf import CONFIG_DIR  # noqa: E402
from mtmsa.evaluation.baselines import mean_fill, telea_fill  # noqa: E402
from mtmsa.evaluation.metrics import METRIC_NAMES, HeadStatistics, per_image_metrics  # noqa: E402
from mtmsa.models.generator import InpaintGenerator  # noqa: E402
from mtmsa.models.initial_fill import pull_push_fill  # noqa: E402
from mtmsa.models.losses import InpaintingLoss  # noqa: E402
from mtmsa.utils.images import composite, to_unit_range  # noqa: E402

HERE = Path(__file__).resolve().parent
ATTENTION_CONFIGS = CONFIG_DIR / "model" / "attention"
TRAINING_SEED, VALIDATION_SEED = 1_000_002, 1_000_003
EXAMPLES = 6
PSNR, L1 = METRIC_NAMES.index("psnr_hole"), METRIC_NAMES.index("l1_hole")


@dataclass(frozen=True)
class Variant:
    """One attention choice: a config of mtmsa/conf/model/attention, for MTMSA its heads and temperature mode, and
    optionally another patch size than the config's."""

    config: str
    heads: int | None = None
    mode: str | None = None
    patch_size: int | None = None

    @property
    def name(self) -> str:
        name = self.config if self.mode is None else f"mtmsa {self.mode}"
        return name if self.patch_size is None else f"{name} {self.patch_size}x{self.patch_size}"

    @property
    def label(self) -> str:
        return self.name if self.heads is None else f"{self.name} h{self.heads}"


VARIANTS = (
    Variant("none"),
    Variant("contextual"),
    Variant("contextual", patch_size=1),
    *(Variant("mtmsa", heads, "constant") for heads in (1, 4)),
    *(Variant("mtmsa", heads, mode) for mode in ("learned_scalar", "learned_map") for heads in (1, 2, 4)),
)


@dataclass(frozen=True)
class Settings:
    """The training budget every variant gets."""

    size: int = 32
    width: int = 8
    batch: int = 16
    iterations: int = 400
    lr: float = 2e-3
    training_images: int = 4096
    validation_images: int = 256
    initial_fill: str = "pull_push"


def attention_factory(variant: Variant):
    """``mtmsa/conf/model/attention/<config>.yaml`` with heads, temperature mode and patch size overridden, instantiated."""
    config = OmegaConf.load(ATTENTION_CONFIGS / f"{variant.config}.yaml")
    if variant.mode is not None:
        config.heads = variant.heads
        config.temperature.mode = variant.mode
    if variant.patch_size is not None:
        config.patch_size = variant.patch_size
    return hydra.utils.instantiate(config)


def sketch_free(batch: PatternBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The generator's inputs: images, masks and an all-zero sketch (no guidance)."""
    return batch.images, batch.masks, torch.zeros_like(batch.masks)


def hole_metrics(filled: torch.Tensor, batch: PatternBatch) -> torch.Tensor:
    """(B, 2) hole PSNR (dB) and hole L1 per image of a composited fill in [-1, 1], measured in [0, 1]."""
    values = per_image_metrics(to_unit_range(filled), to_unit_range(batch.images), batch.masks)
    return values[:, [PSNR, L1]]


def summarise(values: torch.Tensor) -> dict[str, float]:
    return {"psnr_hole": float(values[:, 0].mean()), "l1_hole": float(values[:, 1].mean())}


@torch.no_grad()
def evaluate(model: InpaintGenerator, validation: PatternBatch, heads: int | None) -> dict:
    """Hole PSNR / L1 of ``model`` on ``validation``, temperature statistics per head, example fills."""
    model.eval()
    chunks = [PatternBatch(*parts) for parts in zip(*(t.split(64) for t in validation), strict=True)]
    metrics = []
    temperatures = HeadStatistics() if heads else None
    hole_sum = hole_count = 0.0
    for i, chunk in enumerate(chunks):
        output = model(*sketch_free(chunk))
        filled = composite(output.refined, chunk.images, chunk.masks)
        metrics.append(hole_metrics(filled, chunk))
        if i == 0:
            examples = {"examples": filled[:EXAMPLES].clone()}
        if temperatures is not None:
            t, hole = output.aux["temperature"], output.aux["hole"]
            temperatures.update(t)
            hole_sum = hole_sum + (t * hole).sum(dim=(0, 2, 3))
            hole_count += float(hole.sum())
            if i == 0:
                examples["temperature_map"] = t[:EXAMPLES].clone()
    result = {**summarise(torch.cat(metrics)), **examples}
    if temperatures is not None:
        stats = temperatures.compute()
        result["temperature"] = {
            key: [float(stats[f"head{h}_{key}"]) for h in range(heads)] for key in ("mean", "min", "max")
        }
        result["temperature"]["hole_mean"] = (hole_sum / max(hole_count, 1.0)).tolist()
    return result


def train_run(
    variant: Variant, seed: int, settings: Settings, training: PatternBatch, validation: PatternBatch
) -> dict:
    """Trains one variant from ``seed`` (weights and batch order) for the fixed budget and evaluates it."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    model = InpaintGenerator(
        width=settings.width, attention=attention_factory(variant), initial_fill=settings.initial_fill
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss = InpaintingLoss()
    data = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(settings.iterations):
        batch = PatternBatch(*(t[torch.randint(len(t), (settings.batch,), generator=data)] for t in training))
        terms = loss.generator_loss(model(*sketch_free(batch)), batch.images, batch.masks, fake_logits=None)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        losses.append(terms["l1_refined"].item())
    result = evaluate(model, validation, variant.heads if variant.config == "mtmsa" else None)
    tail = max(1, settings.iterations // 10)
    return {
        "label": variant.label,
        "variant": variant.name,
        "heads": variant.heads,
        "seed": seed,
        **result,
        "train_l1_last10pct": statistics.fmean(losses[-tail:]),
        "wall_s": time.perf_counter() - start,
    }


def reference_rows(validation: PatternBatch) -> list[dict]:
    """Classical fills on the validation set: mean colour, OpenCV Telea, pull-push (the generator's initial
    fill), and copying one lattice shift away."""
    rows = []
    for name, fill in (
        ("mean fill", mean_fill(validation.images, validation.masks)),
        ("OpenCV Telea", telea_fill(validation.images, validation.masks)),
        ("pull-push (generator's initial fill)", pull_push_fill(validation.images, validation.masks)),
        ("lattice copy (oracle period)", lattice_copy_fill(validation)[0]),
    ):
        rows.append(
            {
                "variant": name,
                **summarise(hole_metrics(fill, validation)),
                "examples": fill[:EXAMPLES].clone(),
            }
        )
    return rows


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def group_runs(runs: list[dict]) -> list[tuple[str, int | None, list[dict]]]:
    """Runs grouped by (variant, heads), in the order they first appear."""
    groups: dict[tuple[str, int | None], list[dict]] = {}
    for run in runs:
        groups.setdefault((run["variant"], run["heads"]), []).append(run)
    return [(variant, heads, members) for (variant, heads), members in groups.items()]


def temperature_text(members: list[dict], variant: str) -> str:
    """Per-head mean temperature (mean over seeds) and the range seen, or the fixed value."""
    if variant.startswith("contextual"):
        return "0.1 (softmax scale 10, fixed)"
    if "temperature" not in members[0]:
        return "-"
    means = [
        statistics.fmean(run["temperature"]["mean"][h] for run in members) for h in range(members[0]["heads"])
    ]
    low = min(min(run["temperature"]["min"]) for run in members)
    high = max(max(run["temperature"]["max"]) for run in members)
    if variant.endswith("constant"):
        return f"{means[0]:.2g} (fixed)"
    return f"per head {', '.join(f'{m:.3f}' for m in means)} (range {low:.3f}-{high:.3f})"


def markdown(report: dict) -> str:
    settings, runs = report["settings"], report["runs"]
    seeds = sorted({run["seed"] for run in runs})
    lines = [
        f"Images {settings['size']}x{settings['size']}, generator width {settings['width']}, "
        f"initial fill {settings.get('initial_fill', 'pull_push')} "
        f"(attention on {settings['size'] // 4}x{settings['size'] // 4} features of {4 * settings['width']} channels), "
        f"L1 reconstruction loss only (no discriminator), Adam lr {settings['lr']:g}, batch {settings['batch']}, "
        f"{settings['iterations']} iterations per run, seeds {seeds}; {settings['validation_images']} validation images "
        f"(seed {VALIDATION_SEED}). Hole metrics on the composited output in [0, 1]; ± is the standard deviation "
        f"over seeds.",
        "",
        "| variant | heads | hole PSNR (dB) | hole L1 | s/run | temperature used |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["references"]:
        lines.append(f"| {row['variant']} | - | {row['psnr_hole']:.2f} | {row['l1_hole']:.4f} | - | - |")
    for variant, heads, members in group_runs(runs):
        psnr, psnr_sd = mean_std([run["psnr_hole"] for run in members])
        l1, l1_sd = mean_std([run["l1_hole"] for run in members])
        seconds = statistics.fmean(run["wall_s"] for run in members)
        lines.append(
            f"| {variant} | {heads or '-'} | {psnr:.2f} ± {psnr_sd:.2f} | {l1:.4f} ± {l1_sd:.4f} "
            f"| {seconds:.0f} | {temperature_text(members, variant)} |"
        )
    sections = "; ".join(
        f"{len(section['variants'])} variants in {section['wall_s'] / 60:.1f} min "
        f"(load average {section['load_average_at_end']:.1f} at the end)"
        for section in report["sections"]
    )
    lines += [
        "",
        f"Total wall time {report['total_wall_s'] / 60:.1f} min on {report['machine']}: {sections}.",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict, examples: dict, path: Path) -> None:
    """Hole PSNR per variant with every seed, example fills of the first seed, a learned temperature map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(report["runs"])
    order = [row["variant"] for row in report["references"]] + [variant.label for variant in VARIANTS]
    shown = sorted((key for key in examples["fills"] if key in order), key=order.index)
    columns = 2 + len(shown) + (1 if "map" in examples else 0)
    figure = plt.figure(figsize=(max(12, 1.3 * columns), 4.2 + 1.3 * EXAMPLES // 2))
    grid = figure.add_gridspec(1 + EXAMPLES // 2, columns, height_ratios=[4.0] + [1.2] * (EXAMPLES // 2))
    axis = figure.add_subplot(grid[0, :])
    for i, (variant, _, members) in enumerate(groups):
        values = [run["psnr_hole"] for run in members]
        axis.bar(i, statistics.fmean(values), color="C0" if variant.startswith("mtmsa") else "C7", alpha=0.6)
        axis.scatter([i] * len(values), values, color="k", s=10, zorder=3)
    for row, style in zip(report["references"], (":", "--", "-.", "-"), strict=True):
        axis.axhline(row["psnr_hole"], color="C3", linestyle=style, linewidth=1, label=row["variant"])
    labels = [f"{variant}\nh{heads}" if heads else variant for variant, heads, _ in groups]
    axis.set_xticks(range(len(groups)), labels, fontsize=7)
    axis.set_ylabel("hole PSNR (dB), dots = seeds")
    top = max(run["psnr_hole"] for run in report["runs"])
    axis.set_ylim(min(row["psnr_hole"] for row in report["references"]) - 1, top + 1.5)
    axis.legend(fontsize=7, loc="upper left")
    titles = ["input", "ground truth", *shown]
    for r in range(EXAMPLES // 2):
        for c, title in enumerate(titles):
            ax = figure.add_subplot(grid[1 + r, c])
            image = examples["fills"][title][r]
            ax.imshow(to_unit_range(image).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(title, fontsize=6)
        if "map" in examples:
            ax = figure.add_subplot(grid[1 + r, columns - 1])
            shown_map = ax.imshow(examples["map"][r].mean(dim=0).numpy(), cmap="magma")
            ax.set_axis_off()
            if r == 0:
                ax.set_title(f"{examples['map_label']}\nmean temperature", fontsize=6)
            figure.colorbar(shown_map, ax=ax, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def write_report(report: dict, examples: dict, out: Path) -> None:
    (out / "results.md").write_text(markdown(report))
    plot(report, examples, out / "plot.png")


def run_all(args: argparse.Namespace) -> None:
    settings = Settings(**{setting.name: getattr(args, setting.name) for setting in fields(Settings)})
    variants = VARIANTS if args.variants is None else tuple(v for v in VARIANTS if v.label in args.variants)
    start = time.perf_counter()
    training = make_batch(
        settings.training_images, settings.size, torch.Generator().manual_seed(TRAINING_SEED)
    )
    validation = make_batch(
        settings.validation_images, settings.size, torch.Generator().manual_seed(VALIDATION_SEED)
    )
    references = reference_rows(validation)
    masked = validation.images * (1 - validation.masks)
    examples = {
        "fills": {"input": masked[:EXAMPLES].clone(), "ground truth": validation.images[:EXAMPLES].clone()}
    }
    runs = []
    jobs = [(variant, seed) for variant in variants for seed in range(args.seeds)]
    for variant, seed in tqdm(jobs, desc="long-range copy runs", unit="run"):
        result = train_run(variant, seed, settings, training, validation)
        fills, temperature_map = result.pop("examples"), result.pop("temperature_map", None)
        if seed == 0 and variant.label in args.example_variants:
            examples["fills"][variant.label] = fills
        if seed == 0 and temperature_map is not None and variant.label == args.example_variants[-1]:
            examples["map"], examples["map_label"] = temperature_map, variant.label
        runs.append(result)
        tqdm.write(
            f"{variant.label} seed {seed}: hole PSNR {result['psnr_hole']:.2f} dB, {result['wall_s']:.0f} s"
        )
    for row in references:
        examples["fills"][row["variant"]] = row.pop("examples")
    labels = [variant.label for variant in variants]
    section = {
        "variants": labels,
        "wall_s": time.perf_counter() - start,
        "load_average_at_end": os.getloadavg()[0],
    }
    report = {"settings": asdict(settings), "references": references, "runs": runs, "sections": [section]}
    args.out.mkdir(parents=True, exist_ok=True)
    if args.append:
        report, examples = appended(report, examples, args.out)
    report["total_wall_s"] = sum(section["wall_s"] for section in report["sections"])
    report["machine"] = machine()
    (args.out / "results.json").write_text(json.dumps(report, indent=1))
    torch.save(examples, args.out / "examples.pt")
    write_report(report, examples, args.out)
    print(f"wrote results.json, results.md and plot.png to {args.out}")


def appended(report: dict, examples: dict, out: Path) -> tuple[dict, dict]:
    """This run's report and examples merged into those already in ``out`` (its runs replace equal ones)."""
    old = json.loads((out / "results.json").read_text())
    if old["settings"] != report["settings"]:
        raise ValueError(f"--append needs the settings of {out / 'results.json'}: {old['settings']}")
    new_runs = {(run["label"], run["seed"]) for run in report["runs"]}
    runs = [run for run in old["runs"] if (run["label"], run["seed"]) not in new_runs] + report["runs"]
    order = {variant.label: i for i, variant in enumerate(VARIANTS)}
    report["runs"] = sorted(runs, key=lambda run: (order[run["label"]], run["seed"]))
    report["sections"] = old["sections"] + report["sections"]
    old_examples = torch.load(out / "examples.pt")
    old_examples["fills"].update(examples["fills"])
    return report, {**old_examples, **{k: v for k, v in examples.items() if k != "fills"}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per variant")
    for setting in fields(Settings):
        parser.add_argument(
            f"--{setting.name.replace('_', '-')}", type=type(setting.default), default=setting.default
        )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: see README)")
    parser.add_argument(
        "--variants", nargs="+", default=None, help="labels to run, e.g. none 'mtmsa learned_map h4'"
    )
    parser.add_argument(
        "--example-variants",
        nargs="+",
        default=[
            "none",
            "contextual",
            "mtmsa constant h4",
            "mtmsa learned_scalar h4",
            "mtmsa learned_map h4",
        ],
        help="variants whose fills appear in the plot; the last one's temperature map is drawn too",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke version: 1 seed, 3 variants, 30 iterations"
    )
    parser.add_argument(
        "--report-only", action="store_true", help="redo results.md and plot.png from results.json"
    )
    parser.add_argument(
        "--append", action="store_true", help="merge these runs into the results.json already in --out"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default {HERE}; --quick: a temp one)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.iterations = 1, 30
        args.variants = args.variants or ["none", "contextual", "mtmsa learned_map h4"]
        args.out = args.out or Path(tempfile.gettempdir()) / "long_range_copy_quick"
    args.out = args.out or HERE
    known = {v.label for v in VARIANTS}
    unknown = sorted(set(args.variants or []) - known)
    if unknown:
        parser.error(f"unknown --variants {unknown}; choose from {sorted(known)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.report_only:
        report = json.loads((args.out / "results.json").read_text())
        write_report(report, torch.load(args.out / "examples.pt"), args.out)
        return
    run_all(args)


if __name__ == "__main__":
    main()
