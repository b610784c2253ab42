"""The table of config checks: every declared option of every config group with a value of the wrong type,
values out of its range and valid edge values, generated from the schemas (mtmsa/conf/schema), so that an
option declared tomorrow is in the table tomorrow.

Each option is found in one of :data:`HOSTS`, the command lines whose composed configs hold every schema
between them; an option that none of them sets (``trainer.benchmark``) is added with ``+``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from omegaconf import DictConfig

from mtmsa.conf.schema.base import Schema
from mtmsa.conf.schema.check import ROOTS, hydra_key, join, node_schema
from mtmsa.conf.schema.kinds import Anything, Kind, Node, Nodes, Weights
from mtmsa.utils.config import compose_config

HOSTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("train", ()),
    ("train", ("model/attention=contextual",)),
    ("train", ("mask=mixed", "sketch=none", "logger=tensorboard")),
    ("train", ("logger=wandb", "model/attention=none")),
    ("evaluate", ("baseline=mean",)),
    ("preview", ()),
)
"""(tool, overrides) of the command lines the options are tried in."""

STRUCTURAL = (Node, Nodes, Anything, Weights)
"""Kinds left to the hand-written cases: whole config nodes, mappings, anything."""

EDGE_CONTEXT = {
    "dataset.resize": ("dataset.image_size=32",),
    "trainer.val_check_interval": ("trainer.check_val_every_n_epoch=1",),
    "model.attention.temperature.init": ("model.attention.temperature.range=[1e-07,1.0]",),
    "callbacks.model_checkpoint.mode=min": ("optimized_metric=val/l1_hole",),
}
"""Overrides an edge value (of an option, or ``option=value``) needs beside it: a resize at the smallest
crop needs that crop, keeping the lowest value of a metric needs a metric where lower is better."""


@dataclass(frozen=True)
class Option:
    """A declared option as found in a host: ``present`` False when it is added with ``+``."""

    tool: str
    host: tuple[str, ...]
    path: str
    kind: Kind
    schema: Schema
    present: bool

    def override(self, value: str) -> str:
        return f"{'' if self.present else '+'}{self.path}={value}"


@dataclass(frozen=True)
class Case:
    """One command line of the table: ``bad`` ones must be refused naming ``option.path``."""

    option: Option
    what: str  # "wrong type", "out of range" or "edge"
    value: str

    @property
    def bad(self) -> bool:
        return self.what != "edge"

    @property
    def assignment(self) -> str:
        return f"{self.option.path}={self.value}"

    @property
    def argv(self) -> list[str]:
        context = (
            () if self.bad else EDGE_CONTEXT.get(self.option.path, EDGE_CONTEXT.get(self.assignment, ()))
        )
        return [*self.option.host, *context, self.option.override(self.value)]

    @property
    def id(self) -> str:
        return f"{self.option.tool}:{self.option.path}={self.value} ({self.what})"


def _nodes(cfg: DictConfig, schema: Schema, path: str) -> Iterator[tuple[str, Schema, DictConfig]]:
    """Every (path, schema, node) below and including ``cfg`` that has a schema."""
    yield path, schema, cfg
    for key in map(str, cfg.keys()):
        if hydra_key(key) or (not path and key == "hydra"):
            continue
        kind = schema.fields.get(key)
        child = cfg.get(key)
        if not isinstance(child, DictConfig):
            continue
        if isinstance(kind, Node):
            child_schema = node_schema(child, kind.schema)
            if child_schema is not None:
                yield from _nodes(child, child_schema, join(path, key))
        elif isinstance(kind, Nodes):
            for name, entry in child.items():
                entry_schema = node_schema(entry)
                if entry_schema is not None:
                    yield from _nodes(entry, entry_schema, join(join(path, key), str(name)))


def options() -> list[Option]:
    """Every declared option once (per schema and key): where a host sets it, else where its node is."""
    sightings: dict[tuple[int, str], list[Option]] = {}
    for tool, host in HOSTS:
        cfg = compose_config(tool, list(host), "not-written")
        for path, schema, node in _nodes(cfg, ROOTS[tool], ""):
            for key, kind in schema.fields.items():
                if not isinstance(kind, STRUCTURAL):
                    option = Option(tool, host, join(path, key), kind, schema, key in node)
                    sightings.setdefault((id(schema), key), []).append(option)
    chosen = [next((o for o in seen if o.present), seen[0]) for seen in sightings.values()]
    return sorted(chosen, key=lambda o: (o.tool, o.path))


def cases() -> list[Case]:
    """For each option: its first wrong type, up to two values out of range, its lowest and highest edges."""
    table = []
    for option in options():
        kind, edges = option.kind, option.kind.edges()
        table += [Case(option, "wrong type", value) for value in kind.wrong_types()[:1]]
        table += [Case(option, "out of range", value) for value in kind.out_of_range()[:2]]
        table += [Case(option, "edge", value) for value in dict.fromkeys([edges[0], edges[-1]])]
    return table
