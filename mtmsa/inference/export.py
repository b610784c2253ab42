"""Writing a trained generator for other runtimes: ONNX (dynamic batch, height and width), TorchScript, and
portable safetensors weights with a model card (:mod:`mtmsa.inference.pretrained`).

The exported graph is the generator's forward, ``(images (B,3,H,W) in [-1,1], masks (B,1,H,W) 1 = hole,
sketches (B,1,H,W)) -> (refined, coarse)``, both (B,3,H,W) in [-1,1] and not composited (paste
``refined`` into the hole: ``masks * refined + (1 - masks) * images``). H and W must be multiples of the
generator's ``size_multiple`` (4). Two parts of the eager model have shapes that depend on the data or the
size, which a graph cannot hold; :func:`fixed_shape_copy` switches them to equivalent fixed-shape forms:
the fused attention keeps every key and masks the unusable ones in the kernel instead of gathering them
(``gather_keys = False``), and the pull-push fill builds :data:`PULL_PUSH_LEVELS` pyramid levels whatever
the size. The graph does not return the attention's record (temperatures, key hole, attention maps).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from mtmsa.inference.checkpoints import TrainedGenerator
from mtmsa.utils.errors import UserInputError

FORMATS = ("onnx", "torchscript", "safetensors")
INPUT_NAMES = ("images", "masks", "sketches")
OUTPUT_NAMES = ("refined", "coarse")
PULL_PUSH_LEVELS = 11
"""Pyramid levels of the exported pull-push fill: image sides up to 2**11 = 2048 pixels."""
MAX_SIDE = 2**PULL_PUSH_LEVELS
EXAMPLE_SIZE = (2, MAX_SIDE // 2 + 4, MAX_SIDE // 2 + 8)
"""(batch, height, width) of the example the ONNX graph is traced with (symbolically: no pixel is computed).
torch.export fixes every size that is 0 or 1 in the example as a constant, so each pyramid level that can be
larger than 1 pixel must be larger in the example: both sides above MAX_SIDE / 2, and all three different."""
TRACE_SIZE = (2, 36, 44)
"""(batch, height, width) of the example TorchScript is traced with. Tracing runs the forward once and records
each size as it is read, so the graph works at every size; a small example keeps the run short."""
OPSET = 18


class GraphGenerator(nn.Module):
    """A fixed-shape copy of a generator with tensor outputs only, what exporters trace.

    forward: images (B,3,H,W), masks (B,1,H,W), sketches (B,1,H,W) -> (refined, coarse), each (B,3,H,W).
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = fixed_shape_copy(generator)

    def forward(
        self, images: torch.Tensor, masks: torch.Tensor, sketches: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        output = self.generator(images, masks, sketches)
        return output.refined, output.coarse


def fixed_shape_copy(generator: nn.Module) -> nn.Module:
    """A copy of ``generator`` (eval mode) whose operations do not depend on the mask's content or the size:
    attention without the key gather, pull-push with :data:`PULL_PUSH_LEVELS` levels. Same outputs."""
    fixed = copy.deepcopy(generator).eval()
    fixed.initial_fill_levels = PULL_PUSH_LEVELS
    for module in fixed.modules():
        if hasattr(module, "gather_keys"):
            module.gather_keys = False
    return fixed


def example_inputs(
    generator: nn.Module, size: tuple[int, int, int] = EXAMPLE_SIZE
) -> tuple[torch.Tensor, ...]:
    """Images, masks (a box hole in each sample) and sketches of ``size`` (B, H, W) for tracing."""
    batch, height, width = size
    images = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(0)) * 2 - 1
    masks = torch.zeros(batch, 1, height, width)
    masks[:, :, height // 4 : height // 2, width // 4 : width // 2] = 1.0
    sketch_channels = int(getattr(generator, "in_channels", 5)) - 4
    return images, masks, torch.zeros(batch, sketch_channels, height, width)


def export_onnx(trained: TrainedGenerator, path: Path) -> Path:
    """Write ``trained``'s generator as ONNX with dynamic batch, height and width, and its metadata
    (:func:`graph_metadata`) in the model's properties. Needs the ``export`` extra (onnx, onnxscript)."""
    onnx = optional_module("onnx")
    optional_module("onnxscript")
    graph = GraphGenerator(trained.generator)
    multiple = int(trained.generator.size_multiple)
    batch = torch.export.Dim("batch", min=1)
    height = torch.export.Dim("height", min=1, max=MAX_SIDE // multiple)
    width = torch.export.Dim("width", min=1, max=MAX_SIDE // multiple)
    dims = {0: batch, 2: multiple * height, 3: multiple * width}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            graph,
            example_inputs(trained.generator),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={name: dims for name in INPUT_NAMES},
            opset_version=OPSET,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, graph_metadata(trained))
    onnx.save_model(model, os.fspath(path))
    return path


def export_torchscript(trained: TrainedGenerator, path: Path) -> Path:
    """Write ``trained``'s generator as a traced TorchScript module (sizes stay dynamic: the fixed-shape
    copy has no Python branch on them), with :func:`graph_metadata` as the extra file ``mtmsa.json``."""
    graph = GraphGenerator(trained.generator)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(graph, example_inputs(trained.generator, TRACE_SIZE), check_trace=False)
    torch.jit.save(traced, os.fspath(path), _extra_files={"mtmsa.json": json.dumps(graph_metadata(trained))})
    return path


def graph_metadata(trained: TrainedGenerator) -> dict[str, str]:
    """What a runtime needs beside the graph: the trained resolution, the size multiple, the input and output
    names and meaning, and the run configuration (JSON)."""
    return {
        "mtmsa.image_size": str(trained.image_size),
        "mtmsa.size_multiple": str(int(trained.generator.size_multiple)),
        "mtmsa.inputs": "images (B,3,H,W) in [-1,1]; masks (B,1,H,W) 1 = hole; sketches (B,1,H,W) 1 = stroke",
        "mtmsa.outputs": "refined, coarse (B,3,H,W) in [-1,1], not composited",
        "mtmsa.config": json.dumps(trained.config),
    }


def optional_module(module: str):
    """Import an optional dependency of the ``export`` extra, or explain how to install it."""
    try:
        return __import__(module)
    except ImportError as error:
        raise UserInputError(
            f"{module} is not installed; install the export extra: pip install 'mtmsa[export]'"
        ) from error
