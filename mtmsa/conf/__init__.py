"""The Hydra configs of mtmsa, one group per folder, shipped inside the package.

The entry points find them as ``pkg://mtmsa.conf``; :data:`CONFIG_DIR` is the folder on disk (for
``hydra.initialize_config_dir`` in scripts, notebooks and tests). Add your own config folder on top with
``hydra.searchpath`` (see the README's "Your own configs").
"""

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
CONFIG_MODULE = __name__
"""``pkg://`` name of the configs: ``hydra.initialize_config_module(CONFIG_MODULE)``."""
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"
"""``config_path`` of the entry points' ``hydra.main``: found wherever the package is installed."""
