"""Masked self-attention for inpainting: MTMSA, DeepFill's contextual attention, and a no-op.

All three modules share ``forward(x, mask, return_attention=False, guide=None) -> (y, aux)`` with x
(B,C,H,W), mask (B,1,H',W') of any size (1 = hole), y (B,C,H,W), aux an
:class:`~mtmsa.models.outputs.AttentionOutput`, and an optional ``guide`` (B,G,H,W): what to match on, when
that is not x. They take ``channels`` as first constructor argument and accept ``guide_channels``.

**TemperatureMaskedAttention (MTMSA).**

- Matching. A position is described by one ``patch_size`` x ``patch_size`` conv (``match``) of the guide
  (x when no guide is given), the same conv for queries and keys: a symmetric, learned metric on
  neighbourhoods, which is what patch matching compares. Its random initialisation is a random projection
  of the kxk neighbourhood, which keeps inner products roughly (Johnson-Lindenstrauss), so the untrained
  module already matches similar neighbourhoods and learning refines a match that is informative from the
  first step (separate random query and key projections would start with a random match). The generator
  hands over the known image at the attention's resolution as the guide: a query's neighbourhood holds
  the known pixels around a hole position and blanks where the hole is, so only its known part takes part
  in the match, as in exemplar-based inpainting; keys whose neighbourhood touches the hole are not used.
  Values are a 1x1 conv of x, and an output 1x1 conv follows; both start as the identity, so the untrained
  module copies the features of the positions it matches. Channels are split into ``heads`` heads of
  ``channels // heads`` dimensions (descriptors and values alike).
- Similarity. Queries and keys are L2-normalised per head, so logits are cosines in [-1, 1] divided by a
  temperature t: t means the same in every layer and width. DeepFill's softmax scale 10 is t = 0.1.
- Temperature modes. ``constant``: t = ``temperature_init``. ``learned_scalar``: one t per head.
  ``learned_map``: a small network (3x3 conv over [features, feature-scale hole], GELU, 1x1 conv to
  ``heads``) predicts t per head and query position. Learned values are parameterised in log space,
  ``log t = log t_min + (log t_max - log t_min) * sigmoid(raw)``, with ``raw`` initialised to the inverse
  of ``temperature_init`` (the map network's last layer: bias = that inverse, weights ~N(0, 0.01), so it
  starts near ``temperature_init`` everywhere but passes gradients to every layer). Why this trains
  stably: t can never leave the range (no clamping cliff, no zero gradient except in saturation); a unit
  step of ``raw`` changes t by at most a factor (t_max/t_min)**(1/4), i.e. updates are multiplicative, equally
  meaningful at t = 0.01 and t = 1; the bound is evaluated in float32 (no autocast list lowers
  sigmoid/exp), so bf16 training cannot round t to 0 or overflow 1/t. A final clamp only removes float rounding of exp(log t).
- Masking (any-hole rule). The mask is resized to the feature size with adaptive max pooling, so a
  feature position whose footprint touches a hole pixel is a hole (this also upsamples smaller masks).
  With ``patch_size`` k > 1 the key hole is dilated by k (a key whose kxk neighbourhood touches the hole is
  not used, as in DeepFill). Keys at hole positions get exactly zero weight; every position is a query.
- No context. A sample whose key mask covers everything has nothing to borrow from: its attention is
  run over all positions only to keep the kernels finite, and the module returns x unchanged for it.
- Merge. ``replace_hole`` (default): y = x outside the feature-scale hole, out_proj(attention) inside,
  so known features pass through untouched, like the image composite. ``gated_residual``:
  y = x + sigmoid(conv1x1([x, a])) * a with a = out_proj(attention), applied at every position.
- Paths. ``fused=True`` calls ``scaled_dot_product_attention`` with the temperature folded into the
  queries (q / t, scale=1.0); the (HW)x(HW) matrix is never built. Usable keys are gathered first
  (padded to the batch's largest count, padding masked by a boolean (B,1,1,M) mask), so the cost scales
  with the known area, at the price of one host sync for M. q, k, v are made contiguous in
  (B, heads, HW, d) layout, which keeps CPU SDPA on its flash kernel (a non-contiguous last dimension
  falls back to the math kernel; a boolean mask does not). The reference path (explicit matmul +
  softmax) is used when ``fused=False`` or ``return_attention=True``. The measurements behind these
  choices are in experiments/attention_results.md ("Findings"). Setting ``gather_keys = False``
  masks the unusable keys inside the kernel instead of gathering them: fixed shapes, no host sync, the
  same result (ONNX export uses it; the cost then scales with all positions), with the queries in
  ``QUERY_CHUNKS`` pieces so that a graph without a fused kernel holds one piece's scores at a time.

**ContextualAttention** is DeepFill v1's layer with exact masking; **IdentityAttention** is the ``none``
option.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from mtmsa.models.outputs import AttentionOutput
from mtmsa.utils.filters import window_max

TEMPERATURE_MODES = ("constant", "learned_scalar", "learned_map")
MERGES = ("replace_hole", "gated_residual")
MATCHINGS = ("footprint", "projections")


def _check_option(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"attention option {name}={value!r} is not supported; use one of {list(allowed)}")


def feature_hole(mask: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Mask (B,1,H',W') of any size -> boolean hole (B,1,H,W): a position touching any hole pixel is hole."""
    return F.adaptive_max_pool2d(mask.float(), size) > 0.5


def dilate(hole: torch.Tensor, size: int) -> torch.Tensor:
    """Boolean (B,1,H,W) hole grown by a size x size neighbourhood (odd size)."""
    return hole if size == 1 else window_max(hole.float(), size // 2) > 0.5


def usable_keys(key_hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean key hole (B,1,H,W) -> (usable keys (B,HW), has_context (B,1,1,1)).

    Samples without any known key use all keys (finite kernels); callers return x for them.
    """
    has_context = ~key_hole.flatten(1).all(dim=1).view(-1, 1, 1, 1)
    return (~key_hole | ~has_context).flatten(1), has_context


class Temperature(nn.Module):
    """Softmax temperatures (B, heads, H, W) in one of ``TEMPERATURE_MODES``, inside ``temperature_range``."""

    def __init__(
        self, mode: str, heads: int, channels: int, temperature_range: tuple[float, float], init: float
    ) -> None:
        super().__init__()
        _check_option("temperature", mode, TEMPERATURE_MODES)
        t_min, t_max = (float(t) for t in temperature_range)
        if not 0.0 < t_min < t_max:
            raise ValueError(f"temperature_range={temperature_range!r} must satisfy 0 < t_min < t_max")
        if not t_min < init < t_max:
            raise ValueError(
                f"temperature_init={init!r} must lie strictly inside temperature_range={temperature_range!r}"
            )
        self.mode, self.heads, self.init = mode, heads, float(init)
        self.t_min, self.t_max = t_min, t_max
        self.log_min, self.log_span = math.log(t_min), math.log(t_max) - math.log(t_min)
        fraction = (math.log(init) - self.log_min) / self.log_span
        raw_init = math.log(fraction / (1.0 - fraction))
        if mode == "learned_scalar":
            self.raw = nn.Parameter(torch.full((heads,), raw_init))
        elif mode == "learned_map":
            hidden = max(16, channels // 4)
            self.network = nn.Sequential(
                nn.Conv2d(channels + 1, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, heads, 1)
            )
            nn.init.normal_(self.network[-1].weight, std=0.01)
            nn.init.constant_(self.network[-1].bias, raw_init)

    def bound(self, raw: torch.Tensor) -> torch.Tensor:
        """Unbounded raw values -> temperatures in [t_min, t_max], float32."""
        t = torch.exp(self.log_min + self.log_span * torch.sigmoid(raw.float()))
        return t.clamp(self.t_min, self.t_max)

    def forward(self, x: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """x (B,C,H,W), boolean hole (B,1,H,W) -> temperatures (B,heads,H,W), float32."""
        b, _, h, w = x.shape
        if self.mode == "constant":
            return torch.full((1, 1, 1, 1), self.init, device=x.device).expand(b, self.heads, h, w)
        if self.mode == "learned_scalar":
            return self.bound(self.raw).view(1, -1, 1, 1).expand(b, -1, h, w)
        return self.bound(self.network(torch.cat([x, hole.to(x.dtype)], dim=1)))


def usable_keys_first(
    usable: torch.Tensor, keys: torch.Tensor, values: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Drop unusable keys before fused attention, so its cost scales with the known area.

    usable (B,N) bool, keys/values (B,heads,N,d) -> keys/values (B,heads,M,d) holding each sample's usable
    keys first (M = largest usable count in the batch) and the key mask (B,1,1,M) of the real slots.
    """
    counts = usable.sum(dim=1)
    slots = int(counts.max())
    order = usable.to(torch.uint8).argsort(dim=1, descending=True, stable=True)[:, :slots]
    index = order[:, None, :, None].expand(-1, keys.shape[1], -1, keys.shape[-1])
    key_mask = torch.arange(slots, device=usable.device) < counts[:, None]
    return keys.gather(2, index), values.gather(2, index), key_mask.view(-1, 1, 1, slots)


QUERY_CHUNKS = 16
"""Query chunks of the fixed-shape path: a graph without the fused kernel (ONNX) holds the scores of one chunk
at a time, (B, heads, HW / 16, HW), not all of them (4 heads at 128x128 positions: 256 MiB instead of 4 GiB)."""


def _masked_attention_in_chunks(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """Fused attention over every key, unusable ones masked by ``key_mask`` (B,1,1,N), queries (B,heads,N,d) in
    :data:`QUERY_CHUNKS` pieces (fewer positions than chunks give empty ones); the same result as one call.
    Piece i is queries [i * N // chunks, (i + 1) * N // chunks): one formula for every N, which an exported
    graph keeps (``tensor_split`` decides the piece sizes by N's remainder, which export fixes at its example)."""
    n = q.shape[2]
    bounds = [i * n // QUERY_CHUNKS for i in range(QUERY_CHUNKS + 1)]
    return torch.cat(
        [
            F.scaled_dot_product_attention(q[:, :, start:end], k, v, attn_mask=key_mask, scale=1.0)
            for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        ],
        dim=2,
    )


def _heads_last(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, C, H, W) -> contiguous (B, heads, H*W, C // heads)."""
    b, c, h, w = x.shape
    return x.reshape(b, heads, c // heads, h * w).transpose(2, 3).contiguous()


class TemperatureMaskedAttention(nn.Module):
    """Multi-head temperature masked self-attention; see the module docstring for every choice.

    Args:
        channels: feature channels C, divisible by ``heads``.
        heads: number of attention heads.
        temperature: one of ``TEMPERATURE_MODES``.
        temperature_range: (t_min, t_max) bounds of learned temperatures.
        temperature_init: the constant temperature, or the initial learned one.
        patch_size: odd k; the footprint of the match: queries and keys describe kxk neighbourhoods, and
            a key whose neighbourhood touches the hole is not used.
        merge: one of ``MERGES``.
        fused: use ``scaled_dot_product_attention`` (True) or the explicit reference (False).
        guide_channels: channels of the ``guide`` that ``forward`` matches on (None: C, matching on x).
        descriptor_size: dimensions of each head's match descriptor (None: C // heads, like its values);
            a random projection keeps a neighbourhood's similarities the better the more dimensions it has,
            so many heads of few channels match poorly at the start without it.
        matching: ``footprint`` (a shared kxk descriptor of the guide for queries and keys, see the module
            docstring) or ``projections`` (mtmsa 0.1's design, kept for its checkpoints and as an ablation:
            a 1x1 query projection and a kxk key-and-value projection of x, PyTorch's default init; the
            guide is not used).
    """

    gather_keys = True
    """Fused path: gather the usable keys first (cost scales with the known area; the key count depends on
    the mask). False keeps every key and masks the unusable ones inside the kernel: the same result from
    shapes that depend on the input size only, what an exported graph needs."""

    def __init__(
        self,
        channels: int,
        heads: int = 4,
        temperature: str = "learned_map",
        temperature_range: tuple[float, float] = (0.01, 1.0),
        temperature_init: float = 0.1,
        patch_size: int = 1,
        merge: str = "replace_hole",
        fused: bool = True,
        guide_channels: int | None = None,
        matching: str = "footprint",
        descriptor_size: int | None = None,
    ) -> None:
        super().__init__()
        _check_option("merge", merge, MERGES)
        _check_option("matching", matching, MATCHINGS)
        if heads < 1 or channels % heads:
            raise ValueError(f"attention heads={heads} must be >= 1 and divide channels={channels}")
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f"attention patch_size={patch_size} must be an odd number >= 1")
        self.heads, self.patch_size, self.merge, self.fused = heads, patch_size, merge, fused
        self.temperature = Temperature(temperature, heads, channels, temperature_range, temperature_init)
        self.matching = matching
        padding = patch_size // 2
        if descriptor_size is not None and descriptor_size < 1:
            raise ValueError(f"attention descriptor_size={descriptor_size} must be >= 1 (or null)")
        self.descriptor_size = descriptor_size or channels // heads
        if matching == "footprint":
            descriptors = heads * self.descriptor_size
            self.match = nn.Conv2d(guide_channels or channels, descriptors, patch_size, padding=padding)
            self.value = nn.Conv2d(channels, channels, 1)
        else:
            self.query = nn.Conv2d(channels, channels, 1)
            self.key_value = nn.Conv2d(channels, 2 * channels, patch_size, padding=padding)
        self.out_proj = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Conv2d(2 * channels, channels, 1) if merge == "gated_residual" else None
        if matching == "footprint":
            with torch.no_grad():
                for conv in (self.value, self.out_proj):
                    conv.weight.copy_(torch.eye(channels).view_as(conv.weight))
                    conv.bias.zero_()

    def _queries_keys_values(
        self, x: torch.Tensor, guide: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L2-normalised queries and keys and the values, each (B, heads, HW, C // heads)."""
        if self.matching == "footprint":
            descriptors = F.normalize(
                _heads_last(self.match(x if guide is None else guide), self.heads), dim=-1
            )
            return descriptors, descriptors, _heads_last(self.value(x), self.heads)
        keys, values = (_heads_last(t, self.heads) for t in self.key_value(x).chunk(2, dim=1))
        return F.normalize(_heads_last(self.query(x), self.heads), dim=-1), F.normalize(keys, dim=-1), values

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        return_attention: bool = False,
        guide: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, AttentionOutput]:
        """x (B,C,H,W), mask (B,1,H',W'), guide (B,G,H,W) or None (match on x) -> y (B,C,H,W), aux with
        ``temperature`` (B,heads,H,W), ``hole`` (B,1,H,W) key mask, and ``attention`` (B,heads,HW,HW) if
        ``return_attention``."""
        b, c, h, w = x.shape
        hole = feature_hole(mask, (h, w))
        key_hole = dilate(hole, self.patch_size)
        usable, has_context = usable_keys(key_hole)
        temperature = self.temperature(x, hole)

        q, k, v = self._queries_keys_values(x, guide)
        q = q / temperature.reshape(b, self.heads, h * w, 1).to(q.dtype)
        # One size for queries, keys and values keeps the fused kernels (zeros change no dot product).
        size = max(q.shape[-1], v.shape[-1])
        q, k, v = (F.pad(t, (0, size - t.shape[-1])) if t.shape[-1] < size else t for t in (q, k, v))
        probabilities = None
        if self.fused and not return_attention:
            if self.gather_keys:
                k, v, key_mask = usable_keys_first(usable, k, v)
                out = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, scale=1.0)
            else:
                out = _masked_attention_in_chunks(q, k, v, usable.view(b, 1, 1, h * w))
        else:
            logits = (q @ k.transpose(2, 3)).masked_fill(~usable.view(b, 1, 1, h * w), float("-inf"))
            probabilities = logits.softmax(dim=-1)
            out = probabilities @ v
        attended = self.out_proj(out[..., : c // self.heads].transpose(2, 3).reshape(b, c, h, w))
        if self.gate is None:
            merged = torch.where(hole, attended, x)
        else:
            merged = x + torch.sigmoid(self.gate(torch.cat([x, attended], dim=1))) * attended
        aux = AttentionOutput(
            temperature=temperature,
            hole=key_hole.to(x.dtype),
            attention=probabilities if return_attention else None,
            temperature_range=(self.temperature.t_min, self.temperature.t_max),
        )
        return torch.where(has_context, merged, x), aux


def build_mtmsa(
    channels: int,
    heads: int,
    temperature: Mapping,
    patch_size: int,
    merge: str,
    fused: bool = True,
    guide_channels: int | None = None,
    matching: str = "footprint",
    descriptor_size: int | None = None,
) -> TemperatureMaskedAttention:
    """Hydra factory: ``temperature`` is a mapping with keys ``mode``, ``range`` (2-list) and ``init``."""
    missing = {"mode", "range", "init"} - set(temperature)
    if missing:
        raise ValueError(f"model.attention.temperature is missing {sorted(missing)}; give mode, range, init")
    return TemperatureMaskedAttention(
        channels,
        heads=heads,
        temperature=temperature["mode"],
        temperature_range=tuple(temperature["range"]),
        temperature_init=temperature["init"],
        patch_size=patch_size,
        merge=merge,
        fused=fused,
        guide_channels=guide_channels,
        matching=matching,
        descriptor_size=descriptor_size,
    )


def _swap_axes(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, N, N) scores over row-major positions of an (h, w) grid -> the same over column-major."""
    b, h, w = scores.shape[0], *size
    return scores.view(b, h, w, h, w).permute(0, 2, 1, 4, 3).reshape(b, 1, h * w, h * w)


class ContextualAttention(nn.Module):
    """DeepFill v1 contextual attention, with hole patches given exactly zero weight.

    Background patches (``patch_size`` x ``patch_size`` at 1/``rate`` resolution, L2-normalised) are the
    filters matched against every position; scores are fused along diagonals with a ``fuse_size`` identity
    kernel (horizontally, then vertically) to favour coherent copies; softmax at ``softmax_scale``; the
    result pastes 2*rate x 2*rate full-resolution patches with stride ``rate`` (fold = transposed
    convolution; overlaps averaged by their true count, where DeepFill divides by 4 also at the border). Output: x outside the feature-scale hole, the paste inside; a
    sample without usable background patches returns x. ``return_attention`` is accepted and ignored
    (the record is empty). ``channels``, ``guide_channels`` and ``guide`` are accepted for the shared
    signature: like DeepFill, it matches the features themselves.
    """

    def __init__(
        self,
        channels: int,
        patch_size: int = 3,
        rate: int = 2,
        fuse_size: int = 3,
        softmax_scale: float = 10.0,
        guide_channels: int | None = None,
    ) -> None:
        super().__init__()
        if rate < 2 or rate % 2:
            raise ValueError(f"contextual attention rate={rate} must be an even number >= 2")
        if patch_size % 2 == 0 or fuse_size % 2 == 0:
            raise ValueError(
                f"contextual attention patch_size={patch_size}, fuse_size={fuse_size} must be odd"
            )
        self.channels, self.patch_size, self.rate, self.softmax_scale = (
            channels,
            patch_size,
            rate,
            softmax_scale,
        )
        self.register_buffer(
            "fuse_kernel", torch.eye(fuse_size).view(1, 1, fuse_size, fuse_size), persistent=False
        )

    def _fuse(self, scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Scores (B, 1, N, N): add diagonal neighbours horizontally then vertically."""
        padding = self.fuse_kernel.shape[-1] // 2
        scores = F.conv2d(scores, self.fuse_kernel.to(scores.dtype), padding=padding)
        scores = F.conv2d(_swap_axes(scores, size), self.fuse_kernel.to(scores.dtype), padding=padding)
        return _swap_axes(scores, size[::-1])

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        return_attention: bool = False,
        guide: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, AttentionOutput]:
        """x (B,C,H,W) with H, W divisible by ``rate``, mask (B,1,H',W') -> y (B,C,H,W), an empty record."""
        b, c, h, w = x.shape
        r = self.rate
        if h % r or w % r:
            raise ValueError(f"contextual attention needs feature sizes divisible by rate={r}, got {h}x{w}")
        small = (h // r, w // r)
        hole = feature_hole(mask, (h, w))
        usable, has_context = usable_keys(dilate(feature_hole(mask, small), self.patch_size))

        patches = F.unfold(x[:, :, ::r, ::r], self.patch_size, padding=self.patch_size // 2)  # (B, C*k*k, N)
        filters = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-4)
        scores = self._fuse((filters.transpose(1, 2) @ patches).unsqueeze(1), small).squeeze(1)  # (B, L, N)
        scores = scores.masked_fill(~usable.unsqueeze(2), float("-inf"))
        attention = (self.softmax_scale * scores).softmax(dim=1)
        raw = F.unfold(x, 2 * r, padding=r // 2, stride=r)  # (B, C*2r*2r, L)
        paste = dict(output_size=(h, w), kernel_size=2 * r, padding=r // 2, stride=r)
        coverage = F.fold(x.new_ones(1, (2 * r) ** 2, raw.shape[-1]), **paste)
        pasted = F.fold(raw @ attention, **paste) / coverage
        return torch.where(has_context, torch.where(hole, pasted, x), x), AttentionOutput()


class IdentityAttention(nn.Module):
    """The ``none`` option: returns x unchanged and an empty record (``guide`` is ignored)."""

    def __init__(self, channels: int, guide_channels: int | None = None) -> None:
        super().__init__()
        self.channels = channels

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        return_attention: bool = False,
        guide: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, AttentionOutput]:
        return x, AttentionOutput()
