"""Using a trained model: reading checkpoints without running code (:mod:`~mtmsa.inference.checkpoints`),
inpainting images of any size (:mod:`~mtmsa.inference.inpainter`), the files of ``python -m mtmsa.inpaint``
(:mod:`~mtmsa.inference.jobs`), exporting to ONNX and TorchScript (:mod:`~mtmsa.inference.export`, run by
:mod:`~mtmsa.inference.onnx_runtime`) and portable safetensors weights (:mod:`~mtmsa.inference.pretrained`).

``load_pretrained(path)`` reads a checkpoint or an exported safetensors folder."""

from mtmsa.inference.pretrained import load_pretrained

__all__ = ["load_pretrained"]
