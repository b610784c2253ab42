"""Seeds that are a pure function of (seed, sample index, stream): the same on every run and device."""

from __future__ import annotations

import hashlib


def sample_seed(seed: int, index: int, stream: str = "mask") -> int:
    """A 63-bit seed for sample ``index`` of the random ``stream`` ("mask", "sketch", ...) under ``seed``."""
    digest = hashlib.sha256(f"mtmsa-{stream}:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
