"""LPIPS (Zhang et al. 2018) in total and per hole-ratio bucket, when its backbone is available offline.

torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` ships the LPIPS linear layers but builds its
backbone (AlexNet, VGG16 or SqueezeNet) with torchvision and ImageNet weights, which torchvision
downloads when they are not in the torch hub cache (``torch.hub.get_dir()/checkpoints``). Nothing is
downloaded here: :func:`lpips_unavailable_reason` says why LPIPS cannot run (torchvision missing, or the
backbone weights not in the cache) and the evaluation reports the column as unavailable.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, Bucketed, BucketedValues
from mtmsa.evaluation.metrics import ImageMeans

BACKBONE_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
"""torchvision's ImageNet weight files of each LPIPS backbone, as named in the torch hub cache."""


def backbone_weights_path(net_type: str) -> Path:
    """Where torchvision keeps (or would download) the backbone weights of ``net_type``."""
    if net_type not in BACKBONE_FILES:
        raise ValueError(f"LPIPS net_type must be one of {sorted(BACKBONE_FILES)}, got {net_type!r}")
    return Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net_type]


def lpips_unavailable_reason(net_type: str = "alex") -> str | None:
    """None when LPIPS with ``net_type`` can run without downloading anything, else why not (one line)."""
    if importlib.util.find_spec("torchvision") is None:
        return "torchvision is not installed (torchmetrics builds the LPIPS backbone with it)"
    weights = backbone_weights_path(net_type)
    if not weights.is_file():
        return (
            f"the {net_type} backbone weights are not in the torch cache ({weights}); nothing is downloaded"
        )
    return None


class TorchmetricsLPIPS(nn.Module):
    """torchmetrics' LPIPS network: ``(preds, target)`` (B,3,H,W) in [0, 1] -> (B,) distances."""

    def __init__(self, net_type: str = "alex") -> None:
        super().__init__()
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self.network = LearnedPerceptualImagePatchSimilarity(net_type=net_type, normalize=True).net

    def forward(self, preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.network(preds, target, normalize=True).flatten()


class LPIPS(nn.Module):
    """Mean LPIPS between inpainted images and targets, in total and per hole-ratio bucket.

    ``update(preds, target, masks)`` with images (B,3,H,W) in [0, 1] and masks (B,1,H,W), 1 = hole.
    ``compute()`` returns :class:`~mtmsa.evaluation.buckets.BucketedValues` of ``lpips`` (buckets without
    images left out). ``scorer(preds, target) -> (B,)`` gives the per-image distances; by default
    torchmetrics' LPIPS network of ``net_type``: build that only when :func:`lpips_unavailable_reason`
    returns None.
    """

    def __init__(
        self,
        buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS,
        net_type: str = "alex",
        scorer: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.scorer = scorer if scorer is not None else TorchmetricsLPIPS(net_type)
        self.bucketed = Bucketed(lambda: ImageMeans(("lpips",)), buckets)

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> None:
        scores = self.scorer(preds.clamp(0.0, 1.0), target.clamp(0.0, 1.0)).double()
        self.bucketed.update(masks, scores[:, None])

    def compute(self) -> BucketedValues:
        return self.bucketed.compute()
