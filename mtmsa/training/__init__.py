"""How the model learns: the LightningModule (:mod:`~mtmsa.training.module`), its callbacks, surviving kills
and preemption (:mod:`~mtmsa.training.fault_tolerance`), loggers, sweep summaries and the end-of-run table."""
