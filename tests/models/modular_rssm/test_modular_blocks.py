"""The shared blocks the Modular RSSM adds to wmenv/nn: attention, ViT, backbones, BackboneRSSM, codecs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from tensordict import TensorDict

from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.nn.attention import Transformer, ViTEncoder, check_heads
from wmenv.nn.backbone_rssm import BackboneRSSM
from wmenv.nn.backbones import TransformerBackbone, make_backbone
from wmenv.nn.codecs import ActionCodec, ObservationCodec


def test_heads_must_divide_the_width() -> None:
    check_heads(12, 3)
    with pytest.raises(ConfigError, match=r"heads=5 must divide the width 12 .* use heads in \[1, 2, 3, 4, 6, 12\]"):
        check_heads(12, 5)
    with pytest.raises(ConfigError, match=r"vit: patch=12 must divide the image size 64"):
        ViTEncoder(patch=12)


def test_causal_transformer_never_looks_ahead() -> None:
    net = Transformer(8, depth=2, heads=2)
    x = torch.randn(2, 5, 8)
    mask = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    y = x.clone()
    y[:, 3:] = torch.randn(2, 2, 8)  # change the future only
    torch.testing.assert_close(net(x, mask)[:, :3], net(y, mask)[:, :3])
    assert not torch.allclose(net(x)[:, :3], net(y)[:, :3])  # without the mask it does


def test_vit_encodes_leading_dims_and_flattens_patch_tokens() -> None:
    vit = ViTEncoder(3, 64, patch=16, width=8, depth=1, heads=2)
    out = vit(torch.rand(2, 3, 3, 64, 64) - 0.5)
    assert out.shape == (2, 3, 16 * 8) and vit.out_dim == 128


def test_transformer_backbone_window_slides_and_ignores_empty_slots() -> None:
    bb = TransformerBackbone(4, 8, depth=1, heads=2, window=3)
    xs = torch.randn(6, 2, 4)
    carry = bb.initial(2, "cpu")
    garbage = carry.clone()
    garbage["tokens"] = torch.randn(2, 3, 8)  # never valid: must not matter
    h1, _ = bb(xs[0], carry)
    h2, _ = bb(xs[0], garbage)
    torch.testing.assert_close(h1, h2)
    # after 3 more steps the first input has left the window of 3
    outs = []
    for first in (xs[0], torch.randn(2, 4)):
        c = bb.initial(2, "cpu")
        for x in (first, *xs[1:4]):
            h, c = bb(x, c)
        outs.append(h)
        assert bool(c["valid"].all())
    torch.testing.assert_close(outs[0], outs[1])


@pytest.mark.parametrize("kind", ["gru", "lstm", "transformer"])
def test_backbones_share_one_interface(kind: str) -> None:
    bb = make_backbone(kind, 6, 8, heads=2, window=4)
    carry = bb.initial(3, "cpu")
    h, carry2 = bb(torch.randn(3, 6), carry)
    assert h.shape == (3, 8) and bb.out_dim == 8
    assert set(carry2.keys()) == set(carry.keys()) and carry2.batch_size == torch.Size([3])
    with pytest.raises(ConfigError, match="unknown backbone 'rnn'"):
        make_backbone("rnn", 6, 8)


@pytest.mark.parametrize(("kind", "classes"), [("gru", 4), ("lstm", 0), ("transformer", 4)])
def test_observe_resets_at_episode_starts(kind: str, classes: int) -> None:
    rssm = BackboneRSSM(make_backbone(kind, 16, 8, heads=2, window=4), 2, 5, stoch=3, classes=classes, hidden=16)
    embed, action = torch.randn(2, 6, 5), torch.randn(2, 6, 2)
    is_first = torch.zeros(2, 6, dtype=torch.bool)
    is_first[:, 0] = is_first[:, 3] = True
    post, prior, last = rssm.observe(embed, action, is_first, sample=False)
    fresh, _, fresh_last = rssm.observe(embed[:, 3:], action[:, 3:], is_first[:, 3:], sample=False)
    torch.testing.assert_close(post["deter"][:, 3:], fresh["deter"])
    torch.testing.assert_close(last["deter"], fresh_last["deter"])
    assert set(last.keys()) == {"deter", "stoch", "carry"} and post.batch_size == torch.Size([2, 6])
    assert rssm.kl(post, prior).shape == (2, 6) and bool((rssm.kl(post, prior) >= -1e-5).all())
    nxt = rssm.img_step(last, action[:, 0], sample=True, generator=torch.Generator().manual_seed(0))
    assert rssm.features(nxt).shape == (2, rssm.feature_dim)


def test_codecs_roundtrip_and_refuse_other_spaces() -> None:
    vec = ObservationCodec(gym.spaces.Box(np.array([-1, -8], np.float32), np.array([1, 8], np.float32)))
    x = torch.tensor([[0.5, -4.0]])
    torch.testing.assert_close(vec.encode(x), torch.tensor([[0.5, -0.5]]))
    torch.testing.assert_close(vec.decode(vec.encode(x)), x)
    img = ObservationCodec(gym.spaces.Box(0, 255, (64, 64, 3), np.uint8))
    pixels = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    assert img.encode(pixels).shape == (2, 3, 64, 64) and torch.equal(img.decode(img.encode(pixels)), pixels)
    act = ActionCodec(gym.spaces.Box(-2.0, 2.0, (1,), np.float32))
    torch.testing.assert_close(act.encode(torch.tensor([[1.0]])), torch.tensor([[0.5]]))
    torch.testing.assert_close(act.decode(torch.tensor([[0.5]])), torch.tensor([[1.0]]))
    assert ActionCodec(gym.spaces.Discrete(3)).encode(torch.tensor([2])).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(UnsupportedSpaceError, match=r"cannot model observation space Dict.*FlattenObservation"):
        ObservationCodec(gym.spaces.Dict({"a": gym.spaces.Discrete(2)}))
    with pytest.raises(UnsupportedSpaceError, match=r"cannot act in action space MultiBinary"):
        ActionCodec(gym.spaces.MultiBinary(3))


def test_state_batches_reset_member_by_member() -> None:
    """What the imagination core does on partial resets: masked assignment into a state with carry."""
    rssm = BackboneRSSM(make_backbone("transformer", 16, 8, heads=2, window=4), 2, 5, stoch=3, classes=0, hidden=16)
    state = rssm.img_step(rssm.initial(3), torch.randn(3, 2)).select("deter", "stoch", "carry")
    fresh = rssm.initial(1)
    mask = torch.tensor([False, True, False])
    new = state.clone()
    new[mask] = fresh
    assert not bool(new["carry", "valid"][1].any()) and bool(new["carry", "valid"][0, -1])
    assert isinstance(new, TensorDict)
