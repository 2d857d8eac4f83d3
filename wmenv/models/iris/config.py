"""Configuration of the IRIS family (Micheli, Alonso & Fleuret 2023, "Transformers are Sample-Efficient
World Models"): a discrete autoencoder (tokenizer), a GPT world model over tokens, and an
actor-critic trained in imagination.

Presets:

- ``tiny()``: tests and CPU smoke runs (seconds).
- ``minatar()``: MinAtar's ``10x10xC`` binary frames (``MinAtar/Breakout-v1``): 16 tokens per frame
  from a 128-code book, a 3-layer transformer over 10 steps, a 100k-env-step schedule. Hours on a CPU,
  well under one on a GPU.
- ``atari100k()``: the paper's sizes for ``64x64x3`` Atari frames: 16 tokens per frame, 512 codes,
  embedding 256, 10 layers, 20-step context, 600 epochs of 200 collected steps (100k env steps
  before epoch 500). **GPU-sized** (the paper reports about 7 days per game on an A100 for the
  whole budget, about 3.5 of them with a smaller evaluation schedule); do not run it on a CPU.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.core.errors import ConfigError

__all__ = ["TokenizerConfig", "WorldModelConfig", "ActorCriticConfig", "ScheduleConfig", "IRISConfig"]


def _check(cond: bool, what: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"IRISConfig {what}: expected {expected}, got {value!r}")


def _ints(obj: Any, prefix: str, names: tuple[str, ...], low: int = 1) -> None:
    for name in names:
        v = getattr(obj, name)
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= low, f"{prefix}.{name}", v, f"an int >= {low}")


def _positive(obj: Any, prefix: str, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(obj, name)
        _check(isinstance(v, int | float) and not isinstance(v, bool) and v > 0, f"{prefix}.{name}", v, "a number > 0")


def _clip(obj: Any, prefix: str) -> None:
    v = obj.grad_clip
    _check(v is None or (isinstance(v, int | float) and v > 0), f"{prefix}.grad_clip", v, "a number > 0 or None")


@dataclass(frozen=True)
class TokenizerConfig:
    """The discrete autoencoder: conv encoder -> vector quantiser -> conv decoder.

    A frame ``H x W x C`` is zero-padded to ``S x S`` with ``S = g * 2**d >= max(H, W)``, where
    ``g * g = tokens_per_frame`` and ``d`` stride-2 stages bring ``S`` down to the ``g x g`` token
    grid; the decoder mirrors it and crops back to ``H x W``.
    """

    tokens_per_frame: int = 16
    """Tokens per frame ``K``; a perfect square ``g * g`` (the token grid is ``g x g``)."""
    vocab_size: int = 512
    """Codebook size (token vocabulary of the world model)."""
    code_dim: int = 512
    """Size of a code vector (the paper: 512)."""
    channels: int = 64
    """Channels of the first conv stage (doubling per stride-2 stage up to ``max_channels``)."""
    max_channels: int = 128
    """Upper bound of the conv channels."""
    res_blocks: int = 2
    """Residual blocks after each stage of the encoder and before each stage of the decoder."""
    recon_loss: Literal["auto", "bce", "l1", "l2"] = "auto"
    """Reconstruction loss. ``auto``: BCE for binary frames (space high 1, e.g. MinAtar: every cell
    is an on/off event, and BCE keeps the gradient of rare "on" cells), L1 for 0..255 frames (as the
    paper, which adds a perceptual loss we leave out: it needs pretrained VGG weights)."""
    commitment: float = 0.25
    """Weight of the commitment loss (VQ-VAE's beta)."""
    ema_decay: float = 0.99
    """Codebook moving-average decay (0: codebook learned by gradient with a codebook loss, as the paper)."""
    dead_code_threshold: float = 0.03
    """Codes used less than this (moving average of assignments per update) are restarted on data."""
    lr: float = 1e-4
    """Adam learning rate of the tokenizer."""
    grad_clip: float | None = 10.0
    """Global grad-norm clip of the tokenizer (None: none)."""

    @property
    def grid(self) -> int:
        """Side ``g`` of the token grid."""
        return math.isqrt(self.tokens_per_frame)

    def __post_init__(self) -> None:
        _ints(self, "tokenizer", ("tokens_per_frame", "code_dim", "channels", "max_channels"))
        _ints(self, "tokenizer", ("vocab_size",), low=2)
        _ints(self, "tokenizer", ("res_blocks",), low=0)
        _check(math.isqrt(self.tokens_per_frame) ** 2 == self.tokens_per_frame, "tokenizer.tokens_per_frame",
               self.tokens_per_frame, "a perfect square (1, 4, 9, 16, 25, ...): the tokens form a g x g grid")
        _check(self.max_channels >= self.channels, "tokenizer.max_channels", self.max_channels, ">= tokenizer.channels")
        _check(self.recon_loss in ("auto", "bce", "l1", "l2"), "tokenizer.recon_loss", self.recon_loss,
               "'auto', 'bce', 'l1' or 'l2'")
        _check(self.commitment >= 0, "tokenizer.commitment", self.commitment, "a number >= 0")
        _check(0 <= self.ema_decay < 1, "tokenizer.ema_decay", self.ema_decay, "a number in [0, 1)")
        _check(self.dead_code_threshold >= 0, "tokenizer.dead_code_threshold", self.dead_code_threshold, ">= 0")
        _positive(self, "tokenizer", ("lr",))
        _clip(self, "tokenizer")


@dataclass(frozen=True)
class WorldModelConfig:
    """The GPT over ``[obs tokens, action token]`` per step, with next-token, reward and termination heads."""

    embed: int = 256
    """Token embedding width."""
    layers: int = 10
    """Transformer blocks."""
    heads: int = 4
    """Attention heads (must divide ``embed``)."""
    context_steps: int = 20
    """Steps ``L`` the transformer sees (``L * (K + 1)`` tokens); also the training sequence length."""
    burn_in: int = 1
    """Real steps burned in at the start of an imagined episode (the adapter's ``context_length``), and
    the steps kept when a full context is refreshed. The paper starts from one real frame."""
    mlp_ratio: float = 4.0
    """MLP hidden width relative to ``embed``."""
    dropout: float = 0.1
    """Embedding, attention and residual dropout."""
    reward_head: Literal["sign", "twohot"] = "sign"
    """``sign``: 3-way classification of the reward's sign (the paper; imagined rewards are -1, 0, 1);
    ``twohot``: symlog two-hot regression of the raw reward."""
    reward_bins: int = 255
    """Bins of the two-hot reward head."""
    lr: float = 1e-4
    """Adam learning rate of the world model."""
    weight_decay: float = 0.01
    """AdamW weight decay of the world model."""
    grad_clip: float | None = 10.0
    """Global grad-norm clip of the world model (None: none)."""

    def __post_init__(self) -> None:
        _ints(self, "world_model", ("embed", "layers", "heads", "burn_in"))
        _ints(self, "world_model", ("context_steps",), low=2)
        _ints(self, "world_model", ("reward_bins",), low=2)
        _check(self.embed % self.heads == 0, "world_model.heads", self.heads, f"a divisor of embed={self.embed}")
        _check(self.burn_in <= self.context_steps, "world_model.burn_in", self.burn_in,
               f"<= context_steps={self.context_steps}")
        _check(0 <= self.dropout < 1, "world_model.dropout", self.dropout, "a number in [0, 1)")
        _check(self.reward_head in ("sign", "twohot"), "world_model.reward_head", self.reward_head, "'sign' or 'twohot'")
        _check(self.weight_decay >= 0, "world_model.weight_decay", self.weight_decay, "a number >= 0")
        _positive(self, "world_model", ("lr", "mlp_ratio"))
        _clip(self, "world_model")


@dataclass(frozen=True)
class ActorCriticConfig:
    """The policy and value function: a small CNN on (reconstructed) frames, an LSTM, two heads."""

    channels: tuple[int, ...] = (32, 32, 64, 64)
    """Channels of the conv stages (3x3 conv + 2x2 max-pool each, stopping once the map is 4x4 or smaller)."""
    lstm: int = 512
    """LSTM hidden size."""
    horizon: int = 20
    """Imagined steps per actor-critic update."""
    burn_in: int = 20
    """Real (reconstructed) frames the LSTM reads before imagination starts."""
    gamma: float = 0.995
    """Discount."""
    lam: float = 0.95
    """Lambda of the lambda-returns."""
    entropy: float = 0.001
    """Entropy bonus weight."""
    on_reconstructions: bool = True
    """Act on the tokenizer's reconstruction of real frames too (the paper), so the policy sees the same
    kind of frames in the real env and in imagination."""
    lr: float = 1e-4
    """Adam learning rate of the actor-critic."""
    grad_clip: float | None = 10.0
    """Global grad-norm clip of the actor-critic (None: none)."""

    def __post_init__(self) -> None:
        _check(isinstance(self.channels, tuple) and len(self.channels) >= 1
               and all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in self.channels),
               "actor_critic.channels", self.channels, "a non-empty tuple of ints >= 1")
        _ints(self, "actor_critic", ("lstm", "horizon"))
        _ints(self, "actor_critic", ("burn_in",), low=0)
        _check(0 < self.gamma <= 1, "actor_critic.gamma", self.gamma, "a number in (0, 1]")
        _check(0 <= self.lam <= 1, "actor_critic.lam", self.lam, "a number in [0, 1]")
        _check(self.entropy >= 0, "actor_critic.entropy", self.entropy, "a number >= 0")
        _positive(self, "actor_critic", ("lr",))
        _clip(self, "actor_critic")


@dataclass(frozen=True)
class ScheduleConfig:
    """The staged loop of ``run_stages``: per epoch collect, then train tokenizer, world model, actor-critic."""

    epochs: int = 600
    """Epochs of ``collect -> tokenizer -> world_model -> actor_critic``."""
    seed_steps: int = 0
    """Random real steps before epoch 0 (the paper: none, its untrained policy is near-uniform)."""
    collect_steps: int = 200
    """Real steps collected per epoch with the current (sampling) policy."""
    collect_epochs: int = 500
    """Collect only in the first this many epochs (the env-step budget)."""
    tokenizer_steps: int = 200
    """Tokenizer updates per epoch."""
    world_model_steps: int = 200
    """World-model updates per epoch."""
    actor_critic_steps: int = 200
    """Actor-critic updates per epoch."""
    tokenizer_start: int = 5
    """First epoch that trains the tokenizer."""
    world_model_start: int = 25
    """First epoch that trains the world model."""
    actor_critic_start: int = 50
    """First epoch that trains the actor-critic."""
    tokenizer_batch: int = 256
    """Frames per tokenizer update."""
    world_model_batch: int = 64
    """Sequences (of ``world_model.context_steps`` steps) per world-model update."""
    actor_critic_batch: int = 64
    """Imagined trajectories per actor-critic update."""
    num_envs: int = 1
    """Real sub-envs collecting together."""
    log_every: int = 50
    """Log averaged metrics every this many updates."""
    checkpoint_every: int = 500
    """Checkpoint every this many updates within a stage (and after every stage)."""

    def __post_init__(self) -> None:
        _ints(self, "schedule", ("epochs", "tokenizer_batch", "world_model_batch", "actor_critic_batch", "num_envs",
                                 "log_every"))
        _ints(self, "schedule", ("seed_steps", "collect_steps", "collect_epochs", "tokenizer_steps",
                                 "world_model_steps", "actor_critic_steps", "tokenizer_start", "world_model_start",
                                 "actor_critic_start", "checkpoint_every"), low=0)
        _check(self.seed_steps + self.collect_steps * min(self.collect_epochs, self.epochs) > 0, "schedule.seed_steps",
               self.seed_steps, "some real steps (seed_steps or collect_steps in collect_epochs)")
        _check(self.tokenizer_start <= self.world_model_start <= self.actor_critic_start, "schedule.world_model_start",
               (self.tokenizer_start, self.world_model_start, self.actor_critic_start),
               "tokenizer_start <= world_model_start <= actor_critic_start (each stage needs the one before)")


@dataclass(frozen=True)
class IRISConfig:
    """Sizes of the three IRIS components and the staged schedule."""

    EXTRA_PRESETS = ("minatar", "atari100k")

    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    """The discrete autoencoder."""
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    """The transformer world model."""
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    """The policy trained in imagination."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """The staged training loop."""

    def __post_init__(self) -> None:
        for name, cls in (("tokenizer", TokenizerConfig), ("world_model", WorldModelConfig),
                          ("actor_critic", ActorCriticConfig), ("schedule", ScheduleConfig)):
            _check(isinstance(getattr(self, name), cls), name, getattr(self, name), f"a {cls.__name__}")

    @property
    def tokens_per_step(self) -> int:
        """``K + 1``: obs tokens and the action token of one step."""
        return self.tokenizer.tokens_per_frame + 1

    @property
    def max_tokens(self) -> int:
        """Transformer context in tokens: ``context_steps * (K + 1)``."""
        return self.world_model.context_steps * self.tokens_per_step

    @property
    def actor_critic_context(self) -> int:
        """Real steps an actor-critic update reads: the LSTM burn-in plus the start frame, and at least
        the world model's burn-in."""
        return max(self.world_model.burn_in, self.actor_critic.burn_in + 1)

    def replace(self, **changes: Any) -> IRISConfig:
        """A copy with fields replaced (validated)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls) -> IRISConfig:
        """Tests and CPU smoke runs (seconds): 4 tokens from 16 codes, a 1-layer transformer over 4 steps."""
        return cls(
            tokenizer=TokenizerConfig(tokens_per_frame=4, vocab_size=16, code_dim=8, channels=8, max_channels=16,
                                      res_blocks=0, lr=3e-3, dead_code_threshold=0.01),
            world_model=WorldModelConfig(embed=32, layers=1, heads=2, context_steps=4, burn_in=2, mlp_ratio=2.0,
                                         dropout=0.0, lr=1e-3, weight_decay=0.0),
            actor_critic=ActorCriticConfig(channels=(8, 8), lstm=32, horizon=5, burn_in=2, gamma=0.99, entropy=0.01,
                                           lr=1e-3),
            schedule=ScheduleConfig(epochs=2, seed_steps=150, collect_steps=50, collect_epochs=2, tokenizer_steps=8,
                                    world_model_steps=8, actor_critic_steps=4, tokenizer_start=0, world_model_start=0,
                                    actor_critic_start=0, tokenizer_batch=32, world_model_batch=4,
                                    actor_critic_batch=4, log_every=4, checkpoint_every=0),
        )

    @classmethod
    def minatar(cls) -> IRISConfig:
        """MinAtar ``10x10xC`` binary frames, 100k env steps (``MinAtar/Breakout-v1``)."""
        return cls(
            tokenizer=TokenizerConfig(tokens_per_frame=16, vocab_size=128, code_dim=64, channels=32, max_channels=64,
                                      res_blocks=1, lr=3e-4),
            world_model=WorldModelConfig(embed=128, layers=3, heads=4, context_steps=10, burn_in=4, dropout=0.1,
                                         lr=3e-4),
            actor_critic=ActorCriticConfig(channels=(32, 64), lstm=256, horizon=15, burn_in=8, gamma=0.99,
                                           entropy=0.003, lr=3e-4),
            schedule=ScheduleConfig(epochs=100, seed_steps=5000, collect_steps=1000, collect_epochs=95,
                                    tokenizer_steps=100, world_model_steps=200, actor_critic_steps=100,
                                    tokenizer_start=0, world_model_start=2, actor_critic_start=5,
                                    tokenizer_batch=256, world_model_batch=32, actor_critic_batch=64),
        )

    @classmethod
    def atari100k(cls) -> IRISConfig:
        """The paper's Atari 100k sizes (64x64x3 frames). GPU-sized: see the module docstring."""
        return cls()

    @classmethod
    def paper(cls) -> IRISConfig:
        """Same as :meth:`atari100k`."""
        return cls.atari100k()
