"""What the dashboards show about whether a run learns: gradient norms per network part, the attention's
entropy, reach and masking, and a warning when a learned temperature sits at its upper bound."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from mtmsa.models.attention import feature_hole
from mtmsa.models.outputs import AttentionOutput

log = logging.getLogger(__name__)

UPPER_BOUND_SHARE = 0.9
"""A head whose mean temperature lies above this share of its log range is "at its upper bound"."""


def gradient_norms(parts: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    """The L2 norm of the current gradients of each part's parameters (parts without any are left out)."""
    norms = {}
    for name, part in parts.items():
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        if grads:
            norms[name] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    return norms


def attention_statistics(details: AttentionOutput, masks: torch.Tensor) -> dict[str, float]:
    """Per head, over the hole positions of sample 0 (``details`` from
    :func:`mtmsa.visualization.attention_maps.run_with_attention`, ``masks`` (B,1,H,W) of that batch):

    - ``entropy_head<k>``: entropy of the attention divided by the log of the number of keys it may use: 1 is
      uniform (a match that says nothing), 0 all mass on one key;
    - ``distance_head<k>``: mean distance in feature positions from a query to the keys it attends to;
    - ``mass_on_known``: attention mass on known keys (1 by construction; less would be a masking bug).

    Empty when the record holds no probabilities or sample 0 has no hole.
    """
    if details.attention is None or details.hole is None:
        return {}
    probabilities = details.attention[0].float()  # (heads, N, N)
    height, width = details.hole.shape[-2:]
    queries = feature_hole(masks[:1], (height, width)).flatten()
    if not queries.any():
        return {}
    usable = details.hole[0, 0].flatten() < 0.5
    rows = probabilities[:, queries]  # (heads, Q, N)
    entropy = -(rows * rows.clamp_min(1e-12).log()).sum(dim=-1) / math.log(max(int(usable.sum()), 2))
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    positions = torch.stack([ys.flatten(), xs.flatten()], dim=1).float().to(rows.device)
    distances = torch.cdist(positions[queries.to(rows.device)], positions)  # (Q, N)
    statistics = {"mass_on_known": float(rows[..., usable.to(rows.device)].sum(dim=-1).mean())}
    for head in range(rows.shape[0]):
        statistics[f"entropy_head{head}"] = float(entropy[head].mean())
        statistics[f"distance_head{head}"] = float((rows[head] * distances).sum(dim=-1).mean())
    return statistics


def heads_at_upper_bound(temperatures: Mapping[str, float], temperature_range: Iterable[float]) -> list[int]:
    """Heads whose mean temperature (``head<k>_mean`` values) lies in the top tenth of the log range."""
    low, high = (math.log(float(t)) for t in temperature_range)
    at_bound = []
    for name, value in temperatures.items():
        if name.startswith("head") and name.endswith("_mean"):
            share = (math.log(float(value)) - low) / (high - low)
            if share > UPPER_BOUND_SHARE:
                at_bound.append(int(name[len("head") : -len("_mean")]))
    return sorted(at_bound)


def warn_if_temperature_at_upper_bound(
    temperatures: Mapping[str, float], temperature_range: Iterable[float], step: int
) -> list[int]:
    """Log a warning naming the heads :func:`heads_at_upper_bound` finds, and return them."""
    heads = heads_at_upper_bound(temperatures, temperature_range)
    if heads:
        log.warning(
            "step %d: the learned temperature of head(s) %s sits at the top of its range %s: those heads "
            "average over all keys, i.e. their match is not informative (the attention finds nothing to "
            "copy); see the attention entropy on the dashboard",
            step,
            heads,
            list(temperature_range),
        )
    return heads
