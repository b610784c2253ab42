"""Scoring another method (LaMa, MAT, yours) on our images and masks.

``mtmsa-evaluate export_masks=DIR`` writes each evaluation image as the model sees it (cropped, resized,
8-bit) and its fixed evaluation mask, named as LaMa's evaluation reads them: ``<name>.png`` and
``<name>_mask000.png`` (white = hole), ``<name>`` the image's index in the split, six digits. Fill them
with any method, write ``<name>.png`` into a folder, and ``mtmsa-evaluate predictions=FOLDER`` scores
those fills with the same table as a checkpoint (known pixels are taken from the ground truth, as for
every method here).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mtmsa.data.io import IMAGE_EXTENSIONS, read_image_size, read_rgb
from mtmsa.utils.errors import UserInputError
from mtmsa.utils.files import replaced_atomically
from mtmsa.utils.images import composite, to_model_range, to_uint8, to_unit_range

MASK_SUFFIX = "_mask000"


def file_stem(index: int) -> str:
    """The file name (without ending) of the split's image ``index``."""
    return f"{index:06d}"


def write_evaluation_set(
    folder: Path, images: torch.Tensor, masks: torch.Tensor, indices: torch.Tensor
) -> None:
    """Write images (B,3,H,W) in [-1,1] as ``<name>.png`` and masks (B,1,H,W) as ``<name>_mask000.png``."""
    pixels = to_uint8(to_unit_range(images)).permute(0, 2, 3, 1).cpu().numpy()
    holes = (masks[:, 0] > 0.5).cpu().numpy().astype(np.uint8) * 255
    for image, hole, index in zip(pixels, holes, indices.tolist(), strict=True):
        for suffix, array in (("", image), (MASK_SUFFIX, hole)):
            with replaced_atomically(folder / f"{file_stem(index)}{suffix}.png") as partial:
                Image.fromarray(array).save(partial)


class PredictionFolder:
    """Fills of another method: ``<name>.<ending>`` for every image of the evaluation.

    Call: ``(images (B,3,H,W) in [-1,1], masks (B,1,H,W), sketches, indices (B,)) -> completed (B,3,H,W)``,
    the files' pixels in the hole and the ground truth elsewhere. :meth:`check_names` refuses a folder
    without one file per expected index or with any other image (masks ``*_mask*`` aside); a file of the
    wrong size is refused when read.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserInputError(
                f"predictions={self.folder} is not a folder; give the folder of filled images"
            )
        self.files = {
            path.stem: path
            for path in self.folder.iterdir()
            if path.suffix.lower() in IMAGE_EXTENSIONS and "_mask" not in path.stem
        }

    def check_names(self, indices: Sequence[int]) -> None:
        """UserInputError in one line unless the folder holds exactly the files of the images ``indices``."""
        expected = {file_stem(i) for i in indices}
        missing, extra = sorted(expected - set(self.files)), sorted(set(self.files) - expected)
        if missing or extra:
            problem = f"lacks {len(missing)} (e.g. {missing[0]}.png)" if missing else ""
            problem += (" and " if missing and extra else "") + (
                f"has {len(extra)} unexpected (e.g. {self.files[extra[0]].name})" if extra else ""
            )
            raise UserInputError(
                f"predictions={self.folder} {problem} of the {len(expected)} files named like the images of "
                "export_masks=DIR (<name>.png); fill exactly those, with the same dataset, split and limit"
            )

    def __call__(
        self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor, indices: torch.Tensor
    ) -> torch.Tensor:
        height, width = images.shape[-2:]
        filled = []
        for index in indices.tolist():
            path = self.files[file_stem(index)]
            if (size := read_image_size(path)) != (height, width):
                raise UserInputError(
                    f"prediction {path} is {size[1]}x{size[0]} but its image is {width}x{height}; fill the "
                    "exported images at their own size"
                )
            filled.append(torch.from_numpy(read_rgb(path)).permute(2, 0, 1))
        predictions = to_model_range(torch.stack(filled).float().div(255.0)).to(images)
        return composite(predictions, images, masks)
