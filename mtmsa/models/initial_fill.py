"""The generator's starting point: a smooth fill of the hole from its border, computed on the device.

:class:`~mtmsa.models.generator.InpaintGenerator` predicts a residual over this fill
(``initial_fill="harmonic"`` or ``"pull_push"``); ``python -m mtmsa.evaluate baseline=harmonic`` scores it
alone. The harmonic fill takes the sketch too: its lines are barriers the interpolation does not cross.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from mtmsa.utils.filters import window_max


def pull_push_fill(
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    smoothing_steps: int = 0,
    barriers: torch.Tensor | None = None,
) -> torch.Tensor:
    """Smooth interpolation of the holes from their surroundings (pull-push, Gortler et al. 1996), batched.

    Pull: a pyramid of 2x2 sums of the known pixels and of their count, down to one pixel. Push: from the
    coarsest level up, each pixel keeps its own known average where it had known pixels (weighted by how
    many, up to 1) and takes the bilinearly enlarged coarser fill elsewhere. As good as OpenCV's Telea on
    the sample photos, on the model's device, in O(HW). images (B,C,H,W); masks (B,1,H,W), 1 = hole; a
    sample with no known pixel is filled with 0.

    ``smoothing_steps``: sweeps of successive over-relaxation on Laplace's equation run at each level after
    the push, the known pixels held (partly known ones in proportion): coarse to fine, a cascadic multigrid
    that turns the fill into the harmonic interpolation of the border (see :func:`harmonic_fill`); 0 is
    plain pull-push.
    ``barriers`` (B,1,H,W) in [0, 1], e.g. a sketch: in those steps a pixel takes nothing from a neighbour
    on a line (weighted by 1 - barrier), so the values on either side of a drawn line stay apart; the
    pyramid carries the lines down by 2x2 maxima. An (8-connected) line of pixels blocks every path
    between its sides.

    ``levels``: how many pyramid levels to build; None builds as many as the size needs (halving until a
    side is 1 pixel). A fixed number, at least that many, gives the same fill from a graph whose operations
    do not depend on the size (what ONNX export needs): levels past the top are recognised by a computed
    flag, not by a Python loop over the size, and pass the coarser fill through unchanged.
    """
    pyramid, top = _pull(images, masks, levels, barriers)
    fill = _push(pyramid, top, smoothing_steps, 0, as_graph=levels is not None)
    return torch.where(masks.bool(), fill, images)


Pyramid = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]
"""Per level, finest first: sums of the known pixels (B,C,h,w), their count (B,1,h,w) and the conductance
(1 - the 2x2 maxima of the barriers, or None)."""


def _pull(
    images: torch.Tensor, masks: torch.Tensor, levels: int | None, barriers: torch.Tensor | None
) -> tuple[Pyramid, torch.Tensor]:
    """The pull half of :func:`pull_push_fill`: its pyramid and the average of the known pixels (B,C,1,1)."""
    known = 1.0 - masks
    needed = (min(images.shape[-2:]) - 1).bit_length() if levels is None else levels
    pyramid: Pyramid = []
    sums, counts, lines = images * known, known, barriers
    for _ in range(needed):
        pyramid.append((sums, counts, None if lines is None else 1.0 - lines))
        sums, counts = _sum_2x2(sums), _sum_2x2(counts)
        lines = None if lines is None else _max_2x2(lines)
    top = sums.sum(dim=(2, 3), keepdim=True) / counts.sum(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return pyramid, top


def _push(
    pyramid: Pyramid,
    fill: torch.Tensor,
    smoothing_steps: int,
    biharmonic_steps: int,
    as_graph: bool,
    tension: float = 0.0,
) -> torch.Tensor:
    """The push half of :func:`pull_push_fill`, from the coarsest fill ``fill`` up (B,C,H,W; known pixels too);
    ``tension`` as in :func:`biharmonic_fill`."""
    for sums, counts, conductance in reversed(pyramid):
        coarser = F.interpolate(fill, size=sums.shape[-2:], mode="bilinear", align_corners=False)
        weight = counts.clamp(max=1.0)
        average = sums / counts.clamp_min(1e-6)
        fill = weight * average + (1.0 - weight) * coarser
        fill = _relaxation_steps(fill, weight * average, 1.0 - weight, conductance, smoothing_steps, as_graph)
        fill = _biharmonic_steps(fill, weight, conductance, biharmonic_steps, as_graph, tension)
        if as_graph:
            fill = torch.where(_below_top(counts), fill, coarser)
    return fill


HARMONIC_SMOOTHING_STEPS = 20
"""Over-relaxation sweeps per pyramid level of :func:`harmonic_fill` (each two half-sweeps)."""


def harmonic_fill(
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    sketches: torch.Tensor | None = None,
) -> torch.Tensor:
    """The hole filled with the harmonic interpolation of its border (Laplace's equation, the hole's values
    the average of their four neighbours), solved by pull-push with :data:`HARMONIC_SMOOTHING_STEPS`
    over-relaxation sweeps per level. Smoother across the hole than pull-push, whose blocky pyramid it starts from,
    and computed the same way on the device. With ``sketches`` (B,1,H,W) their lines are barriers
    (diffusion curves, Orzan et al. 2008): each side of a drawn line is filled from its own side of the
    border, and the fill has an edge along the line. Other arguments as :func:`pull_push_fill`.
    """
    return smooth_fills(images, masks, levels, sketches, biharmonic=False)[0]


BIHARMONIC_CG_STEPS = 150
"""Conjugate-gradient steps per pyramid level of :func:`biharmonic_fill` (at most one per pixel of the level:
in exact arithmetic conjugate gradients solve an n-unknown system in n steps)."""


def biharmonic_fill(
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    sketches: torch.Tensor | None = None,
    tension: float = 0.0,
) -> torch.Tensor:
    """The hole filled towards the biharmonic interpolation of its border: the fill whose discrete Laplacian
    has the least sum of squares, i.e. that solves the biharmonic equation in the hole (scikit-image's
    ``inpaint_biharmonic``). It continues the border's slopes as well as its values: smoother than
    :func:`harmonic_fill` inside the hole, and it overshoots where the border bends (never past [-1, 1], the
    images' range inside the model: the fill is clamped to it). Pull-push with :data:`BIHARMONIC_CG_STEPS`
    conjugate-gradient steps per pyramid level instead of relaxation sweeps (a cascade: each level starts
    from the enlarged coarser solution). The biharmonic equation converges far more slowly than Laplace's:
    these steps stop short of the exact solution on large holes (the distance is measured in
    ``experiments/README.md``, "Learning"). ``sketches``' lines are barriers here too: no Laplacian term
    couples two pixels across a drawn line.

    ``tension`` > 0 makes it a spline in tension (Smith and Wessel, 1990): the least ``sum(laplacian(fill) ** 2) +
    tension * sum(gradient(fill) ** 2)``, between the biharmonic fill (0) and the harmonic one (large), with
    less overshoot than the first. Other arguments as :func:`pull_push_fill`.
    """
    return smooth_fills(images, masks, levels, sketches, harmonic=False, tension=tension)[1]


BORDER_RADIUS = 4
"""Pixels around each known pixel whose least and greatest value :func:`border_bounds` carries into the hole."""


def border_bounds(
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    sketches: torch.Tensor | None = None,
    radius: int = BORDER_RADIUS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """How dark and how bright the hole's border is near each hole pixel, on its side of the sketch's lines:
    (low, high), each (B,C,H,W), the harmonic fills (lines as barriers) of the least and of the greatest known
    value within ``radius`` pixels of each known pixel, per channel. A harmonic fill never leaves the range of
    its border's values; the biharmonic one does, far where lines wall off a pocket that only a short piece of
    border reaches (it carries that piece's slope across the pocket), and these bounds catch it. Known pixels
    hold their neighbourhood's least and greatest known value. Other arguments as :func:`pull_push_fill`.
    """
    holes = masks.bool()
    high = window_max(images.masked_fill(holes, -2.0), radius)
    low = -window_max((-images).masked_fill(holes, -2.0), radius)
    low, high = harmonic_fill(torch.cat([low, high], dim=1), masks, levels, sketches).chunk(2, dim=1)
    return low, high


def smooth_fills(
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    sketches: torch.Tensor | None = None,
    harmonic: bool = True,
    biharmonic: bool = True,
    tension: float = 0.0,
    bounded: bool = False,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(:func:`harmonic_fill`, :func:`biharmonic_fill`) from one pull: the pyramid is built once. A fill that
    is not asked for is None; ``tension`` is the biharmonic fill's; ``bounded`` keeps the biharmonic fill
    within :func:`border_bounds` (no overshoot past the nearby border's range)."""
    pyramid, top = _pull(images, masks, levels, sketches)
    as_graph = levels is not None
    holes = masks.bool()

    def in_holes(fill: torch.Tensor) -> torch.Tensor:
        return torch.where(holes, fill if sketches is None else settle_lines(fill, sketches), images)

    first = second = None
    if harmonic:
        first = in_holes(_push(pyramid, top, HARMONIC_SMOOTHING_STEPS, 0, as_graph))
    if biharmonic:
        second = _push(pyramid, top, 0, BIHARMONIC_CG_STEPS, as_graph, tension).clamp(-1.0, 1.0)
        second = within_border_range(second, images, masks, levels, sketches) if bounded else in_holes(second)
    return first, second


def within_border_range(
    fill: torch.Tensor,
    images: torch.Tensor,
    masks: torch.Tensor,
    levels: int | None = None,
    sketches: torch.Tensor | None = None,
) -> torch.Tensor:
    """``fill``'s hole pixels kept within :func:`border_bounds` (the nearby border's range on their side of the
    sketch's lines), the known pixels those of ``images``, the pixels on the lines settled again
    (:func:`settle_lines`) from the kept values. fill, images (B,C,H,W); masks, sketches (B,1,H,W)."""
    low, high = border_bounds(images, masks, levels, sketches)
    kept = torch.where(masks.bool(), torch.minimum(torch.maximum(fill, low), high), images)
    return kept if sketches is None else settle_lines(kept, sketches)


SETTLE_PASSES = 2
"""Passes of :func:`settle_lines`: each reaches one pixel further into a line (sketched lines are 1-3 px wide)."""


def settle_lines(fill: torch.Tensor, sketches: torch.Tensor, passes: int = SETTLE_PASSES) -> torch.Tensor:
    """The pixels on a sketch's lines given the mean of their 3x3 neighbours off the lines, both sides of the
    edge the line draws: what a pixel on an edge is nearest to on average. The fills leave these pixels out of
    their equations (a line is a barrier: nothing flows into or out of it), so without this they keep whatever
    value the solver started them at (the biharmonic fill never updates them). A pixel is on a line where the
    sketch exceeds one half. Each pass is a Jacobi step: every line pixel next to an open or an already settled
    pixel takes the mean of those (itself included once settled), so a second pass reaches the middle of lines
    3 pixels wide and smooths the values along the line. fill (B,C,H,W); sketches (B,1,H,W) -> (B,C,H,W).
    """
    on = sketches > 0.5
    open_ = (~on).to(fill.dtype)
    ring = fill.new_ones(1, 1, 3, 3)
    channels = fill.shape[1]
    for _ in range(passes):
        count = F.conv2d(F.pad(open_, (1, 1, 1, 1)), ring)
        total = F.conv2d(F.pad(fill * open_, (1, 1, 1, 1)), ring.expand(channels, 1, 3, 3), groups=channels)
        reached = on & (count > 0.5)
        fill = torch.where(reached, total / count.clamp_min(1.0), fill)
        open_ = torch.maximum(open_, reached.to(fill.dtype))
    return fill


def _biharmonic_steps(
    fill: torch.Tensor,
    known: torch.Tensor,
    conductance: torch.Tensor | None,
    steps: int,
    as_graph: bool = False,
    tension: float = 0.0,
) -> torch.Tensor:
    """``steps`` conjugate-gradient steps on the pixels that are not wholly known (``known`` (B,1,h,w) < 1),
    the others held, towards the least ``sum(laplacian(fill) ** 2)``: the biharmonic equation in the hole
    (with ``tension``: plus ``tension`` times the sum of the squared differences between neighbours, the
    operator ``L(L(fill)) - tension * L(fill)``, as symmetric).

    fill (B,C,h,w); conductance (B,1,h,w) or None as in :func:`_relaxation_steps`. The Laplacian,
    ``c * (sum of the neighbours' c * fill - fill * sum of the neighbours' c)`` (the plain 4-neighbour one
    without barriers, edges replicated: no flow across the image's border), is symmetric, so the system
    ``free * L(L(free * update)) = -free * L(L(fill))`` is symmetric positive semi-definite, which conjugate
    gradients need. Each sample and channel is its own system. A system stops where its squared residual
    has fallen by :data:`CG_TOLERANCE` or after as many steps as the level has pixels: past that, rounding
    makes the steps grow without bound (a barrier-walled pocket once turned a fill into NaN); eager mode
    ends the loop once every system has stopped. ``as_graph``
    keeps the steps in one loop node (``torch.while_loop``: an exported graph would otherwise hold every
    step) and counts the pixels inside the graph, as :func:`_below_top` does.
    """
    if steps == 0:
        return fill
    free = (known < 1.0).to(fill.dtype)
    cross = _cross_kernel(fill) if as_graph else None
    if conductance is None:

        def laplacian(x: torch.Tensor) -> torch.Tensor:
            return _neighbour_sum(x, cross) - 4.0 * x

    else:
        reachable = _neighbour_sum(conductance, _cross_kernel(conductance) if as_graph else None)

        def laplacian(x: torch.Tensor) -> torch.Tensor:
            return conductance * (_neighbour_sum(conductance * x, cross) - reachable * x)

    def normal(x: torch.Tensor) -> torch.Tensor:
        flat = laplacian(x)
        return free * (laplacian(flat) - tension * flat if tension else laplacian(flat))

    def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * b).sum(dim=(2, 3), keepdim=True)

    residual = -normal(fill)
    squared = dot(residual, residual)
    tolerance = squared * CG_TOLERANCE

    def step(
        fill: torch.Tensor,
        residual: torch.Tensor,
        direction: torch.Tensor,
        squared: torch.Tensor,
        active: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        pushed = normal(direction)
        curvature = dot(direction, pushed)
        length = torch.where(active & (curvature > 0.0), squared / curvature, 0.0)
        residual = residual - length * pushed
        following = dot(residual, residual)
        turned = residual + torch.where(active, following / squared, 0.0) * direction
        return fill + length * direction, residual, turned, following

    state = (fill, residual, residual.clone(), squared)
    if as_graph:
        pixels = torch.ones_like(fill[0, 0]).sum()
        return _graph_loop(
            steps, lambda index, *state: step(*state, (state[3] > tolerance) & (index < pixels)), state
        )[0]
    for index in range(min(steps, fill.shape[-2] * fill.shape[-1])):
        active = state[3] > tolerance
        # Once no system is active the steps change nothing: stop (checked every few steps, as each check
        # waits for the device).
        if index % CG_CHECK_EVERY == 0 and not bool(active.any()):
            break
        state = step(*state, active)
    return state[0]


CG_CHECK_EVERY = 8
"""Steps of :func:`_biharmonic_steps` between its checks whether any system is still active (eager mode)."""

CG_TOLERANCE = 1e-12
"""Relative fall of the squared residual at which :func:`_biharmonic_steps` stops a system (a residual a
millionth of the first, about what single precision resolves)."""


SOR_RELAXATION = 1.85
"""Over-relaxation factor of the sweeps of :func:`_relaxation_steps`. Any value in (0, 2) converges (the
system, barriers and partly known pixels included, is a diagonally rescaled symmetric positive definite one);
near 2 / (1 + sin(pi / n)), the optimum for a hole n pixels across, it converges fastest on holes of a few
dozen pixels (``experiments/README.md``, "The harmonic fill's solver")."""


def _relaxation_steps(
    fill: torch.Tensor,
    held: torch.Tensor,
    free: torch.Tensor,
    conductance: torch.Tensor | None,
    steps: int,
    as_graph: bool = False,
) -> torch.Tensor:
    """``steps`` red-black sweeps of successive over-relaxation (SOR) towards
    ``fill = held + free * (mean of the four neighbours weighted by their conductance)``.

    fill, held (B,C,h,w): the current fill and what the known pixels hold (their weight times their value);
    free, conductance (B,1,h,w): how much of each pixel is free (1 - its known weight) and how much each
    passes on to its neighbours (1 - barrier; None: no barriers, the plain mean). Edges are replicated; a
    pixel whose four neighbours all have no conductance keeps its value. A sweep updates the pixels whose
    row + column is even, then the others from their new values, each moved :data:`SOR_RELAXATION` times
    its step: far fewer sweeps than Jacobi steps reach the solution. Everything but the neighbour sums is
    computed once. ``as_graph`` sums the neighbours with one convolution (fewer graph nodes than the slices
    that are faster in eager mode on the CPU) and keeps the sweeps in one loop node (``torch.while_loop``),
    except under TorchScript tracing, which records them unrolled (their number is fixed, so the trace is
    exact).
    """
    if steps == 0:
        return fill
    cross = _cross_kernel(fill) if as_graph else None
    if conductance is None:
        gather, keep = free / 4.0, None
    else:
        reachable = _neighbour_sum(conductance, _cross_kernel(conductance) if as_graph else None)
        blocked = reachable <= 1e-3
        gather = free * torch.where(blocked, torch.zeros_like(reachable), 1.0 / reachable.clamp_min(1e-3))
        keep = free * blocked.to(fill.dtype)
    even = _checkerboard(fill)
    half_sweeps = []
    for colour in (even, 1.0 - even):
        step = SOR_RELAXATION * colour
        stay = 1.0 - step if keep is None else 1.0 - step * (1.0 - keep)
        half_sweeps.append((stay, step * held, step * gather))

    def sweep(fill: torch.Tensor) -> torch.Tensor:
        for stay, pushed, pulled in half_sweeps:
            passed = fill if conductance is None else fill * conductance
            fill = stay * fill + pushed + pulled * _neighbour_sum(passed, cross)
        return fill

    if as_graph and not torch.jit.is_tracing():
        return _graph_loop(steps, lambda index, fill: (sweep(fill),), (fill,))[0]
    for _ in range(steps):
        fill = sweep(fill)
    return fill


def _graph_loop(
    steps: int,
    body: Callable[..., tuple[torch.Tensor, ...]],
    state: tuple[torch.Tensor, ...],
) -> tuple[torch.Tensor, ...]:
    """``state = body(index, *state)`` for index 0 .. steps - 1 as one ``torch.while_loop`` (one loop node of
    an exported graph instead of ``steps`` copies of the body); the final state."""

    def counted(index: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return index + 1, *body(index, *state)

    first = torch.zeros((), dtype=torch.int64, device=state[0].device)
    return tuple(torch.while_loop(lambda index, *_: index < steps, counted, (first, *state))[1:])


def _neighbour_sum(x: torch.Tensor, cross: torch.Tensor | None = None) -> torch.Tensor:
    """(B,C,h,w) -> (B,C,h,w): each pixel's four neighbours summed, edges replicated. Four shifted slices of
    the padded tensor (many times faster on the CPU than a depthwise convolution), or, given ``x``'s
    :func:`_cross_kernel`, that convolution (one node of an exported graph instead of seven); equal to 1e-6."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    if cross is not None:
        return F.conv2d(padded, cross, groups=x.shape[1])
    return padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]


def _cross_kernel(like: torch.Tensor) -> torch.Tensor:
    """(C,1,3,3) for ``like`` (B,C,h,w), of its dtype and device: 1 at the four neighbours of the centre, else 0.
    Built once per pyramid level, not once per half-sweep: an exported graph holds one such constant per level."""
    cross = like.new_tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    return cross.expand(like.shape[1], 1, 3, 3).contiguous()


def _checkerboard(like: torch.Tensor) -> torch.Tensor:
    """(1,1,h,w) of ``like``'s size, dtype and device: 1 where row + column is even, else 0."""
    rows = torch.arange(like.shape[-2], device=like.device).view(-1, 1)
    columns = torch.arange(like.shape[-1], device=like.device).view(1, -1)
    return ((rows + columns) % 2 == 0).to(like.dtype)[None, None]


def _max_2x2(x: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) -> (B,C,ceil(h/2),ceil(w/2)): maxima of 2x2 blocks (a zero row and column added)."""
    return F.max_pool2d(F.pad(x, (0, 1, 0, 1)), 2)


def _sum_2x2(x: torch.Tensor) -> torch.Tensor:
    """(B,C,h,w) -> (B,C,ceil(h/2),ceil(w/2)): sums of 2x2 blocks, a zero row and column
    added (and dropped again where the side is even).

    Written as a mean times 4 (exact in floating point): ONNX export drops ``avg_pool2d``'s ``divisor_override``.
    """
    return F.avg_pool2d(F.pad(x, (0, 1, 0, 1)), 2) * 4.0


def _below_top(level: torch.Tensor) -> torch.Tensor:
    """Whether a pyramid level (B,C,h,w) has both sides above 1 pixel, as a 0-dim bool tensor computed from
    its shape inside the graph (a Python comparison would fix the answer for the size being traced)."""
    ones = torch.ones_like(level[0, 0])
    return (ones[:, 0].sum() > 1.5) & (ones[0].sum() > 1.5)
