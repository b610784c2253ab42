"""The long-range copy ablation's report: results.md (tables and paired tests), plot.png, temperatures.png.

Paired comparisons pair two variants' runs of the same seed (same initial weights where shapes agree, same
training batches). "Best constant" is the constant temperature with the highest mean hole PSNR at that model,
task and head count, chosen after the fact, which favours the constant side; "constant at init" is the
constant temperature the learned ones start from (keeping the temperature versus learning it).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from scipy import stats

COMPARISONS = (
    ("learned_map", "best constant"),
    ("learned_scalar", "best constant"),
    ("learned_map", "constant at init"),
    ("learned_scalar", "constant at init"),
    ("learned_map", "none"),
    ("learned_scalar", "none"),
    ("best constant", "none"),
)


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def groups(runs: list[dict]) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """{(model, task): {label: runs sorted by seed}} in the order runs first appear."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for run in runs:
        out.setdefault((run["model"], run["task"]), {}).setdefault(run["label"], []).append(run)
    for labels in out.values():
        for members in labels.values():
            members.sort(key=lambda run: run["seed"])
    return out


def best_constant(labels: dict[str, list[dict]], heads: int) -> str | None:
    constants = [label for label in labels if label.startswith("constant") and label.endswith(f"h{heads}")]
    if not constants:
        return None
    return max(constants, key=lambda label: statistics.fmean(r["psnr_hole"] for r in labels[label]))


def paired(a: list[dict], b: list[dict]) -> dict:
    """Hole PSNR differences a - b over the seeds both have; sign test and paired t-test (two-sided)."""
    by_seed = {run["seed"]: run["psnr_hole"] for run in b}
    differences = [run["psnr_hole"] - by_seed[run["seed"]] for run in a if run["seed"] in by_seed]
    wins = sum(d > 0 for d in differences)
    losses = sum(d < 0 for d in differences)
    sign_p = stats.binomtest(wins, wins + losses).pvalue if wins + losses else 1.0
    spread = len(differences) > 1 and statistics.pstdev(differences) > 0
    t_p = float(stats.ttest_1samp(differences, 0.0).pvalue) if spread else float("nan")
    return {
        "n": len(differences),
        "mean": statistics.fmean(differences),
        "wins": wins,
        "losses": losses,
        "sign_p": sign_p,
        "t_p": t_p,
    }


def comparisons(runs: list[dict], learned_init: float) -> list[dict]:
    rows = []
    for (model, task), labels in groups(runs).items():
        for heads in (1, 4):
            names = {
                "none": "none",
                "best constant": best_constant(labels, heads),
                "constant at init": f"constant {learned_init:g} h{heads}",
            }
            for a, b in COMPARISONS:
                left = names.get(a, f"{a} h{heads}")
                right = names.get(b, f"{b} h{heads}")
                if left in labels and right in labels:
                    rows.append(
                        {
                            "model": model,
                            "task": task,
                            "a": left,
                            "b": right,
                            **paired(labels[left], labels[right]),
                        }
                    )
    return rows


def _p(value: float) -> str:
    return "n/a" if value != value else f"{value:.3f}"


def temperature_text(members: list[dict]) -> str:
    """Final mean hole temperature per head, mean over seeds, and the range over seeds."""
    if "temperature" not in members[0]:
        return "0.1 (scale 10, fixed)" if members[0]["variant"] == "contextual" else "-"
    heads = len(members[0]["temperature"])
    means = [statistics.fmean(run["temperature"][h] for run in members) for h in range(heads)]
    if members[0]["variant"].startswith("constant"):
        return f"{means[0]:g} (fixed)"
    low = min(min(run["temperature"]) for run in members)
    high = max(max(run["temperature"]) for run in members)
    return f"{', '.join(f'{m:.3f}' for m in means)} (seeds' range {low:.3f}-{high:.3f})"


def markdown(results: dict) -> str:
    settings, runs = results["settings"], results["runs"]
    seeds = sorted({run["seed"] for run in runs})
    lines = [
        f"Command: `{results.get('command', 'python experiments/long_range_copy/run.py')}`. "
        f"{len(runs)} runs in {results['wall_s'] / 60:.1f} min on {results['machine']} "
        f"({results.get('workers', 1)} runs in parallel, 1 torch thread each, device {results.get('device', 'cpu')}).",
        "",
        f"Images {settings['size']}x{settings['size']} (attention on {settings['size'] // 4}x{settings['size'] // 4} "
        f"cells), generator width {settings['width']}, test bed {4 * settings['width']} channels; hole L1 only (no "
        f"discriminator), Adam lr {settings['lr']:g}, batch {settings['batch']}, {settings['iterations']} iterations "
        f"per run, seeds {seeds}; learned temperatures start at {settings['learned_init']:g}. Copy task: hole "
        f"{settings['copy_hole']}x{settings['copy_hole']} cells, ring {settings['copy_ring']}, {settings['copy_decoys']} "
        f"decoy(s). {settings['validation_images']} validation images per task. Hole metrics on the composited "
        f"fill in [0, 1], mean ± standard deviation over seeds; mass = attention mass of hole queries on keys whose "
        f"true cell matches theirs (mean over heads).",
    ]
    references = results["references"]
    for (model, task), labels in groups(runs).items():
        lines += [
            "",
            f"### {model}, {task} task",
            "",
            "| variant | hole PSNR (dB) | hole L1 | mass on source | final temperature per head | s/run |",
            "|---|---|---|---|---|---|",
        ]
        for row in references:
            if row["task"] == task:
                lines.append(
                    f"| {row['variant']} | {row['psnr_hole']:.2f} | {row['l1_hole']:.4f} | - | - | - |"
                )
        for label, members in labels.items():
            psnr, psnr_sd = mean_std([r["psnr_hole"] for r in members])
            l1, l1_sd = mean_std([r["l1_hole"] for r in members])
            mass = (
                f"{statistics.fmean(r['mass_on_source'] for r in members):.3f}"
                if "mass_on_source" in members[0]
                else "-"
            )
            seconds = statistics.fmean(r["wall_s"] for r in members)
            lines.append(
                f"| {label} | {psnr:.2f} ± {psnr_sd:.2f} | {l1:.4f} ± {l1_sd:.4f} | {mass} | {temperature_text(members)} | {seconds:.0f} |"
            )
    lines += [
        "",
        "### Paired comparisons (hole PSNR, same seeds)",
        "",
        "| model | task | A | B | mean A - B (dB) | A wins / losses | sign test p | paired t-test p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in comparisons(runs, settings["learned_init"]):
        lines.append(
            f"| {row['model']} | {row['task']} | {row['a']} | {row['b']} | {row['mean']:+.2f} | "
            f"{row['wins']} / {row['losses']} of {row['n']} | {_p(row['sign_p'])} | {_p(row['t_p'])} |"
        )
    return "\n".join(lines) + "\n"


def _pyplot():
    """matplotlib.pyplot on the file-only Agg backend (imported on first use: the runner starts faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_scores(results: dict, path: Path) -> None:
    """Hole PSNR per variant (bar = mean, dots = seeds) with the references, one panel per model and task."""
    plt = _pyplot()

    panels = groups(results["runs"])
    figure, axes = plt.subplots(len(panels), 1, figsize=(12, 3.2 * len(panels)), squeeze=False)
    for axis, ((model, task), labels) in zip(axes[:, 0], panels.items(), strict=True):
        for i, (label, members) in enumerate(labels.items()):
            values = [r["psnr_hole"] for r in members]
            colour = "C0" if "learned" in label else "C1" if label.startswith("constant") else "C7"
            axis.bar(i, statistics.fmean(values), color=colour, alpha=0.6)
            axis.scatter([i] * len(values), values, color="k", s=8, zorder=3)
        references = {r["variant"]: r for r in results["references"] if r["task"] == task}
        for name, style in (("OpenCV Telea", ":"), ("pull-push (initial fill)", "--")):
            axis.axhline(references[name]["psnr_hole"], color="C3", linestyle=style, linewidth=1, label=name)
        axis.set_xticks(range(len(labels)), [label.replace(" h", "\nh") for label in labels], fontsize=7)
        low = min(min(r["psnr_hole"] for r in members) for members in labels.values())
        high = max(max(r["psnr_hole"] for r in members) for members in labels.values())
        axis.set_ylim(min(low, references["pull-push (initial fill)"]["psnr_hole"]) - 0.5, high + 0.5)
        axis.set_ylabel("hole PSNR (dB)")
        axis.set_title(
            f"{model}, {task} task (oracle copy {references['oracle copy']['psnr_hole']:.1f} dB); dots = seeds",
            fontsize=9,
        )
        axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_temperatures(results: dict, examples: dict, path: Path) -> None:
    """Per model and task: the learned temperatures per head over training (mean over seeds, log scale) and
    learned_map h4's temperature map per head on one validation image (seed 0)."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    panels = groups(results["runs"])
    learned = ("learned_scalar h1", "learned_scalar h4", "learned_map h1", "learned_map h4")
    figure, axes = plt.subplots(len(panels), len(learned) + 5, figsize=(26, 2.9 * len(panels)), squeeze=False)
    for row, ((model, task), labels) in zip(axes, panels.items(), strict=True):
        for axis, label in zip(row[: len(learned)], learned, strict=True):
            axis.set_title(f"{model} {task}\n{label}", fontsize=8)
            if label not in labels:
                axis.set_axis_off()
                continue
            members = labels[label]
            steps = members[0]["temperature_history"]["step"]
            heads = len(members[0]["temperature_history"]["temperature"][0])
            for h in range(heads):
                curve = [
                    statistics.fmean(r["temperature_history"]["temperature"][i][h] for r in members)
                    for i in range(len(steps))
                ]
                axis.plot(steps, curve, label=f"head {h}")
            axis.set_yscale("log")
            axis.set_ylim(0.01, 1.0)
            axis.set_xlabel("iteration", fontsize=7)
            axis.set_ylabel("hole temperature", fontsize=7)
            axis.legend(fontsize=6)
        maps = examples.get((model, task, "learned_map h4"), {}).get("temperature_map")
        image = examples.get(("input", task), {}).get("fill")
        if image is not None:
            row[len(learned)].imshow(((image[0] + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy())
            row[len(learned)].set_title("input (hole grey)", fontsize=8)
        row[len(learned)].set_axis_off()
        for h, axis in enumerate(row[len(learned) + 1 :]):
            axis.set_axis_off()
            if maps is None:
                continue
            shown = axis.imshow(maps[0, h].numpy(), cmap="magma", norm=LogNorm(0.01, 1.0))
            axis.set_title(f"learned_map h4, head {h}\ntemperature (seed 0)", fontsize=8)
            figure.colorbar(shown, ax=axis, fraction=0.046)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_fills(examples: dict, path: Path) -> None:
    """Example fills of seed 0: input, truth, oracle and every variant that has one, per model and task."""
    plt = _pyplot()

    panels = sorted({key[:2] for key in examples if len(key) == 3})
    shown = (
        "none",
        "contextual",
        "constant 0.03 h4",
        "constant 0.3 h4",
        "learned_scalar h4",
        "learned_map h4",
    )
    columns = ("input", "truth", "oracle copy", *shown)
    figure, axes = plt.subplots(
        len(panels), len(columns), figsize=(1.6 * len(columns), 1.8 * len(panels)), squeeze=False
    )
    for row, (model, task) in zip(axes, panels, strict=True):
        for axis, label in zip(row, columns, strict=True):
            key = (label, task) if label in ("input", "truth", "oracle copy") else (model, task, label)
            axis.set_axis_off()
            if key not in examples:
                continue
            axis.imshow(
                ((examples[key]["fill"][0] + 1) / 2).clamp(0, 1).permute(1, 2, 0).numpy(),
                interpolation="nearest",
            )
            axis.set_title(f"{model} {task}\n{label}" if label == "input" else label, fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(results: dict, examples: dict, out: Path) -> None:
    (out / "results.md").write_text(markdown(results))
    plot_scores(results, out / "plot.png")
    plot_temperatures(results, examples, out / "temperatures.png")
    plot_fills(examples, out / "fills.png")
