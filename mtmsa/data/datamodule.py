"""The LightningDataModule: images decoded and augmented on CPU workers; masks and sketches made in
batches on the training device (``on_after_batch_transfer``).

Training masks and sketches come from a device-side ``torch.Generator`` whose state is saved in
checkpoints. Validation masks and sketches are a pure function of (``eval_seed``, sample index), made on
the CPU, so they are the same for every run, epoch, device type and number of devices.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.utils.data import DataLoader

from mtmsa.data.datasets import ImageFolderDataset, build_transform
from mtmsa.data.seeds import sample_seed
from mtmsa.data.sketch import NoSketches
from mtmsa.evaluation.masks import EvaluationMasks

Batch = dict[str, torch.Tensor]
MaskSet = Callable[[torch.Tensor, int, int], torch.Tensor]
"""Fixed masks by sample index: ``masks(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU."""


class InpaintingDataModule(pl.LightningDataModule):
    """Images of ``root/train_dir`` and ``root/val_dir`` with masks and sketches.

    ``masks``: the training mask generator (the ``mask`` config group); ``sketches``: the sketch generator
    (``sketch``); ``eval_masks``: the fixed masks of validation (default: :class:`EvaluationMasks` of
    ``masks`` seeded with ``eval_seed``; ``python -m mtmsa.evaluate mask_dir=...`` gives a
    :class:`~mtmsa.evaluation.masks.MaskFolder`). Build it from a composed config with :func:`build_datamodule`.
    """

    def __init__(
        self,
        name: str,
        root: str,
        train_dir: str = "train",
        val_dir: str = "val",
        train_list: str | None = None,
        val_list: str | None = None,
        expected_layout: str = "",
        prepare: Callable[[Path], Any] | None = None,
        image_size: int = 256,
        resize: int | None = None,
        random_crop: bool = True,
        hflip: bool = True,
        scale: tuple[float, float] | None = None,
        vflip: bool = False,
        rotate90: bool = False,
        color: bool = False,
        batch_size: int = 8,
        val_batch_size: int = 8,
        num_workers: int = 4,
        eval_seed: int = 2023,
        masks: Callable[..., torch.Tensor] | None = None,
        sketches: Callable[..., torch.Tensor] | None = None,
        seed: int = 0,
        eval_masks: MaskSet | None = None,
    ) -> None:
        super().__init__()
        if masks is None:
            raise ValueError("InpaintingDataModule needs a mask generator (the `mask` config group).")
        self.name = name
        self.root = Path(root)
        self.train_dir, self.val_dir = train_dir, val_dir
        self.train_list, self.val_list = train_list, val_list
        self.expected_layout = expected_layout
        self.prepare = prepare
        self.image_size = image_size
        self.resize = resize
        self.augment = dict(
            random_crop=random_crop, hflip=hflip, scale=scale, vflip=vflip, rotate90=rotate90, color=color
        )
        self.batch_size, self.val_batch_size = batch_size, val_batch_size
        self.num_workers = num_workers
        self.eval_seed = eval_seed
        self.seed = seed
        self.masks = masks
        self.eval_masks = eval_masks if eval_masks is not None else EvaluationMasks(masks, seed=eval_seed)
        self.sketches = sketches if sketches is not None else NoSketches()
        self.train_set: ImageFolderDataset | None = None
        self.val_set: ImageFolderDataset | None = None
        self._rng: torch.Generator | None = None
        self._rng_states: torch.Tensor | None = None

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare(self.root)

    def _dataset(self, folder: str, file_list: str | None, train: bool) -> ImageFolderDataset:
        transform = build_transform(self.image_size, train=train, resize=self.resize, **self.augment)
        return ImageFolderDataset(
            self.root / folder,
            file_list=None if file_list is None else self.root / file_list,
            transform=transform,
            expected_layout=self.expected_layout,
        )

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_set is None:
            self.train_set = self._dataset(self.train_dir, self.train_list, train=True)
        if stage in (None, "fit", "validate") and self.val_set is None:
            self.val_set = self._dataset(self.val_dir, self.val_list, train=False)

    def _loader(self, dataset: ImageFolderDataset, batch_size: int, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=train,
            drop_last=train and len(dataset) >= batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.val_batch_size, train=False)

    def training_generator(self, device: torch.device) -> torch.Generator:
        """The device-side random stream of training masks and sketches (one per process)."""
        if self._rng is None or self._rng.device != device:
            rank = self.trainer.global_rank if self.trainer is not None else 0
            self._rng = torch.Generator(device=device).manual_seed(self.seed * 1009 + rank)
            saved = self._rng_states
            if (
                saved is not None
                and rank < len(saved)
                and saved[rank].numel() == self._rng.get_state().numel()
            ):
                self._rng.set_state(saved[rank])
            self._rng_states = None
        return self._rng

    def add_training_masks(self, batch: Batch, generator: torch.Generator) -> Batch:
        """Add random ``mask`` and ``sketch`` (B,1,H,W) made on the images' device."""
        images = batch["image"]
        batch["mask"] = self.masks(images.shape[0], images.shape[2], images.shape[3], generator=generator)
        batch["sketch"] = self.sketches(images, batch["mask"], generator=generator)
        return batch

    def add_evaluation_masks(self, batch: Batch) -> Batch:
        """Add the fixed ``mask`` and ``sketch`` of each sample index (computed on CPU, then moved). Every
        sample gets its own sketch (the sketch generator's ``draw``, ignoring how often training gives one),
        so that a fill can be scored with it and without it on the same images."""
        images, indices = batch["image"], batch["index"].cpu()
        masks = self.eval_masks(indices, images.shape[2], images.shape[3])
        cpu_images = images.detach().float().cpu()
        sketches = torch.cat(
            [
                self.sketches.draw(
                    cpu_images[i : i + 1],
                    masks[i : i + 1],
                    generator=torch.Generator().manual_seed(
                        sample_seed(self.eval_seed, int(index), stream="sketch")
                    ),
                )
                for i, index in enumerate(indices)
            ]
        )
        batch["mask"] = masks.to(images.device)
        batch["sketch"] = sketches.to(images.device)
        return batch

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        if self.trainer is not None and self.trainer.training:
            return self.add_training_masks(batch, self.training_generator(batch["image"].device))
        return self.add_evaluation_masks(batch)

    def fixed_batch(self, num_samples: int, device: torch.device | str = "cpu") -> Batch:
        """The first ``num_samples`` validation samples with their evaluation masks (for previews)."""
        if self.val_set is None:
            self.setup("validate")
        items = [self.val_set[i] for i in range(min(num_samples, len(self.val_set)))]
        batch = {
            "image": torch.stack([item["image"] for item in items]).to(device),
            "index": torch.tensor([item["index"] for item in items]),
        }
        return self.add_evaluation_masks(batch)

    def state_dict(self) -> dict[str, Any]:
        """The training mask/sketch stream of every process, (world_size, state bytes): each rank
        continues its own after a resume with the same number of processes (a fresh seed otherwise)."""
        if self._rng is None:
            return {}
        state = self._rng.get_state()
        if self.trainer is None or self.trainer.world_size == 1:
            return {"mask_rng_states": state[None]}
        strategy = self.trainer.strategy
        return {"mask_rng_states": strategy.all_gather(state.to(strategy.root_device)).cpu()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._rng = None
        self._rng_states = state_dict.get("mask_rng_states")


def build_datamodule(cfg: DictConfig, **overrides: Any) -> InpaintingDataModule:
    """The DataModule of a composed config (train, evaluate or preview): its ``dataset`` node with the mask
    and sketch generators of its ``mask`` and ``sketch`` nodes; ``overrides`` replace constructor arguments
    (``seed=``, ``val_batch_size=``, ``eval_masks=``, ...)."""
    return instantiate(
        cfg.dataset, masks=instantiate(cfg.mask), sketches=instantiate(cfg.sketch), **overrides
    )
