import pytest
import torch

from wmenv.nn import MLP, ConvDecoder, ConvEncoder, NormGRUCell, frozen


def test_mlp_shapes_and_zero_init() -> None:
    mlp = MLP(5, 3, 16, 2, norm=True, act="silu", out_init_zero=True)
    x = torch.randn(2, 7, 5)
    assert mlp(x).shape == (2, 7, 3)
    assert torch.equal(mlp(x), torch.zeros(2, 7, 3))
    assert MLP(5, None, 16, 2).out_dim == 16
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        MLP(5, 3, 16, 1, act="gelu")  # type: ignore[arg-type]


def test_conv_encoder_decoder_mirror() -> None:
    enc = ConvEncoder(3, depth=4, size=64)
    dec = ConvDecoder(enc.out_dim, 3, depth=4, size=64)
    img = torch.rand(2, 5, 3, 64, 64) - 0.5
    feat = enc(img)
    assert feat.shape == (2, 5, 4 * 8 * 4 * 4)
    assert dec(feat).shape == (2, 5, 3, 64, 64)
    with pytest.raises(ValueError, match="power of two >= 8, got 48"):
        ConvEncoder(3, 4, size=48)


def test_norm_gru_cell_stays_bounded() -> None:
    cell = NormGRUCell(4, 8)
    h = torch.zeros(3, 8)
    for _ in range(20):
        h = cell(torch.randn(3, 4) * 10, h)
    assert h.shape == (3, 8) and h.abs().max() <= 1


def test_frozen_blocks_parameter_grads_but_not_flow() -> None:
    inner, outer = torch.nn.Linear(2, 2), torch.nn.Linear(2, 1)
    x = torch.randn(4, 2)
    with frozen(outer):
        outer(inner(x)).sum().backward()
    assert inner.weight.grad is not None and outer.weight.grad is None
    assert outer.weight.requires_grad


def test_running_norm_merges_batches_exactly() -> None:
    from wmenv.nn import RunningNorm

    norm = RunningNorm(3, eps=0.0)
    a, b = torch.randn(50, 3) * 4 + 2, torch.randn(30, 3) * 0.5 - 1
    norm.update(a)
    norm.update(b.reshape(3, 10, 3))
    both = torch.cat([a, b])
    torch.testing.assert_close(norm.mean, both.mean(0))
    torch.testing.assert_close(norm.var, both.var(0, unbiased=False))
    torch.testing.assert_close(norm.inverse(norm(both)), both)
    frozen_norm = RunningNorm(3, max_count=50)
    frozen_norm.update(a)
    frozen_norm.update(b)
    torch.testing.assert_close(frozen_norm.mean, a.mean(0))
