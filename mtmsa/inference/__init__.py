"""Using a trained model: reading checkpoints without running code (:mod:`~mtmsa.inference.checkpoints`),
inpainting images of any size (:mod:`~mtmsa.inference.inpainter`) and the files of ``python -m mtmsa.inpaint``
(:mod:`~mtmsa.inference.jobs`)."""
