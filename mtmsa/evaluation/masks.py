"""The masks of validation and evaluation: fixed per (seed, image index), or read from a folder of mask files.

Both are callables ``masks(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU, 1 = hole, the
same for every run, epoch, device and number of processes: the DataModule adds them to validation
batches and ``python -m mtmsa.evaluate`` scores with them (``mask_dir=`` for :class:`MaskFolder`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtmsa.data.io import IMAGE_EXTENSIONS, read_gray
from mtmsa.data.masks import MaskGenerator, fit_hole_ratio, in_ratio_range
from mtmsa.data.options import option_range
from mtmsa.data.seeds import sample_seed
from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, bucket_labels, bucket_of


class EvaluationMasks:
    """Fixed validation/test masks: a pure function of (seed, sample index).

    Sample ``i`` uses bucket ``i % len(buckets)`` and a CPU generator seeded from (seed, i). It draws
    ``attempts_per_draw`` masks from ``masks`` at a time, up to ``max_attempts`` in all, and keeps the first
    whose hole ratio lies in the bucket [low, high); if none does, the last one is moved to the nearest ratio
    inside the bucket by :func:`fit_hole_ratio` (grown by dilation or shrunk by erosion, deterministic). So
    every mask lands in its bucket, whatever the batch it is requested in.

    Call: ``(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU. Making one takes milliseconds at
    256 px, so the first ``cache_size`` masks made are kept (as bits: 8 KiB each at 256 px) and every later
    validation epoch reuses them.
    """

    def __init__(
        self,
        masks: MaskGenerator,
        seed: int,
        buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS,
        max_attempts: int = 16,
        attempts_per_draw: int = 8,
        cache_size: int = 50_000,
    ):
        self.masks = masks
        self.seed = int(seed)
        self.buckets = tuple(option_range(bucket, "evaluation mask bucket") for bucket in buckets)
        if not self.buckets:
            raise ValueError("EvaluationMasks needs at least one hole-ratio bucket")
        self.max_attempts = int(max_attempts)
        self.attempts_per_draw = int(attempts_per_draw)
        self.cache_size = int(cache_size)
        self._cache: dict[tuple[int, int, int], np.ndarray] = {}

    @property
    def labels(self) -> list[str]:
        return bucket_labels(self.buckets)

    def bucket_of(self, masks: torch.Tensor) -> torch.Tensor:
        return bucket_of(masks, self.buckets)

    def _one(self, index: int, height: int, width: int) -> torch.Tensor:
        low, high = self.buckets[index % len(self.buckets)]
        generator = torch.Generator().manual_seed(sample_seed(self.seed, index, stream="mask"))
        for _ in range(0, self.max_attempts, self.attempts_per_draw):
            candidates = self.masks(self.attempts_per_draw, height, width, generator=generator)
            fitting = torch.nonzero(in_ratio_range(candidates, low, high)).flatten()
            if len(fitting):
                return candidates[fitting[0]]
        return fit_hole_ratio(candidates[-1:], low, high)[0]

    def _cached(self, index: int, height: int, width: int) -> torch.Tensor:
        key = (index, height, width)
        packed = self._cache.get(key)
        if packed is not None:
            return torch.from_numpy(np.unpackbits(packed)[: height * width].reshape(1, height, width)).float()
        mask = self._one(index, height, width)
        if len(self._cache) < self.cache_size:
            self._cache[key] = np.packbits(mask.to(torch.uint8).flatten().numpy())
        return mask

    def __call__(self, indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
        return torch.stack([self._cached(int(i), height, width) for i in indices.tolist()])


class MaskFolder:
    """Mask images read from a folder (NVIDIA irregular masks, LaMa evaluation masks), by sorted file name.

    Args:
        root: folder with mask images (png, jpg, bmp, tif, webp).
        convention: "hole-white" (white = hole, NVIDIA's inverted set, LaMa) or "hole-black" (black = hole,
            the original NVIDIA set). There is no guessing.
        threshold: grey level in [0, 1] separating black from white.

    Call: ``(indices (B,) long, height, width) -> (B,1,H,W)`` on the CPU; index ``i`` reads file
    ``i % len(self)``, resized with nearest-neighbour interpolation.
    """

    def __init__(self, root: str | Path, convention: str = "hole-white", threshold: float = 0.5):
        self.root = Path(root)
        if convention not in ("hole-white", "hole-black"):
            raise ValueError(
                f"MaskFolder convention must be 'hole-white' or 'hole-black', got {convention!r}"
            )
        if not 0 < threshold < 1:
            raise ValueError(f"MaskFolder threshold must be in (0, 1), got {threshold}")
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"mask folder {self.root} does not exist; point the mask folder option at it"
            )
        self.files = sorted(p for p in self.root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not self.files:
            raise FileNotFoundError(
                f"mask folder {self.root} holds no mask images ({', '.join(IMAGE_EXTENSIONS)}); "
                "put the mask images there or point at another folder"
            )
        self.hole_white = convention == "hole-white"
        self.threshold = float(threshold)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> torch.Tensor:
        """(1,H0,W0) mask of file ``index % len(self)`` at its own size."""
        path = self.files[index % len(self.files)]
        white = torch.from_numpy(read_gray(path)) > self.threshold
        return (white if self.hole_white else ~white)[None].float()

    def __call__(self, indices: torch.Tensor, height: int, width: int) -> torch.Tensor:
        resized = [
            F.interpolate(self.read(int(i))[None], (height, width), mode="nearest-exact")
            for i in indices.tolist()
        ]
        return torch.cat(resized)
