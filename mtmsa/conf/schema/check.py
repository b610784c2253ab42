"""Checking a composed config: every option against its declared kind, then the rules across options.

The walk starts at the entry config's schema (:data:`~mtmsa.conf.schema.run.ROOTS`) and follows the config
nodes: a node's schema is the one its option declares (``paths``, ``model.attention.temperature``) or else
the one of its ``_target_`` (:data:`TARGETS`). A node whose ``_target_`` has no schema (a class of your
own) is passed on unchecked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from mtmsa.conf.schema import data, model, run
from mtmsa.conf.schema.base import Schema
from mtmsa.conf.schema.kinds import Kind, Node, Nodes, spelled
from mtmsa.conf.schema.rules import FILE_RULES, RULES
from mtmsa.utils.errors import UserInputError

TARGETS: dict[str, Schema] = {**model.TARGETS, **data.TARGETS, **run.TARGETS}
"""The schema of each ``_target_`` mtmsa's configs use."""
ROOTS = run.ROOTS
TOOLS = tuple(ROOTS)


class ConfigError(UserInputError):
    """A configuration refused before any work. ``problems``: every message found (the first is shown:
    later ones may follow from it)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0])

    def __reduce__(self):
        return type(self), (self.problems,)

    def __str__(self) -> str:
        return self.problems[0]


def hydra_key(key: str) -> bool:
    """Keys Hydra itself reads (``_target_``, ``_partial_``, ``_recursive_``, ...)."""
    return key.startswith("_") and key.endswith("_")


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def node_schema(node: Any, declared: Schema | None = None) -> Schema | None:
    """The schema of a config node: the declared one, else the one of its ``_target_`` (None: unknown)."""
    if declared is not None:
        return declared
    return TARGETS.get(str(node.get("_target_"))) if isinstance(node, DictConfig) else None


def schema_at(cfg: DictConfig, tool: str, path: str) -> Schema | None:
    """The schema of the node at ``path`` ("" for the top) of a composed config, or None."""
    schema, node = ROOTS[tool], cfg
    for key in filter(None, path.split(".")):
        kind = schema.fields.get(key) if schema is not None else None
        node = node.get(key) if isinstance(node, DictConfig) else None
        if node is None:
            return None
        schema = node_schema(node, kind.schema if isinstance(kind, Node) else None)
        if schema is None and not isinstance(kind, Nodes):
            return None
    return schema


def unknown_key_message(path: str, schema: Schema, value: Any = None) -> str:
    """``dataset.batchsize is not an option of dataset (did you mean dataset.batch_size?); ...``"""
    parent, _, key = path.rpartition(".")
    options = sorted(k for k in schema.fields if not hydra_key(k))
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.6)
    hint = f" (did you mean {join(parent, close[0])}?)" if close else ""
    message = f"{path} is not an option of {schema.title}{hint}; its options are {', '.join(options)}"
    if not schema.closed:
        message += f"; to add a key of your own, use +{path}" + (
            "" if value is None else f"={spelled(value)}"
        )
    return message


def plain(node: DictConfig, key: str) -> Any:
    """The value of ``node[key]`` resolved: lists as Python lists, nodes as they are."""
    value = node[key]
    if isinstance(value, ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split("full_key:")[0].split())


def option_problem(path: str, kind: Kind, value: Any) -> str | None:
    if kind.accepts(value):
        return None
    return f"{path}={spelled(value)} is not {kind.allowed}" + (f" ({kind.note})" if kind.note else "")


def node_problems(node: DictConfig, schema: Schema, path: str) -> Iterator[str]:
    """Messages for every option of ``node`` (at ``path``) that ``schema`` refuses, then its rules'."""
    found = False
    for key in schema.required:
        if key not in node:
            found = True
            yield f"{join(path, key)} is missing ({schema.title} needs {', '.join(schema.required)})"
    present = [str(key) for key in node]
    in_order = [key for key in schema.fields if key in present] + [
        k for k in present if k not in schema.fields
    ]
    for key in in_order:  # declared order: options that others interpolate come first
        if hydra_key(key) or (not path and key == "hydra"):
            continue
        where, kind = join(path, key), schema.fields.get(key)
        if kind is None:
            if schema.closed:
                found = True
                yield unknown_key_message(where, schema)
            continue
        for problem in option_problems(node, key, kind, where):
            found = True
            yield problem
    if not found:
        for rule in schema.rules:
            yield from rule(node, path)


def option_problems(node: DictConfig, key: str, kind: Kind, where: str) -> Iterator[str]:
    try:
        value = plain(node, key)
    except MissingMandatoryValue:
        yield f"{where} is not set; give {where}=<{kind.allowed}>"
        return
    except OmegaConfBaseException as error:
        yield f"{where} cannot be resolved: {one_line(error)}"
        return
    problem = option_problem(where, kind, value)
    if problem is not None:
        yield problem
    elif isinstance(kind, Node) and value is not None:
        schema = node_schema(value, kind.schema)
        if schema is not None:
            yield from node_problems(value, schema, where)
    elif isinstance(kind, Nodes) and value is not None:
        for name, child in value.items():
            schema = node_schema(child)
            if schema is not None:
                yield from node_problems(child, schema, join(where, str(name)))


def config_problems(cfg: DictConfig, tool: str, files: bool = True) -> list[str]:
    """Every problem of a composed config of ``tool`` (train, evaluate, preview): first the options'
    own, then (when there are none) the rules across options and, with ``files``, the file system's."""
    problems = list(node_problems(cfg, ROOTS[tool], ""))
    if problems:
        return problems
    rules = RULES + (FILE_RULES if files else ())
    return [problem for rule in rules for problem in rule(cfg, tool)]


def check_config(cfg: DictConfig, tool: str, files: bool = True) -> None:
    """Raise :class:`ConfigError` naming the first problem of ``cfg`` (see :func:`config_problems`)."""
    problems = config_problems(cfg, tool, files)
    if problems:
        raise ConfigError(problems)
