"""Train the inpainting GAN: ``python -m mtmsa.train [overrides]`` or ``mtmsa-train [overrides]`` (configs in
mtmsa/conf/, entry mtmsa/conf/train.yaml).

With no overrides it trains the small model on the bundled sample images on the CPU (the quickstart).
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

import mtmsa  # noqa: F401  (registers the config resolvers)
from mtmsa.utils.entry import hydra_entry

# Torch, Lightning and the model are imported inside train(): the command line is checked before they load
# (a mistake is reported in about a second, not after ten).

log = logging.getLogger(__name__)

warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")  # the EMA generator, on purpose


def instantiate_group(group: DictConfig | None) -> list:
    """Instantiate every entry of a group of named objects (callbacks, loggers); empty for none."""
    return [instantiate(node) for node in (group or {}).values() if node is not None and "_target_" in node]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the model of ``cfg``, validate the final weights, and return the validation metrics."""
    import pytorch_lightning as pl
    import torch

    from mtmsa.data.datamodule import build_datamodule
    from mtmsa.training.callbacks import RunConfigInCheckpoints
    from mtmsa.training.fault_tolerance import check_training_checkpoint, resume_checkpoint
    from mtmsa.training.loggers import finish_wandb_runs
    from mtmsa.training.summary import print_run_summary

    started = time.perf_counter()
    # Flush denormal floats to zero on the CPU: the near-zero output layers and the optimizers' small moments
    # make them, and CPU arithmetic on denormals is slow (measured: experiments/README.md, "Quickstart").
    torch.set_flush_denormal(True)
    ckpt_path = resume_checkpoint(cfg.get("ckpt_path"), cfg.paths.output_dir)
    if ckpt_path is not None:
        check_training_checkpoint(ckpt_path)
        log.info("resuming from %s", ckpt_path)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg, seed=cfg.seed)
    model = instantiate(cfg.model)
    run_config = OmegaConf.to_container(cfg, resolve=True)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = [*instantiate_group(cfg.get("callbacks")), RunConfigInCheckpoints(run_config)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    for logger in loggers:
        logger.log_hyperparams(run_config)

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
        results = trainer.validate(model, datamodule=datamodule, verbose=False)
    finally:
        finish_wandb_runs(loggers)
    metrics = {name: float(value) for name, value in (results[0] if results else {}).items()}
    if trainer.is_global_zero:
        print_run_summary(
            trainer,
            metrics,
            Path(cfg.paths.output_dir),
            time.perf_counter() - started,
            initial_fill=getattr(model.generator, "initial_fill", None),
        )
    return metrics


@hydra_entry("train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg).get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
