"""Procedural inpainting task solved by copying a period away: near-periodic textures with a box hole.

Every image is a texture of one of KINDS (bricks, tiles, a basket weave, a plaid, dots, diagonal stripes) in
two or three random colours, with a random phase and a random (vertical, horizontal) period of several
attention cells: between a fifth and a third of the side, at least 8 pixels, and at most
``CELL * (size // 12)`` so that a hole of one period fits with a period of margin on both sides (at size 32
the period is always 8). The texture is only near-periodic: a smooth random displacement field of at most
``distortion`` pixels (sinusoids of WAVELENGTH periods) bends it, every brick, tile, thread block or dot gets
a mild colour jitter, and every pixel Gaussian noise, so copies one period away are close but never exact.

The hole is a box on the attention's grid of CELL x CELL pixels, at least one period (rounded up to cells)
from every border, so known texture surrounds it. Along one random axis, the copy axis, its side is the most
whole cells that a shift of one period (rounded to pixels) clears, 0.7-1.0 periods; along the other it is
1.0-1.5 periods (at most a third of the side). A copy of the whole box thus lies in the known pixels one
period away along the copy axis, on both sides of the hole. (A hole of more than a period along both axes
would need a copy two periods away, which the margins leave no room for.) The oracle fills the hole with the
best single translation copy of known pixels, chosen by its error to the true hole pixels: an upper bound for
any copy-based fill.

All randomness comes from one ``torch.Generator``; the same seed gives the same batch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from mtmsa.utils.images import to_model_range

CELL = 4  # pixels per attention position
SIZES = range(32, 97, CELL)
KINDS = ("bricks", "tiles", "weave", "plaid", "dots", "stripes")
SUPERSAMPLING = 2
WAVES = 3  # sinusoids per displacement component
WAVELENGTH = (3.0, 6.0)  # of the displacement sinusoids, in mean periods
ELEMENT_JITTER = 0.03  # standard deviation of each brick's, tile's or block's colour offset, in [0, 1]
JITTER_TABLE = 16  # distinct jitters per axis; element indices wrap around (never within one image)


class TextureBatch(NamedTuple):
    """images (B,3,H,W) in [-1, 1], the complete image; masks (B,1,H,W), 1 = hole; oracle (B,3,H,W): the hole
    filled by the best translation copy of known pixels, known pixels = images; periods (B,2) float: the
    texture's (vertical, horizontal) period in pixels."""

    images: torch.Tensor
    masks: torch.Tensor
    oracle: torch.Tensor
    periods: torch.Tensor


def _uniform(low: float, high: float, size: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(size, generator=generator)


def period_range(size: int) -> tuple[float, float]:
    """The (low, high) period in pixels at image side ``size``, one of SIZES."""
    return max(size / 5, 8.0), min(size / 3, CELL * (size // (3 * CELL)))


def _displacements(
    periods: torch.Tensor, fine: int, distortion: float, generator: torch.Generator
) -> torch.Tensor:
    """(B,2,fine,fine) smooth (dy, dx) in pixels, |d| <= distortion: WAVES sinusoids of random direction,
    phase and wavelength (WAVELENGTH mean periods) per component, weights summing to 1."""
    batch = periods.shape[0]
    angle = _uniform(0.0, 2 * math.pi, (batch, 2, WAVES), generator)
    wavelength = _uniform(*WAVELENGTH, (batch, 2, WAVES), generator) * periods.mean(dim=1)[:, None, None]
    phase = _uniform(0.0, 2 * math.pi, (batch, 2, WAVES), generator)
    weights = torch.rand(batch, 2, WAVES, generator=generator)
    weights = weights / weights.sum(dim=2, keepdim=True)
    coords = (torch.arange(fine) + 0.5) / SUPERSAMPLING
    ys, xs = coords[:, None], coords[None, :]
    shift = torch.zeros(batch, 2, fine, fine)
    for k in range(WAVES):
        ky = (angle[..., k].cos() / wavelength[..., k])[..., None, None]
        kx = (angle[..., k].sin() / wavelength[..., k])[..., None, None]
        wave = torch.sin(2 * math.pi * (ky * ys + kx * xs) + phase[..., k, None, None])
        shift += weights[..., k, None, None] * wave
    return distortion * shift


def _frac(t: torch.Tensor) -> torch.Tensor:
    return t - t.floor()


def _one_hot(labels: torch.Tensor) -> torch.Tensor:
    """(n,fine,fine) colour indices -> (n,3,fine,fine) weights over the palette."""
    return F.one_hot(labels, 3).permute(0, 3, 1, 2).float()


def _render_kind(
    kind: str,
    a: torch.Tensor,
    b: torch.Tensor,
    lines: torch.Tensor,
    periods: torch.Tensor,
    shape: torch.Tensor,
    three: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Palette weights (n,3,fine,fine) and element (row, column) indices of one kind.

    a, b (n,fine,fine): coordinates in periods (vertical, horizontal), so the kind is periodic in both with
    period 1; lines (n,2,1,1): line (mortar, grout, gap) width per axis in periods; periods (n,2,1,1) in
    pixels; shape (n,1,1) uniform in [0, 1): band width, duty or dot size; three (n,1,1) bool: use colour 2.
    Colour 0 is the mortar, grout, gaps or ground.
    """
    line_y, line_x = lines[:, 0], lines[:, 1]
    if kind == "bricks":  # two rows a period, every other row offset by half a brick; colour 2: odd rows
        row = (2 * a).floor()
        along = b + 0.5 * (row % 2)
        mortar = (_frac(2 * a) < 2 * line_y) | (_frac(along) < line_x)
        labels = torch.where(mortar, 0, 1 + (three & (row % 2 == 1)).long())
        return _one_hot(labels), row, along.floor()
    if kind == "tiles":  # one tile a period, or with colour 2 a checkerboard of two tiles a period
        per = 1 + three.long()
        row, column = (per * a).floor(), (per * b).floor()
        grout = (_frac(per * a) < per * line_y) | (_frac(per * b) < per * line_x)
        labels = torch.where(grout, 0, 1 + ((row + column) % 2).long() * three)
        return _one_hot(labels), row, column
    if kind == "weave":  # blocks of half a period, two threads each, alternately along x and along y
        row, column = (2 * a).floor(), (2 * b).floor()
        across_rows = (row + column) % 2 == 0  # threads along x, stacked down the block
        threads = torch.where(across_rows, _frac(4 * a), _frac(4 * b))
        gap = threads < 4 * torch.where(across_rows, line_y, line_x)
        labels = torch.where(gap, 0, torch.where(across_rows, 1, 2))
        return _one_hot(labels), row, column
    if kind == "plaid":  # bands of colour 1 along x and of colour 2 along y, mixed where they cross
        width = 0.25 + 0.25 * shape
        along_x, along_y = (_frac(a) < width).float(), (_frac(b) < width).float()
        first, second = along_x * (1 - 0.5 * along_y), along_y * (1 - 0.5 * along_x)
        return torch.stack([1 - first - second, first, second], dim=1), a.floor(), b.floor()
    if kind == "dots":  # a round dot a period; colour 2: its centre
        offset_y, offset_x = (_frac(a) - 0.5) * periods[:, 0], (_frac(b) - 0.5) * periods[:, 1]
        radius = (0.2 + 0.15 * shape) * periods.amin(dim=1)
        distance = (offset_y**2 + offset_x**2).sqrt()
        labels = (distance < radius).long() + (three & (distance < radius / 2)).long()
        return _one_hot(labels), a.floor(), b.floor()
    # diagonal stripes, one a period along each axis; colour 2: a third band
    t = a + torch.where(shape < 0.5, 1.0, -1.0) * b
    duty = 0.3 + 0.3 * _frac(2 * shape)
    phase = _frac(t)
    labels = (phase < duty).long() + 2 * (three & (phase >= duty) & (phase < (1 + duty) / 2)).long()
    return _one_hot(labels), t.floor(), torch.zeros_like(t)


def _palettes(batch: int, generator: torch.Generator) -> torch.Tensor:
    """(B,3,3) colour index -> RGB in [0, 1]: random hues, colour 0 dark and 1 light or the reverse, 2 between."""
    hues = torch.rand(batch, 3, 3, generator=generator)
    hues = hues / hues.amax(dim=2, keepdim=True)
    values = torch.stack(
        [_uniform(0.1, 0.35, (batch,), generator), _uniform(0.65, 0.95, (batch,), generator)], dim=1
    )
    values = torch.where(torch.rand(batch, 1, generator=generator) < 0.5, values, values.flip(1))
    values = torch.cat([values, _uniform(0.35, 0.65, (batch, 1), generator)], dim=1)
    return hues * values[:, :, None]


def render_textures(
    periods: torch.Tensor, size: int, distortion: float, generator: torch.Generator
) -> torch.Tensor:
    """Near-periodic textures (B,3,size,size) in [0, 1] with the given (B,2) periods, without pixel noise."""
    batch = periods.shape[0]
    fine = size * SUPERSAMPLING
    kinds = torch.randint(len(KINDS), (batch,), generator=generator)
    phases = torch.rand(batch, 2, generator=generator) * periods
    lines = _uniform(0.06, 0.12, (batch, 1), generator) * periods.mean(dim=1, keepdim=True)
    lines = lines.clamp_min(1.0) / periods  # at least a pixel wide, in periods per axis
    shape = torch.rand(batch, generator=generator)
    three = torch.rand(batch, generator=generator) < 0.5
    palettes = _palettes(batch, generator)
    jitter = ELEMENT_JITTER * torch.randn(batch, 3, JITTER_TABLE**2, generator=generator)
    coords = (torch.arange(fine) + 0.5) / SUPERSAMPLING
    points = torch.stack(torch.meshgrid(coords, coords, indexing="ij"))  # (2,fine,fine) pixel (y, x)
    displaced = points + _displacements(periods, fine, distortion, generator) + phases[:, :, None, None]
    scaled = displaced / periods[:, :, None, None]
    weights = torch.zeros(batch, 3, fine, fine)
    elements = torch.zeros(batch, fine * fine, dtype=torch.long)
    for k, kind in enumerate(KINDS):
        index = (kinds == k).nonzero().flatten()
        part, row, column = _render_kind(
            kind,
            scaled[index, 0],
            scaled[index, 1],
            lines[index, :, None, None],
            periods[index, :, None, None],
            shape[index, None, None],
            three[index, None, None],
        )
        weights[index] = part
        elements[index] = ((row % JITTER_TABLE) * JITTER_TABLE + column % JITTER_TABLE).long().flatten(1)
    colour = torch.einsum("bkhw,bkc->bchw", weights, palettes)
    jitter = torch.gather(jitter, 2, elements[:, None].expand(-1, 3, -1)).view_as(colour)
    colour = colour + (1 - weights[:, :1]) * jitter  # mortar, grout, gaps and ground stay plain
    return F.avg_pool2d(colour, SUPERSAMPLING).clamp(0, 1)


def _hole_masks(periods: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B,1,H,W) boxes on the CELL grid, at least a period (rounded up to cells) from every border. Along one
    random axis, the copy axis, the side is the most cells a shift of one period (in whole pixels) clears, 0.7-1.0
    periods; along the other it is 1.0-1.5 periods, at most size/3."""
    batch = periods.shape[0]
    cells = size // CELL
    margin = (periods / CELL).ceil().long()
    clear = (periods.round() / CELL).floor().long()
    longest = (1.5 * periods / CELL).floor().long().clamp_max(cells // 3)
    copy_axis = F.one_hot(torch.randint(2, (batch,), generator=generator), 2).bool()
    low, high = torch.where(copy_axis, clear, margin), torch.where(copy_axis, clear, longest)
    sides = low + (torch.rand(batch, 2, generator=generator) * (high - low + 1)).floor().long()
    room = cells - 2 * margin - sides + 1
    starts = margin + (torch.rand(batch, 2, generator=generator) * room).floor().long()
    index = torch.arange(size) // CELL
    inside = (index >= starts[:, :, None]) & (index < (starts + sides)[:, :, None])  # (B,2,size)
    return (inside[:, 0, :, None] & inside[:, 1, None, :]).float()[:, None]


def best_copy_fill(images: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill each box hole with the translation copy of known pixels closest to its true content.

    images (B,C,H,W), the complete images; masks (B,1,H,W), one box per image, 1 = hole. Among the integer
    shifts (dy, dx) with |dy| < H/2, |dx| < W/2 that move the box inside the image and off the hole, takes
    the one whose pixels have the least squared error to the hole's (cross-correlations by FFT). Returns
    the filled images and the (B,2) shifts (dy, dx): hole pixel (y, x) is copied from (y + dy, x + dx).
    Raises ValueError if some image has no such shift.
    """
    batch, _, height, width = images.shape
    x, m = images.double(), masks[:, 0].double()
    spectrum = torch.fft.rfft2(x)
    cross = torch.fft.irfft2((spectrum * torch.fft.rfft2(x * m[:, None]).conj()).sum(1), s=(height, width))
    energy = torch.fft.irfft2(
        torch.fft.rfft2((x**2).sum(1)) * torch.fft.rfft2(m).conj(), s=(height, width)
    )  # [dy, dx] (mod H, W): sum over the hole of the shifted pixels' squares
    errors = energy - 2 * cross + (x**2 * m[:, None]).sum(dim=(1, 2, 3))[:, None, None]
    rows, columns = m.amax(dim=2), m.amax(dim=1)  # (B,H), (B,W)
    top, box_height = rows.argmax(dim=1)[:, None], rows.sum(dim=1)[:, None]
    left, box_width = columns.argmax(dim=1)[:, None], columns.sum(dim=1)[:, None]
    dy = torch.arange(height)
    dy = torch.where(dy < (height + 1) // 2, dy, dy - height)[None]  # index -> shift, |dy| < H/2 kept
    dx = torch.arange(width)
    dx = torch.where(dx < (width + 1) // 2, dx, dx - width)[None]
    fits_y = (top + dy >= 0) & (top + box_height + dy <= height) & (2 * dy.abs() < height)
    fits_x = (left + dx >= 0) & (left + box_width + dx <= width) & (2 * dx.abs() < width)
    off_y, off_x = dy.abs() >= box_height, dx.abs() >= box_width
    valid = fits_y[:, :, None] & fits_x[:, None, :] & (off_y[:, :, None] | off_x[:, None, :])
    if not valid.flatten(1).any(dim=1).all():
        raise ValueError("best_copy_fill: some hole has no copy of its box that fits the image off the hole")
    best = errors.masked_fill(~valid, math.inf).flatten(1).argmin(dim=1)
    shifts = torch.stack([dy[0, best // width], dx[0, best % width]], dim=1)
    source_y = (torch.arange(height)[None] + shifts[:, :1]) % height  # (B,H)
    source_x = (torch.arange(width)[None] + shifts[:, 1:]) % width  # (B,W)
    flat = (source_y[:, :, None] * width + source_x[:, None, :]).flatten(1)
    copied = torch.gather(images.flatten(2), 2, flat[:, None].expand(-1, images.shape[1], -1))
    return torch.where(masks.bool(), copied.view_as(images), images), shifts


def texture_batch(
    batch: int, size: int, generator: torch.Generator, noise: float = 0.03, distortion: float = 1.0
) -> TextureBatch:
    """``batch`` near-periodic textures of ``size`` pixels (a multiple of CELL in 32-96) with a box hole each.

    noise: standard deviation of the Gaussian noise on every pixel, in [-1, 1] units; distortion: the most
    pixels the smooth displacement field moves the texture.
    """
    if size not in SIZES:
        raise ValueError(
            f"texture_batch needs a size that is a multiple of {CELL} from 32 to 96, got size={size}"
        )
    low, high = period_range(size)
    periods = _uniform(low, high, (batch, 2), generator)
    textures = to_model_range(render_textures(periods, size, distortion, generator))
    images = (textures + noise * torch.randn(textures.shape, generator=generator)).clamp(-1, 1)
    masks = _hole_masks(periods, size, generator)
    oracle, _ = best_copy_fill(images, masks)
    return TextureBatch(images, masks, oracle, periods)
