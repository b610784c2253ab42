"""The kinds of value a config option takes: each knows its type and range, says them in words, and offers
values for the tests (a wrong type, values out of range, valid edges, as Hydra overrides). Values are checked
as Hydra's override grammar and YAML give them (``5`` an int, ``1e-4`` a float, ``abc`` a str, ``null`` None,
``[1,2]`` a list); no string is converted to a number: ``dataset.batch_size='8'`` is refused like ``abc``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def spelled(value: Any) -> str:
    """A value as a user types it in an override: ``abc``, ``1.5``, ``[1, 2]``, ``null``, ``true``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value if value and not value.isspace() else repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(spelled(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {spelled(v)}" for k, v in value.items()) + "}"
    return str(value)


@dataclass(frozen=True, kw_only=True)
class Kind:
    """Base of the kinds. ``nullable``: null is allowed too (meaning ``null_means``); ``also``: further
    values allowed as they are (``-1`` for "no limit"), meaning ``also_means``; ``note``: why the range is
    what it is, appended to the message."""

    nullable: bool = False
    also: tuple = ()
    also_means: str = ""
    null_means: str = ""
    note: str = ""

    def test(self, value: Any) -> bool:
        """Whether ``value`` (neither null nor one of ``also``) is of the kind and in range."""
        raise NotImplementedError

    def words(self) -> str:
        """What the kind allows, in words: "an integer >= 1"."""
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if any(type(value) is type(a) and value == a for a in self.also):
            return True
        return self.test(value)

    @property
    def allowed(self) -> str:
        extra = [spelled(a) + (f" ({self.also_means})" if self.also_means else "") for a in self.also]
        if self.nullable:
            extra.append("null" + (f" ({self.null_means})" if self.null_means else ""))
        return " or ".join(filter(None, [self.words(), *extra]))

    # Values for the table-driven tests, as override strings.
    def wrong_types(self) -> tuple[str, ...]:
        return ("abc",)

    def out_of_range(self) -> tuple[str, ...]:
        return ()

    def edges(self) -> tuple[str, ...]:
        return ("null",) if self.nullable else ()


def _bounds(low, high, low_open: bool = False, high_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high}"
    return ""


@dataclass(frozen=True)
class Integer(Kind):
    """An int in [min, max]; ``odd``/``even``/``multiple_of`` restrict it further."""

    min: int | None = None
    max: int | None = None
    odd: bool = False
    even: bool = False
    multiple_of: int | None = None

    def test(self, value: Any) -> bool:
        return (
            is_int(value)
            and (self.min is None or value >= self.min)
            and (self.max is None or value <= self.max)
            and not (self.odd and value % 2 == 0)
            and not (self.even and value % 2)
            and not (self.multiple_of and value % self.multiple_of)
        )

    def words(self) -> str:
        noun = "an odd integer" if self.odd else "an even integer" if self.even else "an integer"
        if self.multiple_of:
            noun = f"a multiple of {self.multiple_of}"
        return " ".join(filter(None, [noun, _bounds(self.min, self.max)]))

    def wrong_types(self) -> tuple[str, ...]:
        return ("abc", "1.5")

    def out_of_range(self) -> tuple[str, ...]:
        values = []
        if self.min is not None:
            below = self.min - (self.multiple_of or 1)
            values.append(below if below not in self.also else min(self.also) - 1)
        if self.max is not None:
            values.append(self.max + 1)
        if self.multiple_of:
            values.append(self.first() + 2 if self.multiple_of > 2 else self.first() + 1)
        if self.odd or self.even:
            values.append(self.first() + 1)
        return tuple(str(v) for v in values if v not in self.also)

    def first(self) -> int:  # the smallest value of the kind (from 0 without a minimum)
        value = 0 if self.min is None else self.min
        while not self.test(value):
            value += 1
        return value

    def edges(self) -> tuple[str, ...]:
        values = [self.first()]
        if self.max is not None:
            values.append(self.max)
        return tuple(str(v) for v in values) + super().edges()


@dataclass(frozen=True)
class Number(Kind):
    """A finite int or float in the interval from min to max (each end open or closed)."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def test(self, value: Any) -> bool:
        if not is_number(value):
            return False
        if self.min is not None and (value <= self.min if self.min_open else value < self.min):
            return False
        return self.max is None or (value < self.max if self.max_open else value <= self.max)

    def words(self) -> str:
        return " ".join(filter(None, ["a number", _bounds(self.min, self.max, self.min_open, self.max_open)]))

    def out_of_range(self) -> tuple[str, ...]:
        values = []
        if self.min is not None:
            values.append(self.min if self.min_open else self.min - 1)
        if self.max is not None:
            values.append(self.max if self.max_open else self.max + 1)
        return tuple(str(float(v)) for v in values) + (() if self.min is not None else ("nan",))

    def edges(self) -> tuple[str, ...]:
        values = []
        if self.min is not None:
            values.append(self.min + 1e-6 if self.min_open else self.min)
        if self.max is not None:
            values.append(self.max - 1e-6 if self.max_open else self.max)
        return tuple(repr(float(v)) for v in values or [1.5]) + super().edges()


@dataclass(frozen=True)
class Boolean(Kind):
    def test(self, value: Any) -> bool:
        return isinstance(value, bool)

    def words(self) -> str:
        return "true or false"

    def wrong_types(self) -> tuple[str, ...]:
        return ("maybe", "2")

    def edges(self) -> tuple[str, ...]:
        return ("true", "false") + super().edges()


@dataclass(frozen=True)
class Text(Kind):
    """A non-empty string (``empty=True``: may be empty), one of ``choices`` when given, matching
    ``pattern`` when given; ``described`` says what it is ("a folder") where the choices do not;
    ``examples``: valid values (for the tests) where neither choices nor "x" are."""

    choices: tuple[str, ...] = ()
    pattern: str = ""
    described: str = ""
    empty: bool = False
    examples: tuple[str, ...] = ()

    def test(self, value: Any) -> bool:
        if not isinstance(value, str) or (not value.strip() and not self.empty):
            return False
        if self.choices and value not in self.choices:
            return False
        return not self.pattern or re.fullmatch(self.pattern, value) is not None

    def words(self) -> str:
        if self.choices:
            return "one of " + ", ".join(self.choices)
        return self.described or ("a text" if self.empty else "a non-empty text")

    def wrong_types(self) -> tuple[str, ...]:
        return ("[a,b]",)

    def out_of_range(self) -> tuple[str, ...]:
        if self.choices:
            return ("nonsense",)
        return ("nonsense",) if self.pattern else () if self.empty else ("''",)

    def edges(self) -> tuple[str, ...]:
        return (self.examples or self.choices or ("x",)) + super().edges()


@dataclass(frozen=True)
class Choice(Kind):
    """One of ``values`` exactly, of whatever types (``precision``: ``bf16-mixed`` or ``32``)."""

    values: tuple = ()

    def test(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def words(self) -> str:
        shown = list(dict.fromkeys(spelled(v) for v in self.values))  # 32 and "32" read the same
        return ("one of " if len(shown) > 1 else "") + ", ".join(shown)

    def out_of_range(self) -> tuple[str, ...]:
        return ("nonsense",)

    def wrong_types(self) -> tuple[str, ...]:
        return ("[a,b]",)

    def edges(self) -> tuple[str, ...]:
        return tuple(spelled(v) for v in self.values) + super().edges()


@dataclass(frozen=True)
class Pair(Kind):
    """A range ``[low, high]`` of two values of kind ``of`` with low <= high (``strict``: low < high)."""

    of: Kind = Number()
    strict: bool = False

    def test(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or len(value) != 2 or not all(map(self.of.accepts, value)):
            return False
        return value[0] < value[1] if self.strict else value[0] <= value[1]

    def words(self) -> str:
        of = self.of.words().replace("an integer", "integers").replace("a number", "numbers")
        return f"a range [low, high] of {of} with low {'<' if self.strict else '<='} high"

    def wrong_types(self) -> tuple[str, ...]:
        return ("abc", "[a,b]", "[1,2,3]")

    def out_of_range(self) -> tuple[str, ...]:
        low, high = self._edge_values()
        outside = [v for v in self.of.out_of_range() if v != "nan"][:1]
        return (f"[{high},{low}]", *(f"[{v},{high}]" for v in outside))

    def _edge_values(self) -> tuple[str, str]:
        """Two valid values of ``of``, the lower first."""
        edges = [e for e in self.of.edges() if e != "null"]
        if len(edges) > 1:
            return edges[0], edges[-1]
        return edges[0], str(int(edges[0]) + 1) if isinstance(self.of, Integer) else str(float(edges[0]) + 1)

    def edges(self) -> tuple[str, ...]:
        low, high = self._edge_values()
        values = [f"[{low},{high}]"] + ([] if self.strict else [f"[{low},{low}]"])
        return tuple(values) + super().edges()


@dataclass(frozen=True)
class Items(Kind):
    """A list of values of kind ``of`` (``tags``: texts; ``trainer.devices``: device indices)."""

    of: Kind = Text()
    nonempty: bool = False

    def test(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or (self.nonempty and not value):
            return False
        return all(self.of.accepts(item) for item in value)

    def words(self) -> str:
        of = self.of.words().replace("an integer", "integers").replace("a non-empty text", "texts")
        return f"a list of {of}"

    def wrong_types(self) -> tuple[str, ...]:
        return ("abc",)

    def out_of_range(self) -> tuple[str, ...]:
        return tuple(f"[{v}]" for v in self.of.out_of_range()[:1])

    def edges(self) -> tuple[str, ...]:
        valid = [e for e in self.of.edges() if e != "null"][:2]
        return ("[" + ",".join(valid) + "]",) + (() if self.nonempty else ("[]",)) + super().edges()


@dataclass(frozen=True)
class Node(Kind):
    """A config node (a mapping): checked by ``schema`` when given, else by the schema of its ``_target_``."""

    schema: Any = None

    def test(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def words(self) -> str:
        return "a config node"


@dataclass(frozen=True)
class Nodes(Kind):
    """A mapping of names to config nodes (``callbacks``, ``logger``, mixed masks' ``generators``); each
    entry is checked by the schema of its ``_target_``; a null entry is left out, as the tools do."""

    def test(self, value: Any) -> bool:
        return isinstance(value, Mapping) and all(v is None or isinstance(v, Mapping) for v in value.values())

    def words(self) -> str:
        return "a mapping of names to config nodes"


@dataclass(frozen=True)
class Weights(Kind):
    """A non-empty mapping of names to numbers >= 0 with a positive sum."""

    def test(self, value: Any) -> bool:
        weights = list(value.values()) if isinstance(value, Mapping) else []
        return bool(weights) and all(is_number(w) and w >= 0 for w in weights) and sum(weights) > 0

    def words(self) -> str:
        return "a mapping of names to numbers >= 0 with a positive sum"


@dataclass(frozen=True)
class AnyOf(Kind):
    """A value of any of ``kinds`` (``val_check_interval``: an integer >= 1 or a fraction in (0, 1])."""

    kinds: tuple[Kind, ...] = ()

    def test(self, value: Any) -> bool:
        return any(kind.accepts(value) for kind in self.kinds)

    def words(self) -> str:
        return " or ".join(kind.allowed for kind in self.kinds)

    def wrong_types(self) -> tuple[str, ...]:
        import yaml  # override values read like YAML's flow style, enough for these

        candidates = ("abc", "1.5", "[a,b]", "maybe", "{a: 1}")
        return tuple(v for v in candidates if not self.accepts(yaml.safe_load(v)))[:1]

    def out_of_range(self) -> tuple[str, ...]:
        import yaml

        return tuple(v for k in self.kinds for v in k.out_of_range() if not self.accepts(yaml.safe_load(v)))[
            :2
        ]

    def edges(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v for kind in self.kinds for v in kind.edges())) + super().edges()


@dataclass(frozen=True)
class Anything(Kind):
    """Any value (``trainer.plugins``): passed on as it is, checked by its user."""

    def test(self, value: Any) -> bool:
        return True

    def words(self) -> str:
        return "any value"
