import pytest
import torch

from mtmsa.models.attention import (
    ContextualAttention,
    IdentityAttention,
    TemperatureMaskedAttention,
    build_mtmsa,
    feature_hole,
)
from mtmsa.models.outputs import AttentionOutput

MODES = ("constant", "learned_scalar", "learned_map")


def random_inputs(seed, batch=2, channels=16, size=12, mask_size=24):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, size, size, generator=generator)
    mask = (torch.rand(batch, 1, mask_size, mask_size, generator=generator) > 0.85).float()
    return x, mask


def make_attention(seed=0, **kwargs):
    torch.manual_seed(seed)
    options = dict(channels=16, heads=4, temperature_range=(0.05, 1.0), temperature_init=0.2)
    return TemperatureMaskedAttention(**{**options, **kwargs})


@pytest.mark.parametrize("descriptor_size", [None, 8])  # 8 > 16 channels / 4 heads: padded values
@pytest.mark.parametrize("patch_size", [1, 3])
@pytest.mark.parametrize("mode", MODES)
def test_fused_matches_reference(mode, patch_size, descriptor_size):
    attention = make_attention(temperature=mode, patch_size=patch_size, descriptor_size=descriptor_size)
    for seed in range(3):
        x, mask = random_inputs(seed)
        fused, fused_aux = attention(x, mask)
        reference, reference_aux = attention(x, mask, return_attention=True)
        assert fused.shape == x.shape
        assert (fused - reference).abs().max() <= 1e-5
        assert torch.equal(fused_aux["temperature"], reference_aux["temperature"])


def test_gated_residual_fused_matches_reference_and_changes_known_features():
    x, mask = random_inputs(1)
    attention = make_attention(merge="gated_residual")
    fused, _ = attention(x, mask)
    reference, _ = attention(x, mask, return_attention=True)
    assert (fused - reference).abs().max() <= 1e-5
    known = ~feature_hole(mask, x.shape[-2:]).expand_as(x)
    assert (fused - x)[known].abs().mean() > 1e-3


def test_probabilities_skip_hole_keys_and_rows_sum_to_one():
    x, mask = random_inputs(2)
    attention = make_attention(temperature="learned_map", patch_size=3)
    _, aux = attention(x, mask, return_attention=True)
    probabilities = aux["attention"]
    assert probabilities.shape == (2, 4, 144, 144)
    key_hole = aux["hole"].flatten(1).bool()  # (B, HW)
    assert 0 < key_hole.sum() < key_hole.numel()
    assert probabilities.masked_select(key_hole[:, None, None, :].expand_as(probabilities)).abs().max() == 0
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(2, 4, 144), atol=1e-5, rtol=0)


def test_mask_resized_with_any_hole_rule_and_known_features_kept():
    x = torch.randn(1, 16, 4, 4)
    mask = torch.zeros(1, 1, 16, 16)
    mask[0, 0, 5, 9] = 1.0  # one pixel, inside feature cell (1, 2)
    y, aux = make_attention()(x, mask)
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, 1, 2] = 1.0
    assert torch.equal(aux["hole"], expected)
    keep = expected == 0
    assert torch.equal(y[keep.expand_as(y)], x[keep.expand_as(x)])
    assert not torch.allclose(y[:, :, 1, 2], x[:, :, 1, 2])
    small_mask = torch.tensor([[[[0.0, 1.0], [0.0, 0.0]]]])  # upsampled: top-right quarter
    assert feature_hole(small_mask, (4, 4))[0, 0].float().sum() == 4


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("merge", ["replace_hole", "gated_residual"])
def test_all_hole_and_no_hole_masks(fused, merge):
    x, _ = random_inputs(3)
    attention = make_attention(merge=merge, fused=fused)
    all_hole = torch.ones(2, 1, 24, 24)
    y, aux = attention(x, all_hole)
    assert torch.isfinite(y).all() and torch.isfinite(aux["temperature"]).all()
    assert torch.equal(y, x)
    no_hole = torch.zeros(2, 1, 24, 24)
    y, _ = attention(x, no_hole)
    assert torch.isfinite(y).all()
    if merge == "replace_hole":
        assert torch.equal(y, x)
    mixed = torch.stack([all_hole[0], random_inputs(3)[1][1]])
    y_mixed, _ = attention(x, mixed)
    y_alone, _ = attention(x[1:], mixed[1:])
    assert torch.equal(y_mixed[0], x[0])
    torch.testing.assert_close(y_mixed[1:], y_alone, atol=1e-6, rtol=0)


def test_gradients_reach_temperature_network():
    x, mask = random_inputs(4)
    attention = make_attention(temperature="learned_map")
    y, aux = attention(x, mask)
    (y.square().mean() + aux["temperature"].mean()).backward()
    for name, parameter in attention.temperature.network.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", MODES)
def test_temperatures_stay_in_range_after_big_perturbations(mode):
    x, mask = random_inputs(5)
    attention = make_attention(temperature=mode)
    _, aux = attention(x, mask)
    assert aux["temperature"].shape == (2, 4, 12, 12)
    torch.testing.assert_close(aux["temperature"].mean(), torch.tensor(0.2), atol=0.02, rtol=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in attention.temperature.parameters():
            parameter.add_(1e4 * torch.randn(parameter.shape, generator=generator))
    temperature = attention(x * 1e3, mask)[1]["temperature"]
    assert temperature.min() >= 0.05 and temperature.max() <= 1.0


def copy_task():
    """Features whose hole positions have an exact copy in the background: sharper attention copies better."""
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(2, 16, 8, 8, generator=generator)
    x[:, :, 1:3, 1:3] = x[:, :, 5:7, 5:7]
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 1:3, 1:3] = 1.0
    return x, mask


@pytest.mark.parametrize("mode", ["learned_scalar", "learned_map"])
def test_learned_temperature_goes_down_when_sharper_attention_helps(mode):
    x, mask = copy_task()
    attention = make_attention(
        temperature=mode, temperature_init=0.5, temperature_range=(0.01, 1.0), fused=False
    )
    with torch.no_grad():  # match on x itself (values and output start as the identity)
        attention.match.weight.copy_(torch.eye(16).view_as(attention.match.weight))
        attention.match.bias.zero_()
    optimizer = torch.optim.Adam(attention.temperature.parameters(), lr=0.1)
    hole = mask.bool().expand_as(x)
    losses, temperatures = [], []
    for _ in range(30):
        y, aux = attention(x, mask)
        loss = (y - x)[hole].square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        temperatures.append(aux["temperature"][mask.expand(-1, 4, -1, -1).bool()].mean().item())
    assert temperatures[-1] < 0.5 * temperatures[0]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_bfloat16_autocast_is_finite(mode, fused):
    x, mask = random_inputs(7)
    attention = make_attention(
        temperature=mode, fused=fused, temperature_range=(0.01, 1.0), temperature_init=0.01 + 1e-4
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, aux = attention(x, mask)
        y.float().square().mean().backward()
    assert torch.isfinite(y).all()
    assert aux["temperature"].dtype == torch.float32
    assert aux["temperature"].min() >= 0.01
    assert all(torch.isfinite(p.grad).all() for p in attention.parameters() if p.grad is not None)


def test_bad_options_name_the_option_and_allowed_values():
    with pytest.raises(ValueError, match=r"temperature='sharp'.*constant.*learned_scalar.*learned_map"):
        TemperatureMaskedAttention(16, temperature="sharp")
    with pytest.raises(ValueError, match=r"merge='add'.*replace_hole.*gated_residual"):
        TemperatureMaskedAttention(16, merge="add")
    with pytest.raises(ValueError, match="temperature_init"):
        TemperatureMaskedAttention(16, temperature_init=2.0)
    with pytest.raises(ValueError, match="heads=3"):
        TemperatureMaskedAttention(16, heads=3)


def test_build_mtmsa_from_nested_temperature_config():
    attention = build_mtmsa(
        channels=16,
        heads=2,
        temperature={"mode": "learned_scalar", "range": [0.02, 0.5], "init": 0.1},
        patch_size=3,
        merge="gated_residual",
    )
    x, mask = random_inputs(8)
    _, aux = attention(x, mask)
    torch.testing.assert_close(aux["temperature"], torch.full((2, 2, 12, 12), 0.1))
    assert attention.patch_size == 3 and attention.merge == "gated_residual" and attention.fused
    with pytest.raises(ValueError, match="model.attention.temperature is missing"):
        build_mtmsa(16, 2, {"mode": "constant"}, 1, "replace_hole")


def test_contextual_attention_reconstructs_a_hole_copied_from_the_background():
    generator = torch.Generator().manual_seed(9)
    x = torch.randn(2, 32, 48, 48, generator=generator)
    x[:, :, 12:28, 12:28] = x[:, :, 30:46, 30:46]  # hole 16:24 plus a 4-pixel margin, copied
    mask = torch.zeros(2, 1, 48, 48)
    mask[:, :, 16:24, 16:24] = 1.0
    y, aux = ContextualAttention(32)(x, mask)
    assert aux == {}
    hole = mask.bool().expand_as(x)
    assert torch.equal(y[~hole], x[~hole])
    assert (y - x)[hole].abs().max() < 1e-3
    shuffled = x.clone()
    shuffled[:, :, 12:28, 12:28] = torch.randn(2, 32, 16, 16, generator=generator)
    y_shuffled, _ = ContextualAttention(32)(shuffled, mask)
    assert (y_shuffled - shuffled)[hole].abs().mean() > 0.5


def test_contextual_attention_ignores_hole_patches_and_survives_all_hole():
    x = torch.zeros(1, 8, 16, 16)
    x[:, :, 4:8, 4:8] = 100.0  # bright content only inside the hole
    mask = torch.zeros(1, 1, 16, 16)
    mask[:, :, 2:10, 2:10] = 1.0
    y, _ = ContextualAttention(8)(x + 0.01 * torch.randn(1, 8, 16, 16), mask)
    assert y[:, :, 2:10, 2:10].abs().max() < 1.0
    y_all, _ = ContextualAttention(8)(x, torch.ones(1, 1, 8, 8))
    assert torch.equal(y_all, x)
    with pytest.raises(ValueError, match="divisible by rate=2"):
        ContextualAttention(8)(torch.zeros(1, 8, 15, 16), mask)


def test_identity_attention_returns_input_and_empty_aux():
    x, mask = random_inputs(10)
    y, aux = IdentityAttention(16)(x, mask)
    assert y is x and aux == {}


def test_every_attention_returns_a_typed_record_that_also_reads_as_the_old_mapping():
    x, mask = random_inputs(11)
    attention = make_attention(temperature="learned_map")
    _, fused = attention(x, mask)
    _, reference = attention(x, mask, return_attention=True)
    assert isinstance(fused, AttentionOutput) and isinstance(reference, AttentionOutput)
    assert fused.heads == 4 and fused.temperature_range == (0.05, 1.0)
    assert fused.temperature.shape == (2, 4, 12, 12) and fused.attention is None
    assert sorted(fused) == ["hole", "temperature"] and "attention" not in fused
    assert sorted(reference) == ["attention", "hole", "temperature"]
    assert reference.attention.shape == (2, 4, 144, 144) and reference["attention"] is reference.attention
    with pytest.raises(KeyError):
        fused["attention"]
    for module in (ContextualAttention(16), IdentityAttention(16)):
        record = module(x, mask)[1]
        assert isinstance(record, AttentionOutput) and record.heads == 0 and len(record) == 0
        assert record.temperature is None and record.temperature_range is None
