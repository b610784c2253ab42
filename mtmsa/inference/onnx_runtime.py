"""A generator exported by ``mtmsa-export`` (:mod:`mtmsa.inference.export`), run by ONNX Runtime.

:class:`OnnxGenerator` has the interface :class:`~mtmsa.inference.inpainter.Inpainter` uses, so
``mtmsa-inpaint --model generator.onnx`` runs the same code as ``--checkpoint`` around a different network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from mtmsa.inference.export import INPUT_NAMES, OUTPUT_NAMES, optional_module
from mtmsa.models.generator import GeneratorOutput
from mtmsa.models.outputs import AttentionOutput
from mtmsa.utils.errors import UserInputError


class OnnxGenerator:
    """An exported generator in an ONNX Runtime session (CPU unless ``providers`` say otherwise).

    Call: images (B,3,H,W), masks (B,1,H,W), sketches (B,1,H,W) tensors -> :class:`GeneratorOutput` with
    ``refined`` and ``coarse`` (B,3,H,W) on the inputs' device and an empty attention record.
    ``image_size`` is the trained resolution and ``size_multiple`` what H and W must divide by.
    """

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None) -> None:
        onnxruntime = optional_module("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"model {path} does not exist; write one with mtmsa-export --checkpoint C"
            )
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(
                os.fspath(path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for unreadable graphs
            raise UserInputError(
                f"cannot use model {path}: not an ONNX graph ONNX Runtime can load ({error}); "
                "write one with mtmsa-export"
            ) from error
        metadata = self.session.get_modelmeta().custom_metadata_map
        names = tuple(node.name for node in self.session.get_inputs())
        if names != INPUT_NAMES or "mtmsa.image_size" not in metadata:
            raise UserInputError(
                f"cannot use model {path}: it was not written by mtmsa-export (inputs {list(names)}, no "
                "mtmsa.image_size); export the generator with mtmsa-export --checkpoint C --out model.onnx"
            )
        self.image_size = int(metadata["mtmsa.image_size"])
        self.size_multiple = int(metadata["mtmsa.size_multiple"])

    def __call__(self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor) -> GeneratorOutput:
        feeds = {
            name: tensor.detach().float().cpu().contiguous().numpy()
            for name, tensor in zip(INPUT_NAMES, (images, masks, sketches), strict=True)
        }
        refined, coarse = (
            torch.from_numpy(array).to(images.device) for array in self.session.run(list(OUTPUT_NAMES), feeds)
        )
        return GeneratorOutput(coarse=coarse, refined=refined, aux=AttentionOutput())
