"""Per-member random streams: counter-based draws that do not depend on the batch around a member.

A batched world model usually draws its noise for all ``N`` members in one call on one
``torch.Generator``; member ``i`` then gets a slice of the stream that depends on ``N`` and on its
position in the batch. Here every member carries its own integer **key** (drawn once, at the start
of its episode, from the env's generator) and a **counter** (its step in the episode). A draw is a
hash of ``(key, counter, slot, index)``, so

- the same key, context and actions give the same imagined trajectory whether the member is
  imagined alone, in a batch of 256, next to other members or after partial resets of its
  neighbours (``tests/models/iris`` checks it);
- the env stays reproducible: ``reset(seed=...)`` reseeds the generator the keys come from.

The hash works on 32-bit values held in int64 tensors (only constants below ``2**27`` are
multiplied, so nothing overflows) on any device. Uniforms have 24 random bits, exactly
representable in float32 and strictly inside ``(0, 1)``.
"""

from __future__ import annotations

import torch

__all__ = ["draw_keys", "stream_uniform", "stream_gumbel", "stream_categorical", "KEY_RANGE"]

#: keys are drawn uniformly from ``[0, KEY_RANGE)``
KEY_RANGE = 2**31 - 1
_M32 = 0xFFFFFFFF
_MUL = 0x45D9F3B  # < 2**27: products of 32-bit values stay below 2**59


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (bijective on ``[0, 2**32)``) of int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = (x * _MUL) & _M32
    x = x ^ (x >> 16)
    x = (x * _MUL) & _M32
    return x ^ (x >> 16)


def draw_keys(n: int, generator: torch.Generator | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """``n`` fresh int64 keys in ``[0, KEY_RANGE)`` from ``generator`` (``None``: torch's global RNG)."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    keys = torch.randint(0, KEY_RANGE, (n,), generator=generator, device=gen_device, dtype=torch.int64)
    return keys if device is None else keys.to(device)


def stream_uniform(key: torch.Tensor, counter: torch.Tensor, slot: int, size: int) -> torch.Tensor:
    """Uniforms ``(N, size)`` in ``(0, 1)`` for members with ``key`` and ``counter`` ``(N,)`` int64.

    ``slot`` separates the draws a member makes at the same counter (token 0, token 1, reward, ...).
    """
    h = _mix(key & _M32)
    h = _mix(h ^ (counter & _M32))
    h = _mix(h ^ ((counter >> 32) & _M32) ^ ((int(slot) * 0x9E3779B) & _M32))
    idx = torch.arange(size, device=key.device, dtype=torch.int64)
    h = _mix(h[:, None] ^ _mix(idx + 0x632BE5A)[None, :])
    return ((h >> 8).to(torch.float32) + 0.5) / float(2**24)


def stream_gumbel(key: torch.Tensor, counter: torch.Tensor, slot: int, size: int) -> torch.Tensor:
    """Standard Gumbel noise ``(N, size)`` from :func:`stream_uniform`."""
    return -torch.log(-torch.log(stream_uniform(key, counter, slot, size)))


def stream_categorical(
    logits: torch.Tensor, key: torch.Tensor, counter: torch.Tensor, slot: int, temperature: float = 1.0
) -> torch.Tensor:
    """Sample ``(N,)`` indices from categorical ``logits`` ``(N, K)`` by Gumbel-max on the members' streams.

    ``temperature`` scales the logits (``0``: argmax, no noise).
    """
    if temperature <= 0:
        return logits.argmax(-1)
    noise = stream_gumbel(key, counter, slot, logits.shape[-1]).to(logits.dtype)
    return (logits.float() / temperature + noise.float()).argmax(-1)
