"""wmenv.nn.unet / wmenv.nn.dit: frame denoisers on 10x10x4 (MinAtar) and 64x64x3 (Atari) frames."""

from __future__ import annotations

import pytest
import torch

from wmenv.core.errors import ConfigError
from wmenv.nn.dit import FrameDenoiserDiT, sincos_2d
from wmenv.nn.unet import FrameDenoiserUNet, UNet, group_count, pad_to_multiple

L, A = 3, 5


def make(kind: str, c: int, h: int, w: int, levels: int = 3):
    if kind == "unet":
        return FrameDenoiserUNet(c, L, A, channels=(8,) * levels, depths=(1,) * levels, cond_dim=16)
    return FrameDenoiserDiT(c, L, A, (h, w), patch=4, dim=16, depth=2, heads=2, cond_dim=16)


def randomise_outputs(net: torch.nn.Module) -> None:
    """Zero-initialised output layers make every fresh denoiser output 0; perturb every parameter."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def inputs(c: int, h: int, w: int, b: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, c, h, w, generator=g), torch.randn(b, generator=g),
            torch.randn(b, L * c, h, w, generator=g), torch.randn(b, L * A, generator=g))


@pytest.mark.parametrize("kind", ["unet", "dit"])
@pytest.mark.parametrize(("c", "h", "w"), [(4, 10, 10), (3, 64, 64), (2, 7, 9)])
def test_output_shape_and_zero_init(kind, c, h, w):
    net = make(kind, c, h, w)
    with torch.no_grad():
        out = net(*inputs(c, h, w))
    assert out.shape == (2, c, h, w)
    assert float(out.abs().max()) == 0.0  # zero-initialised output layer: a fresh denoiser predicts 0


@pytest.mark.parametrize("kind", ["unet", "dit"])
def test_output_depends_on_every_input_and_gradients_reach_every_parameter(kind):
    c, h, w = 4, 10, 10
    net = make(kind, c, h, w)
    randomise_outputs(net)
    noisy, c_noise, context, actions = inputs(c, h, w)
    base = net(noisy, c_noise, context, actions)
    for i, changed in enumerate((noisy + 1, c_noise + 1, context + 1, actions + 1)):
        args = [noisy, c_noise, context, actions]
        args[i] = changed
        assert not torch.allclose(net(*args), base), f"input {i} has no effect"
    base.pow(2).mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("kind", ["unet", "dit"])
def test_batch_members_do_not_interact(kind):
    c, h, w = 4, 10, 10
    net = make(kind, c, h, w).eval()
    randomise_outputs(net)
    a = inputs(c, h, w, b=3, seed=1)
    b = [x.clone() for x in a]
    for x in b:
        x[2] = x[2] + 1.0  # change member 2 only
    torch.testing.assert_close(net(*a)[:2], net(*b)[:2])
    single = net(*(x[:1] for x in a))
    torch.testing.assert_close(single[0], net(*a)[0], rtol=1e-4, atol=1e-5)


def test_unet_pads_to_its_downsampling_and_crops_back():
    unet = UNet((8, 8, 8), (1, 1, 1), 16)
    assert unet.multiple == 4
    x = torch.randn(1, 8, 10, 10)
    assert pad_to_multiple(x, 4).shape[-2:] == (12, 12)
    assert unet(x, torch.randn(1, 16)).shape == x.shape
    with pytest.raises(ConfigError):
        UNet((8, 8), (1,), 16)


def test_group_count_divides_channels():
    for ch in (1, 8, 32, 48, 64, 100, 256):
        g = group_count(ch)
        assert ch % g == 0 and 1 <= g <= max(1, ch // 32)


def test_dit_validation_and_position_embeddings():
    assert sincos_2d(3, 3, 8).shape == (9, 8)
    with pytest.raises(ConfigError):
        FrameDenoiserDiT(4, L, A, (10, 10), patch=2, dim=18, depth=1, heads=4)  # heads must divide dim
    net = FrameDenoiserDiT(4, L, A, (10, 10), patch=4, dim=16, depth=1, heads=2)
    assert net.grid == (3, 3)  # 10 -> padded to 12 -> 3 patches per side
    with pytest.raises(ConfigError):
        net(*inputs(4, 12, 12))
