"""wmenv.nn blocks IRIS is built on: the vector quantiser, the KV-cached causal transformer, per-member streams."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from wmenv.core.errors import ConfigError
from wmenv.nn.quantize import VectorQuantizer
from wmenv.nn.streams import draw_keys, stream_categorical, stream_uniform
from wmenv.nn.transformer import CausalTransformer, reset_cache


# ---------------------------------------------------------------------------------------- quantiser
def clusters(n: int = 2048, k: int = 16, dim: int = 4, seed: int = 0) -> torch.Tensor:
    """``n`` points around ``k`` well separated centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=g) * 3
    pick = torch.randint(k, (n,), generator=g)
    return centres[pick] + 0.05 * torch.randn(n, dim, generator=g)


def far_codes(vq: VectorQuantizer) -> None:
    """Put every code (and its moving average) at the same point far from the data."""
    with torch.no_grad():
        vq.codebook.data.fill_(50.0)
        if vq.use_ema:
            vq.ema_sum.fill_(50.0)


def test_quantizer_straight_through_and_losses():
    vq = VectorQuantizer(8, 3, ema_decay=0.0, dead_code_threshold=0.0)
    z = torch.randn(5, 7, 3, requires_grad=True)
    out = vq(z, update=False)
    assert out.quantized.shape == z.shape and out.indices.shape == (5, 7) and out.indices.dtype == torch.int64
    assert torch.equal(out.indices, vq.nearest(z.detach()))
    assert torch.allclose(out.quantized, vq.lookup(out.indices), atol=1e-6)  # the forward value is the code
    w = torch.randn_like(z)
    (grad,) = torch.autograd.grad((out.quantized * w).sum(), z, retain_graph=True)
    assert torch.allclose(grad, w)  # straight through: the identity
    # without EMA the codebook is learned from the codebook term; the commitment term reaches only z
    out.loss.backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert out.perplexity.shape == () and 1 <= out.perplexity <= 8 and 0 < out.usage <= 1


def test_quantizer_updates_only_when_asked():
    vq = VectorQuantizer(8, 3)
    before = vq.codebook.clone()
    vq.eval()(torch.randn(64, 3))
    vq.train()(torch.randn(64, 3), update=False)
    assert torch.equal(vq.codebook, before) and not bool(vq.initialised)
    vq.train()(torch.randn(64, 3))
    assert not torch.equal(vq.codebook, before) and bool(vq.initialised)


@pytest.mark.parametrize("ema_decay", [0.99, 0.0])
def test_codebook_stays_healthy_with_restarts(ema_decay):
    torch.manual_seed(0)
    data = clusters()
    vq = VectorQuantizer(32, 4, ema_decay=ema_decay, dead_code_threshold=0.5, init_from_data=False)
    far_codes(vq)  # every code far from the data: the classic collapse
    opt = torch.optim.Adam(vq.parameters(), lr=0.05) if ema_decay == 0 else None
    for _ in range(150):
        out = vq(data[torch.randint(len(data), (256,))])
        if opt is not None:
            opt.zero_grad()
            out.loss.backward()
            opt.step()
    out = vq(data, update=False)
    assert int(vq.restarts) > 0
    assert out.perplexity > 12  # the 16 clusters are covered by distinct codes
    # every point sits close to its code
    assert (vq.lookup(out.indices) - data).pow(2).sum(-1).sqrt().mean() < 1.0


def test_codebook_collapses_without_restarts():
    torch.manual_seed(0)
    data = clusters()
    vq = VectorQuantizer(32, 4, dead_code_threshold=0.0, init_from_data=False)
    far_codes(vq)
    for _ in range(50):
        vq(data[torch.randint(len(data), (256,))])
    out = vq(data, update=False)
    assert out.perplexity < 1.5 and int(vq.restarts) == 0  # what the restarts prevent


def test_quantizer_rejects_bad_arguments():
    for kwargs in ({"num_codes": 1, "dim": 2}, {"num_codes": 4, "dim": 0}, {"num_codes": 4, "dim": 2, "ema_decay": 1.0}):
        with pytest.raises(ConfigError):
            VectorQuantizer(**kwargs)
    with pytest.raises(ValueError, match="size 3"):
        VectorQuantizer(4, 3)(torch.randn(2, 5))


# ---------------------------------------------------------------------------------------- transformer
def transformer(**kw) -> CausalTransformer:
    torch.manual_seed(1)
    return CausalTransformer(**{"width": 32, "depth": 2, "heads": 4, "max_len": 24, **kw}).eval()


@pytest.mark.parametrize("chunks", [[1] * 16, [5, 1, 3, 7], [16]])
def test_cached_decoding_equals_full_sequence(chunks):
    tr = transformer()
    x = torch.randn(3, 16, 32)
    full = tr(x)
    cache = tr.new_cache(3)
    outs, start = [], 0
    for c in chunks:
        outs.append(tr(x[:, start : start + c], cache))
        start += c
    assert torch.equal(cache["length"], torch.full((3,), 16))
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_members_at_different_lengths_and_per_member_reset():
    tr = transformer()
    a, b = torch.randn(1, 10, 32), torch.randn(1, 10, 32)
    cache = tr.new_cache(2)
    tr(torch.cat([a[:, :4], b[:, :4]]), cache)  # both members 4 tokens in
    reset_cache(cache, torch.tensor([False, True]))  # member 1 starts over
    assert cache["length"].tolist() == [4, 0]
    # member 0 continues a; member 1 now decodes b from scratch: one batched call per token
    out0, out1 = [], []
    for i in range(6):
        y = tr(torch.cat([a[:, 4 + i : 5 + i], b[:, i : i + 1]]), cache)
        out0.append(y[:1])
        out1.append(y[1:])
    assert cache["length"].tolist() == [10, 6]
    torch.testing.assert_close(torch.cat(out0, 1), tr(a)[:, 4:], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat(out1, 1), tr(b[:, :6]), atol=1e-5, rtol=1e-5)


def test_cache_lives_in_a_tensordict_state():
    """The core resets members with ``state[mask] = new``: a fresh cache for those members."""
    tr = transformer()
    x = torch.randn(3, 6, 32)
    state = TensorDict({"cache": tr.new_cache(3)}, batch_size=[3])
    tr(x[:, :4], state["cache"])
    fresh = TensorDict({"cache": tr.new_cache(1)}, batch_size=[1])
    mask = torch.tensor([False, True, False])
    state[mask] = fresh
    assert state["cache", "length"].tolist() == [4, 0, 4]
    y = tr(x[:, 4:6], state["cache"])
    full = tr(x)
    torch.testing.assert_close(y[0], full[0, 4:6], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y[1], tr(x[1:2, 4:6])[0], atol=1e-5, rtol=1e-5)  # member 1 began anew


def test_cache_overflow_and_bad_sizes_raise():
    tr = transformer(max_len=8)
    cache = tr.new_cache(2)
    tr(torch.randn(2, 7, 32), cache)
    with pytest.raises(ValueError, match="max_len"):
        tr(torch.randn(2, 2, 32), cache)
    with pytest.raises(ValueError, match="max_len"):
        tr(torch.randn(2, 9, 32))
    with pytest.raises(ConfigError):
        CausalTransformer(30, 1, 4, 8)
    assert tr(torch.randn(2, 0, 32), cache).shape == (2, 0, 32)  # nothing to add


def test_training_mode_gradients_through_full_forward():
    tr = transformer(dropout=0.1).train()
    x = torch.randn(2, 12, 32, requires_grad=True)
    tr(x).pow(2).mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in tr.parameters())


# ---------------------------------------------------------------------------------------- streams
def test_streams_do_not_depend_on_the_batch():
    keys = draw_keys(6, torch.Generator().manual_seed(3))
    counter = torch.tensor([0, 1, 2, 3, 4, 5])
    u = stream_uniform(keys, counter, 2, 50)
    for i in range(6):
        assert torch.equal(stream_uniform(keys[i : i + 1], counter[i : i + 1], 2, 50), u[i : i + 1])
    assert not torch.equal(stream_uniform(keys, counter, 3, 50), u)  # another slot, other draws
    assert not torch.equal(stream_uniform(keys, counter + 1, 2, 50), u)  # another step, other draws
    assert bool((u > 0).all() and (u < 1).all())


def test_stream_categorical_matches_the_distribution():
    n = 20000
    keys = draw_keys(n, torch.Generator().manual_seed(0))
    probs = torch.tensor([0.1, 0.2, 0.7])
    draws = stream_categorical(probs.log().expand(n, 3), keys, torch.zeros(n, dtype=torch.int64), 0)
    freq = torch.bincount(draws, minlength=3).float() / n
    assert torch.allclose(freq, probs, atol=0.015)
    assert torch.equal(stream_categorical(probs.log().expand(4, 3), keys[:4], torch.zeros(4, dtype=torch.int64), 0,
                                          temperature=0.0), torch.full((4,), 2))
