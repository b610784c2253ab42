"""How good a fill is: metrics per hole-ratio bucket (:mod:`~mtmsa.evaluation.buckets`), the fixed evaluation
masks (:mod:`~mtmsa.evaluation.masks`), PSNR/SSIM/L1, FID and LPIPS, classical fills to compare against
(:mod:`~mtmsa.evaluation.baselines`) and the reports of ``python -m mtmsa.evaluate``."""
