"""Every option of mtmsa's configs, declared once with its type and range, and the check of a composed
config against them (run by the entry points before any data is read or model built).

Where an option is declared (one line each, in the schema of its ``_target_`` or of its entry config):

- ``model``, ``model/attention``: :mod:`mtmsa.conf.schema.model`;
- ``dataset``, ``mask``, ``sketch``: :mod:`mtmsa.conf.schema.data`;
- ``trainer``, ``callbacks``, ``logger``, ``paths`` and the top level of train.yaml, evaluate.yaml and
  preview.yaml: :mod:`mtmsa.conf.schema.run`;
- checks across options and against the file system: :mod:`mtmsa.conf.schema.rules`.

The kinds of value (integer, number, text, range, ...) are in :mod:`mtmsa.conf.schema.kinds`.
"""

from mtmsa.conf.schema.check import TARGETS, ConfigError, check_config, config_problems

__all__ = ["TARGETS", "ConfigError", "check_config", "config_problems"]
