"""What an attention module returns beside its features: a typed record that readers use by field.

The generator only passes the record on (``GeneratorOutput.aux``); training statistics, previews and the
notebook read its fields, so none of them needs to know which attention class made it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields

import torch

TENSOR_FIELDS = ("temperature", "hole", "attention")


@dataclass(frozen=True, eq=False)
class AttentionOutput(Mapping[str, torch.Tensor]):
    """The second value of ``attention(x, mask, return_attention=False) -> (y, AttentionOutput)``.

    Every field is optional; an attention without temperatures (DeepFill's contextual attention, the
    ``none`` option) returns an empty record.

    Attributes:
        temperature: (B, heads, H, W) softmax temperatures the heads used, within ``temperature_range``.
        hole: (B, 1, H, W) key hole at feature scale: 1 where a position is never attended to.
        attention: (B, heads, HW, HW) attention probabilities; only with ``return_attention=True``.
        temperature_range: (t_min, t_max) bounding the temperatures: the scale to draw them on.

    It also reads as a mapping of its tensors that are set (``aux["temperature"]``, ``"attention" in aux``),
    the interface of the attention modules before this record existed.
    """

    temperature: torch.Tensor | None = None
    hole: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    temperature_range: tuple[float, float] | None = None

    @property
    def heads(self) -> int:
        """Number of temperature heads (0 without temperatures)."""
        return 0 if self.temperature is None else int(self.temperature.shape[1])

    def __getitem__(self, name: str) -> torch.Tensor:
        value = getattr(self, name, None) if name in TENSOR_FIELDS else None
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return (f.name for f in fields(self) if f.name in TENSOR_FIELDS and getattr(self, f.name) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)
