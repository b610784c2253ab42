"""Helpers shared by the test modules: configs and runs (:mod:`.runs`), broken and odd image files
(:mod:`.bad_files`), reading an offline wandb run (:mod:`.wandb_records`) and the :class:`.run_if.RunIf` marker."""
