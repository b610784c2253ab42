"""Training throughput of the real thing: `mtmsa.train`'s configs, LightningModule and DataModule on a
folder of random 256x256 images, timed per training iteration (one D step + one G step + EMA, with the
masks and sketches made on the device), and the share of that iteration spent making masks + sketches.

    python experiments/bench_train.py                                  # paper-scale model, CPU, fp32
    python experiments/bench_train.py trainer=gpu                      # GPU, bf16-mixed
    python experiments/bench_train.py model=small dataset.image_size=64
Any further arguments are Hydra overrides of mtmsa/conf/train.yaml.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from PIL import Image

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.conf import CONFIG_DIR
from mtmsa.data.datamodule import build_datamodule

WARMUP_ITERATIONS = 1


class IterationTimer(pl.Callback):
    """Wall time of each training batch (synchronised on GPUs)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self.started)


def write_random_images(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")


def mask_and_sketch_seconds(datamodule, batch: dict[str, torch.Tensor], repeats: int = 5) -> float:
    generator = torch.Generator(device=batch["image"].device).manual_seed(0)
    times = []
    for _ in range(repeats + 1):
        if batch["image"].is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        datamodule.add_training_masks(dict(batch), generator)
        if batch["image"].is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def attention_choice(overrides: list[str]) -> str:
    chosen = [o.split("=", 1)[1] for o in overrides if o.startswith("model/attention=")]
    return chosen[-1] if chosen else "mtmsa"


def main(overrides: list[str], iterations: int = 4) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        initialize_config_dir(version_base="1.3", config_dir=str(CONFIG_DIR)),
    ):
        cfg = compose(
            "train",
            overrides=[
                "dataset=folder",
                f"dataset.root={tmp}",
                "dataset.train_dir=.",
                "dataset.val_dir=.",
                "dataset.num_workers=0",
                "dataset.batch_size=8",
                "model=default",
                "logger=[]",
                "callbacks=none",
                "+trainer.limit_val_batches=0",
                f"trainer.max_steps={2 * (iterations + WARMUP_ITERATIONS)}",
                "+trainer.enable_progress_bar=false",
                "+trainer.enable_model_summary=false",
                "+trainer.enable_checkpointing=false",
                f"paths.output_dir={tmp}",
                *overrides,
            ],
        )
        write_random_images(Path(tmp), cfg.dataset.batch_size * 2, cfg.dataset.image_size)
        datamodule = build_datamodule(cfg)
        model = instantiate(cfg.model)
        timer = IterationTimer()
        trainer = instantiate(cfg.trainer, callbacks=[timer], logger=False)
        trainer.fit(model, datamodule=datamodule)
        iteration = statistics.median(timer.seconds[WARMUP_ITERATIONS:])
        images = torch.rand(cfg.dataset.batch_size, 3, cfg.dataset.image_size, cfg.dataset.image_size) * 2 - 1
        share = mask_and_sketch_seconds(datamodule, {"image": images.to(model.device)}) / iteration

    device = (
        torch.cuda.get_device_name()
        if model.device.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    params = sum(p.numel() for p in model.generator.parameters()) / 1e6
    print(
        "| device | model (G params) | attention | size | batch | precision | s / iteration | images/s | masks+sketches |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {device} | {cfg.model.generator.width}w ({params:.2f}M) | {attention_choice(overrides)} | "
        f"{cfg.dataset.image_size} | {cfg.dataset.batch_size} | {cfg.trainer.precision} | {iteration:.3f} | "
        f"{cfg.dataset.batch_size / iteration:.2f} | {100 * share:.1f}% |"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
