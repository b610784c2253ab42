"""A schema: the options of one kind of config node, each declared once with its kind (type and range)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from omegaconf import DictConfig

from mtmsa.conf.schema.kinds import Kind

NodeRule = Callable[[DictConfig, str], Iterable[str]]
"""A check across the options of one node: ``rule(node, path) -> messages`` (empty when all is well); it
runs after every option of the node passed its own check."""


@dataclass(frozen=True)
class Schema:
    """The options of a config node: ``fields`` maps each key to its kind.

    ``title`` names the node in messages ("dataset", "mask strokes (BrushStrokes)"). ``closed``: keys that
    are not declared are refused, naming the declared ones (the node's ``_target_`` would refuse them
    anyway, later); open schemas (Lightning's Trainer, torch's optimizers, the top of an entry config)
    pass unknown keys on, as Hydra's ``+key=value`` intends. ``required``: keys that must be present.
    ``rules``: checks across the node's options. Hydra's own keys (``_target_``, ``_partial_``, ...) are
    always allowed.
    """

    title: str
    fields: Mapping[str, Kind]
    closed: bool = True
    required: tuple[str, ...] = ()
    rules: tuple[NodeRule, ...] = field(default=())
