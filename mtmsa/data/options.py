"""Checking the range options of the mask and sketch configs ([low, high] pairs)."""

from __future__ import annotations

from collections.abc import Sequence


def option_range(values: Sequence[float], option: str, kind: type = float) -> tuple:
    """``(low, high)`` of a config value ``[low, high]`` with ``0 <= low <= high``, each converted by ``kind``
    (float, or int for counts); a ValueError naming ``option`` (e.g. "mask option width") otherwise."""
    low, high = (kind(v) for v in values)
    if not 0 <= low <= high:
        of = "of counts " if kind is int else ""
        raise ValueError(
            f"{option} must be a range [low, high] {of}with 0 <= low <= high, got {list(values)}"
        )
    return low, high
