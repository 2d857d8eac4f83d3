"""A causal GPT-style transformer with a per-sequence key/value cache for batched incremental decoding.

:class:`CausalTransformer` takes input *embeddings* ``(B, T, C)`` (the caller embeds its own
tokens) and adds learned absolute position embeddings. Two ways to run it:

- **full sequence** ``forward(x)``: causal self-attention over positions ``0..T-1`` (training);
- **incremental** ``forward(x, cache=cache)``: ``x`` holds the next ``T`` tokens of every sequence,
  which sit at positions ``cache["length"] + 0..T-1`` (per member: members may be at different
  lengths). Their keys and values are written into the cache (in place) and the members' lengths
  grow by ``T``. Each new token attends to the member's cached tokens and to the new tokens before it.

The cache is a :class:`~tensordict.TensorDict` with batch size ``[B]`` (see :meth:`CausalTransformer.new_cache`)::

    "k", "v"   (B, depth, max_len, heads, head_dim)   keys / values of every layer
    "length"   (B,) int64                              tokens cached per member

Every entry has the same shape for every member, so a cache can live inside a world model's state
and be indexed, masked and assigned like any TensorDict (``state[mask] = new``: a per-member reset
is a fresh cache, or :func:`reset_cache`, which sets the members' lengths to 0; slots at or beyond a
member's length are never attended to and are overwritten by later writes).

Incremental decoding gives the same outputs as the full-sequence forward over the same tokens (up
to float rounding); ``tests/models/iris`` checks it, including members at different lengths and
members reset in the middle of a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tensordict import TensorDict, TensorDictBase
from torch import nn

from wmenv.core.errors import ConfigError

__all__ = ["CausalTransformer", "CausalSelfAttention", "GPTBlock", "reset_cache"]


def reset_cache(cache: TensorDictBase, mask: torch.Tensor | None = None) -> TensorDictBase:
    """Forget the cached tokens of the members in ``mask`` ``(B,)`` (``None``: all), in place."""
    if mask is None:
        cache["length"].zero_()
    else:
        cache["length"].masked_fill_(mask.to(cache["length"].device).bool(), 0)
    return cache


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that can read and extend a key/value cache.

    Args:
        width: token size ``C``.
        heads: number of heads (must divide ``width``).
        dropout: attention and output dropout (training only).
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if heads < 1 or width % heads:
            raise ConfigError(f"transformer: heads={heads} must divide the width {width}")
        self.heads, self.head_dim, self.dropout = heads, width // heads, float(dropout)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        cache: TensorDictBase | None = None,
        layer: int = 0,
        where: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x`` ``(B, T, C)`` -> ``(B, T, C)``.

        Args:
            x: new tokens (after the block's LayerNorm).
            cache: key/value cache (written in place at the new tokens' slots), or ``None`` for a
                full causal pass over ``x`` alone.
            layer: index of this layer in the cache.
            where: ``(rows (B, T), positions (B, T), mask (B, 1, T, S))`` from
                :meth:`CausalTransformer.forward`: the cache slots of the new tokens and which of the
                first ``S`` slots each may attend to.
        """
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, self.head_dim).unbind(2)  # (B, T, h, d) each
        p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(
                q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True, dropout_p=p
            )
        else:
            assert where is not None
            rows, positions, mask = where
            span = mask.shape[-1]
            cache_k, cache_v = cache["k"], cache["v"]
            cache_k[rows, layer, positions] = k.to(cache_k.dtype)
            cache_v[rows, layer, positions] = v.to(cache_v.dtype)
            keys = cache_k[:, layer, :span].to(q.dtype).transpose(1, 2)  # (B, h, S, d)
            values = cache_v[:, layer, :span].to(q.dtype).transpose(1, 2)
            y = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask, dropout_p=p)
        return self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))


class GPTBlock(nn.Module):
    """Pre-LN block: ``x + Attn(LN(x))`` then ``x + MLP(LN(x))`` (GELU, ``mlp_ratio * width`` hidden)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        hidden = max(1, int(round(width * mlp_ratio)))
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width), nn.Dropout(dropout))

    def forward(
        self,
        x: torch.Tensor,
        cache: TensorDictBase | None = None,
        layer: int = 0,
        where: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``(B, T, C)`` -> ``(B, T, C)`` (see :meth:`CausalSelfAttention.forward`)."""
        x = x + self.attn(self.ln1(x), cache, layer, where)
        return x + self.mlp(self.ln2(x))


class CausalTransformer(nn.Module):
    """GPT: learned position embeddings, ``depth`` causal blocks, final LayerNorm.

    Args:
        width: token size ``C``.
        depth: number of blocks.
        heads: attention heads (must divide ``width``).
        max_len: longest sequence (size of the position table and of caches).
        mlp_ratio: MLP hidden width relative to ``width``.
        dropout: embedding, attention and residual dropout (training only).
    """

    def __init__(
        self, width: int, depth: int, heads: int, max_len: int, mlp_ratio: float = 4.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 1 or max_len < 1:
            raise ConfigError(f"transformer: depth and max_len must be >= 1, got {depth} and {max_len}")
        if not 0 <= dropout < 1:
            raise ConfigError(f"transformer: dropout must be in [0, 1), got {dropout!r}")
        self.width, self.depth, self.heads, self.max_len = width, depth, heads, max_len
        self.pos = nn.Embedding(max_len, width)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(GPTBlock(width, heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, 0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(
        self, batch: int, *, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> TensorDict:
        """An empty cache for ``batch`` sequences (zeros, lengths 0)."""
        param = self.pos.weight
        device = param.device if device is None else torch.device(device)
        dtype = param.dtype if dtype is None else dtype
        shape = (batch, self.depth, self.max_len, self.heads, self.width // self.heads)
        return TensorDict(
            {
                "k": torch.zeros(shape, device=device, dtype=dtype),
                "v": torch.zeros(shape, device=device, dtype=dtype),
                "length": torch.zeros(batch, dtype=torch.int64, device=device),
            },
            batch_size=[batch],
            device=device,
        )

    def forward(self, x: torch.Tensor, cache: TensorDictBase | None = None) -> torch.Tensor:
        """Run ``x`` ``(B, T, C)``; with ``cache``, as the next ``T`` tokens of each member.

        Returns:
            ``(B, T, C)`` outputs (after the final LayerNorm).

        Raises:
            ValueError: the sequence (or a member's cache) would exceed ``max_len``.
        """
        b, t, _ = x.shape
        if t == 0:
            return self.norm(x)
        if cache is None:
            if t > self.max_len:
                raise ValueError(f"sequence of {t} tokens exceeds the transformer's max_len {self.max_len}")
            where = None
            x = x + self.pos(torch.arange(t, device=x.device))[None]
        else:
            length = cache["length"]
            if length.shape != (b,):
                raise ValueError(f"cache of batch {tuple(length.shape)} for {b} sequences")
            positions = length[:, None] + torch.arange(t, device=x.device)[None]
            span = int(positions.max()) + 1  # slots any member may attend to
            if span > self.max_len:
                raise ValueError(
                    f"a cached sequence would exceed max_len {self.max_len}; refresh or reset the cache first"
                )
            rows = torch.arange(b, device=x.device)[:, None].expand(b, t)
            slots = torch.arange(span, device=x.device)
            mask = (slots[None, None, :] <= positions[:, :, None]).unsqueeze(1)  # (B, 1, T, S): own past, itself
            where = (rows, positions, mask)
            x = x + self.pos(positions)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i, where)
        if cache is not None:
            cache["length"] = cache["length"] + t
        return self.norm(x)
