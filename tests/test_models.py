"""Generator, discriminator and losses of the inpainting GAN."""

from __future__ import annotations

import pytest
import torch
from skimage import color, feature, transform
from skimage import data as skimage_data
from torch import nn
from torch.nn.utils import parametrize

from mtmsa.evaluation.baselines import BASELINES
from mtmsa.models.discriminator import PatchDiscriminator
from mtmsa.models.fill_blend import START_WEIGHT, FillBlend
from mtmsa.models.generator import ATANH_LIMIT, GeneratorOutput, InpaintGenerator
from mtmsa.models.initial_fill import (
    biharmonic_fill,
    border_bounds,
    harmonic_fill,
    pull_push_fill,
    settle_lines,
    smooth_fills,
)
from mtmsa.models.layers import GatedConv2d, GatedUpConv2d
from mtmsa.models.losses import (
    InpaintingLoss,
    feature_matching_loss,
    hinge_discriminator_loss,
    hinge_generator_loss,
    hole_l1,
    sketch_edge_loss,
)

WIDTH = 8


class StandInAttention(nn.Module):
    """Follows the attention API (x, mask, guide=...) -> (y, aux) with one learnable 1x1 conv."""

    def __init__(self, channels: int, guide_channels: int) -> None:
        super().__init__()
        self.channels, self.guide_channels = channels, guide_channels
        self.proj = nn.Conv2d(channels, channels, 1)
        self.seen_mask_shape: tuple[int, ...] | None = None
        self.seen_guide_shape: tuple[int, ...] | None = None

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, guide: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.seen_mask_shape, self.seen_guide_shape = tuple(mask.shape), tuple(guide.shape)
        temperature = torch.full((x.shape[0], 2, *x.shape[-2:]), 3.0)
        return x + self.proj(x), {"temperature": temperature}


def make_batch(batch: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random images in [-1,1], a centred square hole, a sparse random sketch."""
    rng = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 3, size, size, generator=rng) * 2 - 1
    masks = torch.zeros(batch, 1, size, size)
    masks[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 1.0
    sketches = (torch.rand(batch, 1, size, size, generator=rng) > 0.95).float()
    return images, masks, sketches


def with_random_output_convs(model: InpaintGenerator) -> InpaintGenerator:
    """The generator with its last convolutions enlarged, as after some training (at initialisation it
    returns nearly its initial fill whatever the inputs)."""
    for decoder in (model.coarse[-1], model.refinement.decoder):
        nn.init.normal_(decoder[-1].weight, std=0.1)
    return model


@pytest.fixture(scope="module")
def generator() -> InpaintGenerator:
    torch.manual_seed(0)
    return with_random_output_convs(InpaintGenerator(width=WIDTH, attention=StandInAttention)).eval()


@pytest.mark.parametrize("initial_fill", ["harmonic", "pull_push", "none"])
def test_untrained_generator_starts_near_its_initial_fill(initial_fill: str) -> None:
    images, masks, sketches = make_batch(2, 64)
    model = InpaintGenerator(width=WIDTH, initial_fill=initial_fill).eval()
    with torch.no_grad():
        output = model(images, masks, sketches)
    fills = {"harmonic": harmonic_fill, "pull_push": pull_push_fill, "none": lambda known, _: 0 * known}
    expected = fills[initial_fill](images * (1 - masks), masks)
    hole = masks.bool().expand_as(images)
    coarse_gap = (output.coarse[hole] - expected[hole].clamp(-ATANH_LIMIT, ATANH_LIMIT)).abs()
    assert 0 < coarse_gap.max() < 0.05  # a small residual: non-zero, so every layer gets a gradient
    assert (output.refined[hole] - output.coarse[hole]).abs().max() < 0.05


def test_base_is_the_output_the_networks_residuals_move_from() -> None:
    """``output.base`` is the coarse stage's base: with both networks' last convolutions at zero the output is
    exactly it (to the tanh round trip); with ``fill_blend`` it is the learned blend, not the initial fill."""
    images, masks, sketches = make_batch(2, 32)
    model = InpaintGenerator(width=WIDTH, initial_fill="harmonic", fill_blend=True).eval()
    nn.init.normal_(model.fill_blend.weight.weight, std=0.5)  # a blend that has moved off the harmonic fill
    for decoder in (model.coarse[-1], model.refinement.decoder):
        nn.init.zeros_(decoder[-1].weight)
    with torch.no_grad():
        output = model(images, masks, sketches)
    hole = masks.bool().expand_as(images)
    base = output.base[hole].clamp(-ATANH_LIMIT, ATANH_LIMIT)
    assert (output.refined[hole] - base).abs().max() < 1e-5
    assert (output.base[hole] - output.initial_fill[hole]).abs().max() > 0.01


def test_the_bounded_biharmonic_fill_is_the_blends_third_candidate() -> None:
    """With ``fill_blend_bounded`` the blend weighs three fills; given all the weight, the third is the
    biharmonic fill kept within its border's range (as the ``bounded_biharmonic`` baseline computes it, the
    sketch's lines as barriers), which differs from the plain biharmonic fill on random images."""
    images, masks, sketches = make_batch(2, 32)
    model = InpaintGenerator(
        width=WIDTH, initial_fill="harmonic", sketch_barriers=True, fill_blend=True, fill_blend_bounded=True
    ).eval()
    assert model.fill_blend.weight.out_channels == 2
    nn.init.zeros_(model.fill_blend.weight.weight)
    nn.init.constant_(model.fill_blend.weight.bias, -30.0)
    model.fill_blend.weight.bias.data[1] = 30.0  # all of the weight on the third fill
    with torch.no_grad():
        base = model(images, masks, sketches).base
    known = images * (1 - masks)
    _, bounded = smooth_fills(known, masks, sketches=sketches, harmonic=False, bounded=True)
    _, plain = smooth_fills(known, masks, sketches=sketches, harmonic=False)
    hole = masks.bool().expand_as(images)
    assert (base[hole] - bounded[hole]).abs().max() < 1e-5
    assert (base[hole] - plain[hole]).abs().max() > 0.1
    with pytest.raises(ValueError, match="fill_blend_bounded=true needs fill_blend=true"):
        InpaintGenerator(width=WIDTH, initial_fill="harmonic", fill_blend_bounded=True)


def test_pull_push_fill_interpolates_smoothly_and_keeps_known_pixels() -> None:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 37), torch.linspace(-1, 1, 45), indexing="ij")
    ramp = (0.6 * xs + 0.3 * ys)[None, None].expand(1, 3, 37, 45)
    masks = torch.zeros(1, 1, 37, 45)
    masks[..., 10:25, 12:30] = 1.0
    filled = pull_push_fill(ramp * (1 - masks), masks)
    assert torch.equal(filled[masks.expand_as(filled) == 0], ramp[masks.expand_as(ramp) == 0])
    assert (filled - ramp).abs().max() < 0.15  # a linear ramp is continued across the hole, roughly
    assert torch.equal(pull_push_fill(ramp, torch.ones_like(masks)), torch.zeros_like(ramp))


def test_harmonic_fill_continues_a_ramp_and_solves_laplaces_equation_in_the_hole() -> None:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 37), torch.linspace(-1, 1, 45), indexing="ij")
    ramp = (0.6 * xs + 0.3 * ys)[None, None].expand(1, 3, 37, 45)
    masks = torch.zeros(1, 1, 37, 45)
    masks[..., 10:25, 12:30] = 1.0
    hole = masks.expand_as(ramp).bool()
    harmonic = harmonic_fill(ramp * (1 - masks), masks)
    pull_push = pull_push_fill(ramp * (1 - masks), masks)
    assert torch.equal(harmonic[~hole], ramp[~hole])
    # A linear ramp is harmonic: its border determines it, and the fill finds it far closer than pull-push.
    assert (harmonic - ramp)[hole].abs().max() < 0.05 < 0.1 < (pull_push - ramp)[hole].abs().max()
    inner = harmonic[..., 11:24, 13:29]
    neighbours = 0.25 * (
        harmonic[..., 10:23, 13:29]
        + harmonic[..., 12:25, 13:29]
        + harmonic[..., 11:24, 12:28]
        + harmonic[..., 11:24, 14:30]
    )
    assert (
        inner - neighbours
    ).abs().max() < 1e-3  # each hole pixel the mean of its four neighbours (pull-push: 0.012)


def test_gated_convs_keep_halve_and_double_the_size() -> None:
    x = torch.randn(2, 4, 16, 16)
    assert GatedConv2d(4, 6, kernel_size=5)(x).shape == (2, 6, 16, 16)
    assert GatedConv2d(4, 6, dilation=8)(x).shape == (2, 6, 16, 16)
    assert GatedConv2d(4, 6, stride=2)(x).shape == (2, 6, 8, 8)
    assert GatedUpConv2d(4, 6)(x).shape == (2, 6, 32, 32)


def test_gated_conv_is_elu_features_times_sigmoid_gate() -> None:
    layer = GatedConv2d(3, 2, kernel_size=1)
    nn.init.normal_(layer.conv.weight)
    x = torch.randn(1, 3, 4, 4)
    raw = layer.conv(x)
    expected = nn.functional.elu(raw[:, :2]) * torch.sigmoid(raw[:, 2:])
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("size", [64, 256])
def test_generator_shapes_range_and_aux(generator: InpaintGenerator, size: int) -> None:
    images, masks, sketches = make_batch(2, size)
    with torch.no_grad():
        output = generator(images, masks, sketches)
    assert isinstance(output, GeneratorOutput)
    assert output.coarse.shape == output.refined.shape == (2, 3, size, size)
    for prediction in (output.coarse, output.refined):
        assert prediction.min() >= -1.0 and prediction.max() <= 1.0
    attention = generator.refinement.attention
    assert attention.channels == 4 * WIDTH
    assert attention.seen_mask_shape == (2, 1, size, size)
    assert attention.seen_guide_shape == (2, attention.guide_channels, size // 4, size // 4)
    assert output.aux["temperature"].shape == (2, 2, size // 4, size // 4)


def test_hole_pixels_of_the_input_do_not_change_the_output(generator: InpaintGenerator) -> None:
    images, masks, sketches = make_batch(2, 64)
    garbage = torch.randn(images.shape, generator=torch.Generator().manual_seed(7)) * 100
    corrupted = torch.where(masks.bool(), garbage, images)
    with torch.no_grad():
        clean, dirty = generator(images, masks, sketches), generator(corrupted, masks, sketches)
    assert torch.equal(clean.coarse, dirty.coarse)
    assert torch.equal(clean.refined, dirty.refined)


def test_known_pixels_and_sketch_do_change_the_output(generator: InpaintGenerator) -> None:
    images, masks, sketches = make_batch(1, 64)
    with torch.no_grad():
        reference = generator(images, masks, sketches).refined
        other_known = generator(-images, masks, sketches).refined
        no_sketch = generator(images, masks, torch.zeros_like(sketches)).refined
    assert (reference - other_known).abs().max() > 1e-3
    assert (reference - no_sketch).abs().max() > 1e-4


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    model = with_random_output_convs(InpaintGenerator(width=WIDTH, attention=StandInAttention))
    images, masks, sketches = make_batch(2, 64)
    output = model(images, masks, sketches)
    (output.coarse.square().mean() + output.refined.square().mean()).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_generator_without_attention_has_empty_aux() -> None:
    model = InpaintGenerator(width=WIDTH).eval()
    images, masks, sketches = make_batch(1, 64)
    with torch.no_grad():
        output = model(images, masks, sketches)
    assert output.aux == {}
    assert output.refined.shape == (1, 3, 64, 64)


def test_bf16_autocast_gives_finite_outputs(generator: InpaintGenerator) -> None:
    images, masks, sketches = make_batch(2, 64)
    discriminator = PatchDiscriminator(width=WIDTH)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        output = generator(images, masks, sketches)
        logits = discriminator(output.refined, masks, sketches)
    assert output.coarse.isfinite().all() and output.refined.isfinite().all() and logits.isfinite().all()


def test_channels_last_inputs_give_the_same_result(generator: InpaintGenerator) -> None:
    images, masks, sketches = make_batch(2, 64)
    with torch.no_grad():
        reference = generator(images, masks, sketches).refined
        channels_last = generator(
            *(t.to(memory_format=torch.channels_last) for t in (images, masks, sketches))
        )
    torch.testing.assert_close(channels_last.refined, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("height", "width", "message"),
    [(62, 64, "divisible by 4"), (64, 66, "divisible by 4")],
)
def test_size_not_divisible_raises_a_clear_error(
    generator: InpaintGenerator, height: int, width: int, message: str
) -> None:
    blank = torch.zeros(1, 1, height, width)
    with pytest.raises(ValueError, match=message):
        generator(blank.repeat(1, 3, 1, 1), blank, blank)


def test_wrong_sketch_channels_or_size_raise_clear_errors(generator: InpaintGenerator) -> None:
    images, masks, sketches = make_batch(1, 64)
    with pytest.raises(ValueError, match="in_channels=5"):
        generator(images, masks, sketches.repeat(1, 3, 1, 1))
    with pytest.raises(ValueError, match="masks and sketches of the image size"):
        generator(images, masks[..., :32, :32], sketches)


@pytest.mark.parametrize(("size", "layers", "patches"), [(256, 6, 4 * 4), (64, 6, 1), (64, 4, 4 * 4)])
def test_discriminator_patch_logits_shape(size: int, layers: int, patches: int) -> None:
    images, masks, sketches = make_batch(2, size)
    discriminator = PatchDiscriminator(width=WIDTH, layers=layers)
    assert discriminator(images, masks, sketches).shape == (2, 4 * WIDTH * patches)


def test_discriminator_convs_are_spectrally_normalised() -> None:
    torch.manual_seed(0)
    discriminator = PatchDiscriminator(width=WIDTH)
    convs = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [WIDTH, 2 * WIDTH] + [4 * WIDTH] * 4
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    images, masks, sketches = make_batch(1, 64)
    for _ in range(30):  # power iterations run in training-mode forwards
        discriminator(images, masks, sketches)
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.02)


def test_hinge_losses_on_known_logits() -> None:
    real = torch.tensor([[2.0, 0.5], [-1.0, 1.0]])  # relu(1 - real) = 0, 0.5, 2, 0 -> mean 0.625
    fake = torch.tensor([[-2.0, 0.0], [1.0, -0.5]])  # relu(1 + fake) = 0, 1, 2, 0.5 -> mean 0.875
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(1.5)
    assert hinge_generator_loss(fake).item() == pytest.approx(0.375)


def test_hole_l1_counts_hole_pixels_only() -> None:
    target = torch.zeros(1, 2, 2, 2)
    prediction = torch.full_like(target, 2.0, requires_grad=True)
    masks = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one hole pixel of four, per channel
    loss = hole_l1(prediction, target, masks)
    assert loss.item() == pytest.approx(2.0)  # the mean over the hole, whatever the known pixels hold
    loss.backward()
    assert (prediction.grad[:, :, 0, 0] != 0).all() and (prediction.grad * (1 - masks) == 0).all()
    assert hole_l1(prediction, target, torch.zeros_like(masks)).item() == 0.0


def test_feature_matching_is_the_mean_layer_l1_with_real_features_as_targets() -> None:
    real = [torch.zeros(1, 2, 4, 4), torch.ones(1, 4, 2, 2)]
    fake = [torch.full((1, 2, 4, 4), 0.5, requires_grad=True), torch.full((1, 4, 2, 2), 2.0)]
    assert feature_matching_loss(fake, real).item() == pytest.approx((0.5 + 1.0) / 2)


def test_inpainting_loss_combines_the_terms() -> None:
    target = torch.zeros(1, 3, 4, 4)
    masks = torch.ones(1, 1, 4, 4)
    output = GeneratorOutput(
        coarse=torch.full_like(target, 0.5), refined=torch.full_like(target, 0.25), aux={}
    )
    loss = InpaintingLoss(coarse_weight=2.0, adversarial_weight=0.1, feature_matching_weight=3.0)
    features = ([torch.ones(1, 2, 2, 2)], [torch.zeros(1, 2, 2, 2)])
    terms = loss.generator_loss(output, target, masks, torch.tensor([[3.0, 1.0]]), *features)
    assert terms["l1_coarse"].item() == pytest.approx(0.5)
    assert terms["l1_refined"].item() == pytest.approx(0.25)
    assert terms["adversarial"].item() == pytest.approx(-2.0)
    assert terms["feature_matching"].item() == pytest.approx(1.0)
    assert terms["loss"].item() == pytest.approx(2.0 * 0.5 + 0.25 - 0.2 + 3.0)
    no_adversary = loss.generator_loss(output, target, masks, fake_logits=None)
    assert no_adversary["adversarial"].item() == 0.0 and no_adversary["feature_matching"].item() == 0.0
    assert no_adversary["loss"].item() == pytest.approx(1.25)
    warming = InpaintingLoss(
        coarse_weight=2.0, adversarial_weight=0.1, feature_matching_weight=3.0, adversarial_warmup_steps=8
    )
    totals = [
        warming.generator_loss(output, target, masks, torch.tensor([[3.0, 1.0]]), *features, step=step)[
            "loss"
        ]
        for step in (0, 2, 8, 100)
    ]  # reconstruction 1.25, GAN terms -0.2 + 3.0 scaled by 0, 1/4, 1, 1
    assert [t.item() for t in totals] == pytest.approx([1.25, 1.25 + 0.7, 1.25 + 2.8, 1.25 + 2.8])


def test_tiny_generator_overfits_one_image() -> None:
    torch.manual_seed(0)
    model = InpaintGenerator(width=WIDTH)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 64), indexing="ij")
    image = torch.stack([xs, ys, torch.sin(3 * xs) * torch.cos(3 * ys)])[None]
    _, masks, sketches = make_batch(1, 64)
    loss_fn = InpaintingLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        terms = loss_fn.generator_loss(model(image, masks, sketches), image, masks, fake_logits=None)
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
        losses.append(terms["loss"].item())
    assert losses[-1] < 0.4 * losses[0]  # default PyTorch init of the gated convs only reaches ~0.6


def test_sketch_edge_loss_counts_the_edges_on_drawn_pixels_in_the_hole_of_either_polarity() -> None:
    target = torch.zeros(1, 3, 16, 16)
    target[..., 8:] = 1.0  # a vertical edge between columns 7 and 8
    masks = torch.ones(1, 1, 16, 16)
    on_edge, elsewhere = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    on_edge[..., 4:12, 8] = 1.0
    elsewhere[..., 4:12, 2] = 1.0
    flat = torch.full_like(target, 0.5)
    across = target.transpose(-1, -2)  # an edge of the same strength, the wrong way round
    assert sketch_edge_loss(target, target, on_edge, masks).item() == 0.0
    assert sketch_edge_loss(1.0 - target, target, on_edge, masks).item() == 0.0  # darker on the other side
    assert sketch_edge_loss(flat, target, on_edge, masks).item() > 0.1  # the drawn edge is missing
    assert sketch_edge_loss(across, target, on_edge, masks).item() > 0.1  # an edge, but not along the line
    assert sketch_edge_loss(flat, target, elsewhere, masks).item() == 0.0  # no edge there in the truth either
    assert sketch_edge_loss(flat, target, on_edge, torch.zeros_like(masks)).item() == 0.0  # not in the hole


def test_sketch_edge_loss_draws_an_edge_on_the_sketch_from_a_flat_fill() -> None:
    """Its gradient reaches a prediction with no edge at all, and descending it draws the edge there."""
    torch.manual_seed(0)
    target = torch.zeros(1, 3, 16, 16)
    target[..., 8:] = 1.0
    masks, sketch = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    masks[..., 2:14, 2:14] = 1.0
    sketch[..., 3:13, 8] = 1.0
    prediction = torch.full_like(target, 0.5).requires_grad_()
    optimizer = torch.optim.Adam([prediction], lr=0.02)
    losses = []
    for _ in range(100):
        loss = sketch_edge_loss(prediction, target, sketch, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    columns = prediction.detach()[0, :, 4:12].mean(dim=(0, 1))  # mean value per column across the sketch
    assert abs(float(columns[8] - columns[7])) > 0.3  # a step where the line was drawn


def laplace_solution(image: torch.Tensor, hole: torch.Tensor, conductance: torch.Tensor) -> torch.Tensor:
    """The exact discrete solution that :func:`harmonic_fill` approximates, by a sparse direct solve: in the
    hole, each pixel is the mean of its four neighbours weighted by their conductance (edges replicated).
    image (H,W), hole and conductance (H,W) -> (H,W)."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    height, width = image.shape
    pixels = [(y, x) for y in range(height) for x in range(width) if hole[y, x]]
    index = {pixel: i for i, pixel in enumerate(pixels)}
    system, right = lil_matrix((len(pixels), len(pixels))), torch.zeros(len(pixels), dtype=torch.float64)
    for i, (y, x) in enumerate(pixels):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = min(max(y + dy, 0), height - 1), min(max(x + dx, 0), width - 1)
            weight = float(conductance[ny, nx])
            system[i, i] += weight
            if (ny, nx) in index:
                system[i, index[ny, nx]] -= weight
            else:
                right[i] += weight * float(image[ny, nx])
    solution = image.clone().double()
    solution[hole.bool()] = torch.from_numpy(spsolve(system.tocsr(), right.numpy()))
    return solution.float()


@pytest.mark.parametrize("with_line, tolerance", [(False, 0.02), (True, 0.1)])
def test_harmonic_fill_converges_to_the_exact_solution_of_laplaces_equation(
    with_line: bool, tolerance: float
) -> None:
    """A noisy image with a 36x40 hole (and drawn lines in it as barriers): the fill is the sparse direct
    solution's, not an unconverged smoothing of it. Measured: 0.009 and 0.054 off at most; 20 Jacobi steps
    per level, the solver before, were 0.08 and 0.18 off."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 1, 48, 56, generator=generator) * 2 - 1
    masks = torch.zeros(1, 1, 48, 56)
    masks[..., 6:42, 8:48] = 1.0
    line = torch.zeros_like(masks)
    if with_line:
        line[..., 20, 4:52] = 1.0
        line[..., 10:20, 30] = 1.0
    exact = laplace_solution(image[0, 0], masks[0, 0], 1.0 - line[0, 0])
    fill = harmonic_fill(image * (1 - masks), masks, sketches=line if with_line else None)
    assert (fill[0, 0] - exact).abs().max() < tolerance


def test_biharmonic_baseline_continues_a_valley_the_harmonic_fill_flattens() -> None:
    """A parabola is biharmonic but not harmonic: the border's slopes say where the valley's floor is."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 37), torch.linspace(-1, 1, 45), indexing="ij")
    valley = (0.8 * xs**2 - 0.4)[None, None].expand(2, 3, 37, 45)
    masks = torch.zeros(2, 1, 37, 45)
    masks[..., 10:25, 12:30] = 1.0
    hole = masks.expand_as(valley).bool()
    biharmonic = BASELINES["biharmonic"](valley * (1 - masks), masks)
    harmonic = harmonic_fill(valley * (1 - masks), masks)
    assert torch.equal(biharmonic[~hole], valley[~hole])
    assert (biharmonic - valley)[hole].abs().max() < 1e-3 < 0.05 < (harmonic - valley)[hole].abs().max()


@pytest.mark.parametrize("size, tolerance", [(32, 0.002), (64, 0.1)])
def test_biharmonic_fill_reaches_scikit_images_biharmonic_inpainting(size: int, tolerance: float) -> None:
    """A smooth image with a hole of half its side: the device's conjugate-gradient cascade against
    scikit-image's sparse direct solve of the same equation. The valley test below shows why it matters.
    Measured: 1e-6 off at most at 32 px; 0.069 at 64 px, where 150 steps per level do not converge on the
    32-pixel hole (the harmonic fill is 0.50 off)."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(2, 3, 4, 4, generator=generator) * 2 - 1
    images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    masks = torch.zeros(2, 1, size, size)
    masks[..., size // 4 : 3 * size // 4, size // 5 : size // 5 + size // 2] = 1.0
    exact = BASELINES["biharmonic"](images * (1 - masks), masks)
    fill = biharmonic_fill(images * (1 - masks), masks)
    assert (fill - exact).abs().max() < tolerance


def test_biharmonic_fill_continues_a_valley_and_keeps_the_sides_of_a_drawn_line_apart() -> None:
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 36), torch.linspace(-1, 1, 44), indexing="ij")
    valley = (0.8 * xs**2 - 0.4)[None, None].expand(1, 3, 36, 44)
    masks = torch.zeros(1, 1, 36, 44)
    masks[..., 10:26, 12:32] = 1.0
    hole = masks.expand_as(valley).bool()
    fill = biharmonic_fill(valley * (1 - masks), masks)
    assert torch.equal(fill[~hole], valley[~hole])
    assert (fill - valley)[hole].abs().max() < 0.01
    step = torch.where(ys > 0, 0.5, -0.5)[None, None].expand(1, 3, 36, 44)  # an edge across the hole
    line = torch.zeros_like(masks)
    line[..., 18, :] = 1.0
    guided = biharmonic_fill(step * (1 - masks), masks, sketches=line)
    plain = biharmonic_fill(step * (1 - masks), masks)
    jump = lambda fill: float((fill[..., 20, 14:30] - fill[..., 16, 14:30]).mean())  # noqa: E731
    assert jump(guided) > 0.9 > 0.6 > jump(plain)


def test_the_pixels_on_a_drawn_line_settle_midway_between_its_sides() -> None:
    """The fills leave a line's pixels out of their equations; :func:`settle_lines` gives them the mean of their
    neighbours off the line. On a step edge drawn across the hole both fills put them midway (0 between -0.5 and
    0.5). Measured: at most 0.004 (harmonic) and 0.0003 (biharmonic) from 0; before settling, the biharmonic fill
    left them where its solver started them, 0.21 on average."""
    ys, _ = torch.meshgrid(torch.linspace(-1, 1, 36), torch.linspace(-1, 1, 44), indexing="ij")
    masks = torch.zeros(1, 1, 36, 44)
    masks[..., 10:26, 12:32] = 1.0
    step = torch.where(ys > 0, 0.5, -0.5)[None, None].expand(1, 3, 36, 44)
    line = torch.zeros_like(masks)
    line[..., 18, :] = 1.0
    for fill in smooth_fills(step * (1 - masks), masks, sketches=line):
        assert float(fill[..., 18, 12:32].abs().max()) < 0.02
        assert torch.equal(fill[..., :10, :], step[..., :10, :])


def test_settle_lines_reaches_into_thick_lines_and_leaves_the_rest() -> None:
    """A 3-pixel-wide line: the first pass settles its outer rows from their open neighbours, the second its
    middle row from what the first gave them; pixels off the line keep their values."""
    generator = torch.Generator().manual_seed(0)
    fill = torch.rand(2, 3, 12, 12, generator=generator)
    line = torch.zeros(2, 1, 12, 12)
    line[..., 4:7, :] = 1.0
    settled = settle_lines(fill, line)
    off = (line == 0).expand_as(fill)
    assert torch.equal(settled[off], fill[off])
    expected_outer = fill[..., 3, 4:7].sum(dim=-1) / 3  # row 4, column 5: its three neighbours in row 3
    first = settle_lines(fill, line, passes=1)
    assert torch.allclose(first[..., 4, 5], expected_outer)
    middle = (first[..., 4, 4:7].sum(dim=-1) + first[..., 6, 4:7].sum(dim=-1)) / 6
    assert torch.allclose(settled[..., 5, 5], middle)
    assert torch.equal(settle_lines(fill, torch.zeros_like(line)), fill)


def test_tension_moves_the_biharmonic_fill_towards_the_harmonic_one() -> None:
    """A spline in tension lies between the two fills: on the valley (biharmonic, not harmonic) its distance
    from the harmonic fill falls as the tension grows, 0 being the biharmonic fill itself. Measured: 0.089
    (no tension; the harmonic fill is as far from the valley), 0.053 / 0.014 / 0.003 / 0.001 at 0.1 / 1 / 10 /
    100."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 36), torch.linspace(-1, 1, 44), indexing="ij")
    valley = (0.8 * xs**2 - 0.4)[None, None].expand(1, 3, 36, 44)
    masks = torch.zeros(1, 1, 36, 44)
    masks[..., 10:26, 12:32] = 1.0
    known = valley * (1 - masks)
    harmonic = harmonic_fill(known, masks)
    assert torch.equal(biharmonic_fill(known, masks, tension=0.0), biharmonic_fill(known, masks))
    distances = [
        float((biharmonic_fill(known, masks, tension=tension) - harmonic).abs().max())
        for tension in (0.0, 0.1, 1.0, 10.0, 100.0)
    ]
    assert all(a > b for a, b in zip(distances, distances[1:], strict=False))
    assert distances[0] > 0.08 and distances[-1] < 0.005


def _photo_with_hole(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-image's photo ``name`` at 96x96 in [-1, 1] (1,3,96,96), a 40x40 hole (1,1,96,96) and the photo's
    Canny edges inside the hole as sketch lines (1,1,96,96)."""
    photo = getattr(skimage_data, name)()
    photo = transform.resize(photo, (96, 96 * photo.shape[1] // photo.shape[0]), anti_aliasing=True)[:, :96]
    edges = feature.canny(color.rgb2gray(photo), sigma=1.5)
    images = torch.tensor(photo, dtype=torch.float32).permute(2, 0, 1)[None] * 2 - 1
    masks = torch.zeros(1, 1, 96, 96)
    masks[..., 28:68, 28:68] = 1.0
    return images, masks, torch.tensor(edges, dtype=torch.float32)[None, None] * masks


@pytest.mark.parametrize("name, lines, ratio", [("rocket", False, 0.2), ("coffee", True, 0.6)])
def test_the_bounded_biharmonic_fill_stays_within_the_borders_range_and_loses_its_overshoot(
    name: str, lines: bool, ratio: float
) -> None:
    """A 40-pixel hole in a photo: the biharmonic fill carries a short piece of border's slope far into the
    hole (``rocket``, where the sky meets the launch tower) or into a pocket walled off by the sketch's lines
    (``coffee`` with its Canny edges); kept within :func:`border_bounds` it lies between them everywhere and
    its hole error falls below ``ratio`` times the unbounded one. Measured: squared error 0.0049 against
    0.0623 (rocket), 0.0549 against 0.1051 (coffee). On a linear ramp the bounds do not bind."""
    images, masks, sketches = _photo_with_hole(name)
    sketches = sketches if lines else None
    known = images * (1 - masks)
    plain = biharmonic_fill(known, masks, sketches=sketches)
    bounded = smooth_fills(known, masks, sketches=sketches, harmonic=False, bounded=True)[1]
    low, high = border_bounds(known, masks, sketches=sketches)
    assert bool((bounded >= low - 1e-6).all() and (bounded <= high + 1e-6).all())
    hole = masks.bool().expand_as(images)
    assert torch.equal(bounded[~hole], images[~hole])
    error = lambda fill: float(((fill - images)[hole] ** 2).mean())  # noqa: E731
    assert error(bounded) < ratio * error(plain), (error(bounded), error(plain))
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 96), torch.linspace(-1, 1, 96), indexing="ij")
    ramp = (0.4 * xs - 0.3 * ys)[None, None].expand(1, 3, 96, 96)
    ramp_known = ramp * (1 - masks)
    unbound = biharmonic_fill(ramp_known, masks)
    assert torch.equal(smooth_fills(ramp_known, masks, harmonic=False, bounded=True)[1], unbound)


def test_biharmonic_fill_stays_finite_and_inside_the_known_range_among_dense_lines() -> None:
    """Block holes crossed by a dense scatter of sketch pixels wall off pockets whose systems conjugate
    gradients solve in a few steps; rounding then made the remaining steps grow without bound (NaN in
    this batch before the stopping rule). The fill must stay finite and within the images' range."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(8, 3, 64, 64, generator=generator) * 2 - 1
    blocks = (torch.rand(8, 1, 8, 8, generator=generator) > 0.5).float()
    masks = blocks.repeat_interleave(8, 2).repeat_interleave(8, 3)
    lines = (torch.rand(8, 1, 64, 64, generator=generator) > 0.9).float()
    fill = biharmonic_fill(images * (1 - masks), masks, sketches=lines)
    assert torch.isfinite(fill).all()
    assert float(fill.min()) >= -1.0 and float(fill.max()) <= 1.0


def test_a_blend_of_more_fills_starts_at_the_first_and_every_layer_gets_a_gradient() -> None:
    """Four candidates: at initialisation the first fill holds all but ``START_WEIGHT`` of the weight (the
    others share it), the output is a convex combination of the fills, and one step's loss reaches every
    parameter; two candidates are ``first + sigmoid(logit) * (second - first)``, as before the generalisation."""
    torch.manual_seed(0)
    known, masks, sketches = torch.randn(2, 3, 16, 16), torch.ones(2, 1, 16, 16), torch.zeros(2, 1, 16, 16)
    fills = [torch.full((2, 3, 16, 16), value) for value in (0.0, 1.0, -1.0, 0.5)]
    blend = FillBlend(candidates=4)
    output = blend(known, masks, sketches, *fills)
    at_start = START_WEIGHT / 3 * (1.0 - 1.0 + 0.5)  # the first fill is 0, the others share START_WEIGHT
    assert output.detach().sub(at_start).abs().max() < 1e-3
    output.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in blend.parameters())
    pair = FillBlend()
    features = pair.body(torch.cat([known, masks, sketches, fills[0], fills[1] - fills[0]], dim=1))
    expected = fills[0] + torch.sigmoid(pair.weight(features)) * (fills[1] - fills[0])
    assert (pair(known, masks, sketches, fills[0], fills[1]) - expected).abs().max() < 1e-6
    with pytest.raises(ValueError, match="at least 2 fills"):
        FillBlend(candidates=1)


def test_fill_blend_starts_at_the_harmonic_fill_and_learns_where_the_biharmonic_one_is_right() -> None:
    """Parabolas (biharmonic) on the left half of each image, faint noise (where the harmonic fill is the
    better guess) on the right: 150 Adam steps on the hole MSE lower it well below both fills', because the
    blend learns to tell the halves apart. Measured: 0.00046 against 0.00103 (harmonic) and 0.00068
    (biharmonic). With noise 10 times stronger the gate closes on the biharmonic fill everywhere (its
    sigmoid saturates at 0): it then returns the harmonic fill, and the check fails."""
    torch.manual_seed(0)
    blend = FillBlend()
    batches = torch.Generator().manual_seed(1)

    def batch() -> tuple[torch.Tensor, ...]:
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
        curvature = torch.rand(8, 3, 1, 1, generator=batches) * 1.6 - 0.8
        smooth = curvature * (xs**2 + 0.5 * ys**2) - curvature / 2
        noise = (torch.rand(8, 3, 32, 32, generator=batches) - 0.5) * 0.1
        images = torch.where(xs < 0, smooth, noise)
        masks = torch.zeros(8, 1, 32, 32)
        masks[..., 8:24, 4:12] = 1.0  # a hole on each half
        masks[..., 8:24, 20:28] = 1.0
        known = images * (1 - masks)
        return images, masks, known, harmonic_fill(known, masks), biharmonic_fill(known, masks)

    def hole_mse(fill: torch.Tensor, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return ((fill - images) ** 2 * masks).sum() / (3 * masks.sum())

    images, masks, known, harmonic, biharmonic = batch()
    sketches = torch.zeros_like(masks)
    with torch.no_grad():
        start = blend(known, masks, sketches, harmonic, biharmonic)
    assert (start - harmonic).abs().max() <= 0.02 * (biharmonic - harmonic).abs().max()
    optimizer = torch.optim.Adam(blend.parameters(), lr=1e-3)
    for _ in range(150):
        images, masks, known, harmonic, biharmonic = batch()
        loss = hole_mse(blend(known, masks, sketches, harmonic, biharmonic), images, masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    images, masks, known, harmonic, biharmonic = batch()
    with torch.no_grad():
        learned = hole_mse(blend(known, masks, sketches, harmonic, biharmonic), images, masks)
    both = [float(hole_mse(fill, images, masks)) for fill in (harmonic, biharmonic)]
    assert float(learned) < 0.85 * min(both), (float(learned), both)
