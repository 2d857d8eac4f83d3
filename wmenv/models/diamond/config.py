"""Configuration of the diffusion world-model family (``diamond``, ``ddpm``, ``dit``).

One frozen dataclass, :class:`DiamondConfig`, with swappable parts: the training objective
(``objective="edm"`` as DIAMOND, or ``"ddpm"``), the denoiser network (``denoiser="unet"`` as
DIAMOND, or ``"dit"``), the number of denoising steps of imagination (``sampling_steps``) and the
frames of context ``L`` (``context_frames``). The three registered models are this config with
``objective``/``denoiser`` overridden.

Presets (``wmenv train diamond --preset NAME``):

- ``tiny``: tests and CPU smoke runs (a few thousand parameters per part, a few hundred env steps).
- ``minatar``: 10x10xC MinAtar frames, sizes between tiny and the paper's; the 100k-step schedule.
  A GPU run (about a day per game on one recent GPU at DIAMOND's 1000 epochs; CPU is far too slow).
- ``atari100k``: the sizes and schedule of the DIAMOND paper (Alonso et al. 2024) for 64x64x3
  Atari frames: U-Net channels 64 x 4 levels, 2 blocks each, conditioning 256, ``L = 4``, 3 Euler
  steps, reward/termination CNN+LSTM 512, actor-critic CNN+LSTM 512, horizon 15, gamma 0.985,
  lambda 0.95, 1000 epochs of 100 env steps. GPU-sized (the paper reports about 3 days per game on
  one RTX 4090).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from wmenv.core.errors import ConfigError

__all__ = [
    "UNetConfig",
    "DiTConfig",
    "EDMConfig",
    "DDPMConfig",
    "RewardEndConfig",
    "ActorCriticConfig",
    "OptimConfig",
    "ScheduleConfig",
    "DiamondConfig",
]


def _ints(owner: str, **values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{owner}.{name} must be an int >= 1, got {value!r}")


def _positive(owner: str, **values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigError(f"{owner}.{name} must be a number > 0, got {value!r}")


def _levels(owner: str, **tuples: tuple) -> None:
    lengths = {name: len(value) for name, value in tuples.items()}
    if len(set(lengths.values())) != 1 or not next(iter(lengths.values())):
        raise ConfigError(f"{owner}: {', '.join(lengths)} need one entry per level (same non-zero length), got "
                          + ", ".join(f"{k}={v!r}" for k, v in tuples.items()))
    for name, value in tuples.items():
        if value and isinstance(value[0], int) and not isinstance(value[0], bool):
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value):
                raise ConfigError(f"{owner}.{name} entries must be ints >= 1, got {value!r}")


@dataclass(frozen=True)
class UNetConfig:
    """The U-Net denoiser (:class:`wmenv.nn.unet.FrameDenoiserUNet`)."""

    channels: tuple[int, ...] = (64, 64, 64, 64)
    """Channels per level (``len - 1`` stride-2 downsamplings; frames are padded to a multiple)."""
    depths: tuple[int, ...] = (2, 2, 2, 2)
    """Residual blocks per level."""
    attention: tuple[bool, ...] = (False, False, False, False)
    """Self-attention in the blocks of each level."""
    mid_attention: bool = True
    """Self-attention in the two middle blocks."""
    cond_dim: int = 256
    """Size of the conditioning vector (noise level + actions) fed to the adaptive group norms."""

    def __post_init__(self) -> None:
        _levels("UNetConfig", channels=self.channels, depths=self.depths, attention=self.attention)
        _ints("UNetConfig", cond_dim=self.cond_dim)
        if self.cond_dim % 2:
            raise ConfigError(f"UNetConfig.cond_dim must be even (Fourier features), got {self.cond_dim}")


@dataclass(frozen=True)
class DiTConfig:
    """The diffusion-transformer denoiser (:class:`wmenv.nn.dit.FrameDenoiserDiT`)."""

    patch: int = 4
    """Patch side (frames are padded to a multiple)."""
    dim: int = 256
    """Token width (divisible by 4 and by ``heads``)."""
    depth: int = 8
    """Transformer blocks."""
    heads: int = 4
    """Attention heads."""
    mlp_ratio: float = 4.0
    """MLP width relative to ``dim``."""
    cond_dim: int = 256
    """Size of the conditioning vector (noise level + actions)."""

    def __post_init__(self) -> None:
        _ints("DiTConfig", patch=self.patch, dim=self.dim, depth=self.depth, heads=self.heads, cond_dim=self.cond_dim)
        _positive("DiTConfig", mlp_ratio=self.mlp_ratio)
        if self.dim % 4 or self.dim % self.heads:
            raise ConfigError(f"DiTConfig.dim={self.dim} must be divisible by 4 and by heads={self.heads}")
        if self.cond_dim % 2:
            raise ConfigError(f"DiTConfig.cond_dim must be even (Fourier features), got {self.cond_dim}")


@dataclass(frozen=True)
class EDMConfig:
    """EDM objective and sampler (:class:`wmenv.nn.diffusion.EDM`); the defaults are DIAMOND's."""

    sigma_data: float = 0.5
    """Data std (frames are scaled to ``[-1, 1]``)."""
    sigma_offset_noise: float = 0.3
    """DIAMOND's per-channel offset noise in training (0: none)."""
    train_loc: float = -0.4
    """Mean of ``ln sigma`` in training."""
    train_scale: float = 1.2
    """Std of ``ln sigma`` in training."""
    train_sigma_min: float = 2e-3
    """Lower clip of training noise levels."""
    train_sigma_max: float = 20.0
    """Upper clip of training noise levels."""
    sigma_min: float = 2e-3
    """Lowest nonzero noise level of the sampler."""
    sigma_max: float = 5.0
    """First noise level of the sampler."""
    rho: float = 7.0
    """Curvature of the Karras sampling schedule."""
    order: int = 1
    """1: Euler (DIAMOND's default), 2: Heun."""

    def __post_init__(self) -> None:
        _positive("EDMConfig", sigma_data=self.sigma_data, train_scale=self.train_scale, rho=self.rho,
                  train_sigma_min=self.train_sigma_min, train_sigma_max=self.train_sigma_max,
                  sigma_min=self.sigma_min, sigma_max=self.sigma_max)
        if self.sigma_offset_noise < 0:
            raise ConfigError(f"EDMConfig.sigma_offset_noise must be >= 0, got {self.sigma_offset_noise!r}")
        if self.train_sigma_min >= self.train_sigma_max or self.sigma_min >= self.sigma_max:
            raise ConfigError("EDMConfig: need train_sigma_min < train_sigma_max and sigma_min < sigma_max")
        if self.order not in (1, 2):
            raise ConfigError(f"EDMConfig.order must be 1 (Euler) or 2 (Heun), got {self.order!r}")


@dataclass(frozen=True)
class DDPMConfig:
    """DDPM objective and sampler (:class:`wmenv.nn.diffusion.DDPM`)."""

    timesteps: int = 1000
    """Diffusion steps ``T``."""
    schedule: Literal["linear", "cosine"] = "linear"
    """``beta`` schedule."""
    beta_start: float = 1e-4
    """First ``beta`` of the linear schedule."""
    beta_end: float = 0.02
    """Last ``beta`` of the linear schedule."""
    sampler: Literal["ddim", "ancestral"] = "ddim"
    """``"ddim"`` over ``sampling_steps`` timesteps, or ``"ancestral"`` over all ``T`` (slow)."""
    eta: float = 0.0
    """DDIM stochasticity (0: deterministic given the initial noise)."""
    clip_sample: float | None = 1.0
    """Clamp predicted frames into ``[-clip, clip]`` while sampling."""

    def __post_init__(self) -> None:
        _ints("DDPMConfig", timesteps=self.timesteps)
        if self.schedule not in ("linear", "cosine") or self.sampler not in ("ddim", "ancestral"):
            raise ConfigError(f"DDPMConfig: schedule must be 'linear' or 'cosine' and sampler 'ddim' or "
                              f"'ancestral', got {self.schedule!r} and {self.sampler!r}")
        if not 0 < self.beta_start <= self.beta_end < 1:
            raise ConfigError(f"DDPMConfig: need 0 < beta_start <= beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if self.eta < 0 or (self.clip_sample is not None and not self.clip_sample > 0):
            raise ConfigError(f"DDPMConfig: need eta >= 0 and clip_sample > 0 or None, got {self.eta}, "
                              f"{self.clip_sample}")


@dataclass(frozen=True)
class RewardEndConfig:
    """The reward/termination model: a conditioned CNN on (frame, next frame) + an LSTM (DIAMOND)."""

    channels: tuple[int, ...] = (32, 32, 32, 32)
    """Channels per level of the encoder (stride-2 downsampling between levels)."""
    depths: tuple[int, ...] = (2, 2, 2, 2)
    """Residual blocks per level."""
    cond_dim: int = 128
    """Size of the action embedding fed to the adaptive group norms."""
    lstm_dim: int = 512
    """LSTM width."""
    reward: Literal["sign", "value"] = "sign"
    """``"sign"``: classify the reward's sign (-1, 0, 1) as DIAMOND (Atari rewards are clipped);
    ``"value"``: regress the reward (MSE)."""

    def __post_init__(self) -> None:
        _levels("RewardEndConfig", channels=self.channels, depths=self.depths)
        _ints("RewardEndConfig", cond_dim=self.cond_dim, lstm_dim=self.lstm_dim)
        if self.reward not in ("sign", "value"):
            raise ConfigError(f"RewardEndConfig.reward must be 'sign' or 'value', got {self.reward!r}")


@dataclass(frozen=True)
class ActorCriticConfig:
    """The actor-critic (CNN + LSTM) and its training in imagination (REINFORCE + lambda-returns)."""

    channels: tuple[int, ...] = (32, 32, 64, 64)
    """Channels of the encoder's residual blocks."""
    down: tuple[bool, ...] = (True, True, True, True)
    """2x2 max pooling after each block."""
    lstm_dim: int = 512
    """LSTM width."""
    horizon: int = 15
    """Imagined steps per update."""
    gamma: float = 0.985
    """Discount."""
    lam: float = 0.95
    """Lambda of the lambda-returns."""
    entropy: float = 0.001
    """Weight of the entropy bonus."""
    value_weight: float = 1.0
    """Weight of the value loss."""
    explore_epsilon: float = 0.01
    """Probability of a uniformly random action when collecting (``make_policy(explore=True)``)."""
    eval_sample: bool = True
    """``make_policy(explore=False)`` samples from the policy (DIAMOND's evaluation) instead of taking its mode."""

    def __post_init__(self) -> None:
        _levels("ActorCriticConfig", channels=self.channels, down=self.down)
        _ints("ActorCriticConfig", lstm_dim=self.lstm_dim, horizon=self.horizon)
        if not (0 < self.gamma <= 1 and 0 <= self.lam <= 1 and self.entropy >= 0 and self.value_weight >= 0
                and 0 <= self.explore_epsilon <= 1):
            raise ConfigError(
                "ActorCriticConfig: need 0 < gamma <= 1, 0 <= lam <= 1, entropy >= 0, value_weight >= 0 and "
                f"0 <= explore_epsilon <= 1, got {self.gamma}, {self.lam}, {self.entropy}, {self.value_weight}, "
                f"{self.explore_epsilon}"
            )


@dataclass(frozen=True)
class OptimConfig:
    """One AdamW per part (``denoiser``, ``reward_end``, ``actor_critic``); DIAMOND's values."""

    denoiser_lr: float = 1e-4
    reward_end_lr: float = 1e-4
    actor_critic_lr: float = 1e-4
    weight_decay: float = 1e-2
    """Weight decay of the denoiser and the reward/termination model (the actor-critic has none)."""
    eps: float = 1e-8
    denoiser_grad_clip: float = 1.0
    reward_end_grad_clip: float = 100.0
    actor_critic_grad_clip: float = 100.0

    def __post_init__(self) -> None:
        _positive("OptimConfig", denoiser_lr=self.denoiser_lr, reward_end_lr=self.reward_end_lr,
                  actor_critic_lr=self.actor_critic_lr, eps=self.eps, denoiser_grad_clip=self.denoiser_grad_clip,
                  reward_end_grad_clip=self.reward_end_grad_clip, actor_critic_grad_clip=self.actor_critic_grad_clip)
        if self.weight_decay < 0:
            raise ConfigError(f"OptimConfig.weight_decay must be >= 0, got {self.weight_decay!r}")


@dataclass(frozen=True)
class ScheduleConfig:
    """The staged loop of ``wmenv train diamond --stage all``: seed collection, then ``epochs`` of
    collect -> world model -> actor-critic. Real env steps in all: ``seed_steps + epochs * collect_steps``."""

    seed_steps: int = 5000
    """Random-policy env steps before the first epoch."""
    epochs: int = 950
    """Epochs after the seed collection."""
    collect_steps: int = 100
    """Env steps per epoch, with the actor-critic (epsilon-greedy)."""
    first_world_model_steps: int = 10_000
    """World-model updates of the first epoch."""
    world_model_steps: int = 400
    """World-model updates (denoiser + reward/termination, one batch each) per later epoch."""
    first_actor_critic_steps: int = 5000
    """Actor-critic updates of the first epoch."""
    actor_critic_steps: int = 400
    """Actor-critic updates per later epoch."""
    batch_size: int = 32
    """Sequences per world-model batch."""
    seq_len: int = 19
    """Rows per world-model sequence (``L + horizon``, DIAMOND's reward/termination sequences)."""
    denoiser_windows: int = 1
    """Next-frame targets per sequence in the denoiser loss (0: every window of the sequence)."""
    actor_critic_batch_size: int = 32
    """Imagined trajectories per actor-critic update (each burned in on ``L`` real frames)."""
    num_envs: int = 1
    """Real envs stepped together when collecting."""
    eval_episodes: int = 0
    """Real-env episodes of the final evaluation (0: none)."""

    def __post_init__(self) -> None:
        _ints("ScheduleConfig", batch_size=self.batch_size, seq_len=self.seq_len, num_envs=self.num_envs,
              actor_critic_batch_size=self.actor_critic_batch_size)
        for name in ("seed_steps", "epochs", "collect_steps", "first_world_model_steps", "world_model_steps",
                     "first_actor_critic_steps", "actor_critic_steps", "denoiser_windows", "eval_episodes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"ScheduleConfig.{name} must be an int >= 0, got {value!r}")

    @property
    def total_env_steps(self) -> int:
        """Real env steps of a complete run."""
        return self.seed_steps + self.epochs * self.collect_steps


@dataclass(frozen=True)
class DiamondConfig:
    """A diffusion world model, its reward/termination model and its actor-critic (DIAMOND and variants)."""

    EXTRA_PRESETS = ("minatar", "atari100k")

    objective: Literal["edm", "ddpm"] = "edm"
    """Diffusion objective: EDM (DIAMOND) or DDPM (``eps``-prediction, DDIM sampling)."""
    denoiser: Literal["unet", "dit"] = "unet"
    """Denoiser network: DIAMOND's U-Net or a DiT."""
    context_frames: int = 4
    """``L``: frames (and actions) of context the denoiser is conditioned on."""
    sampling_steps: int = 3
    """Denoising steps per imagined frame (EDM: Euler/Heun steps; DDPM: DDIM steps)."""
    unet: UNetConfig = field(default_factory=UNetConfig)
    dit: DiTConfig = field(default_factory=DiTConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    ddpm: DDPMConfig = field(default_factory=DDPMConfig)
    reward_end: RewardEndConfig = field(default_factory=RewardEndConfig)
    actor_critic: ActorCriticConfig = field(default_factory=ActorCriticConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        if self.objective not in ("edm", "ddpm"):
            raise ConfigError(f"DiamondConfig.objective must be 'edm' or 'ddpm', got {self.objective!r}")
        if self.denoiser not in ("unet", "dit"):
            raise ConfigError(f"DiamondConfig.denoiser must be 'unet' or 'dit', got {self.denoiser!r}")
        _ints("DiamondConfig", context_frames=self.context_frames, sampling_steps=self.sampling_steps)
        if self.schedule.seq_len < self.context_frames + 1:
            raise ConfigError(
                f"schedule.seq_len={self.schedule.seq_len} must be >= context_frames + 1 = {self.context_frames + 1} "
                "(a next-frame target needs its L frames of context)"
            )

    # ------------------------------------------------------------------ presets
    @classmethod
    def tiny(cls) -> DiamondConfig:
        """Tests and CPU smoke runs: every part a few thousand parameters, a few hundred env steps."""
        return cls(
            context_frames=2,
            sampling_steps=3,
            unet=UNetConfig(channels=(16, 16), depths=(1, 1), attention=(False, False), mid_attention=False,
                            cond_dim=32),
            dit=DiTConfig(patch=2, dim=32, depth=2, heads=2, mlp_ratio=2.0, cond_dim=32),
            edm=EDMConfig(),
            reward_end=RewardEndConfig(channels=(8, 8), depths=(1, 1), cond_dim=16, lstm_dim=32),
            actor_critic=ActorCriticConfig(channels=(8, 16), down=(True, True), lstm_dim=32, horizon=4),
            optim=OptimConfig(denoiser_lr=1e-3, reward_end_lr=1e-3, actor_critic_lr=1e-3),
            schedule=ScheduleConfig(
                seed_steps=200, epochs=2, collect_steps=50, first_world_model_steps=20, world_model_steps=10,
                first_actor_critic_steps=10, actor_critic_steps=5, batch_size=4, seq_len=6, denoiser_windows=2,
                actor_critic_batch_size=4,
            ),
        )

    @classmethod
    def minatar(cls) -> DiamondConfig:
        """10x10xC MinAtar frames, 100k env steps (GPU; see the module docstring)."""
        return cls(
            context_frames=4,
            unet=UNetConfig(channels=(64, 64, 64), depths=(2, 2, 2), attention=(False, False, False), cond_dim=256),
            dit=DiTConfig(patch=2, dim=192, depth=6, heads=4, cond_dim=256),
            reward_end=RewardEndConfig(channels=(32, 32, 32), depths=(2, 2, 2), cond_dim=128, lstm_dim=512,
                                       reward="sign"),
            actor_critic=ActorCriticConfig(channels=(32, 32, 64), down=(True, True, False), lstm_dim=512),
        )

    @classmethod
    def atari100k(cls) -> DiamondConfig:
        """The DIAMOND paper's sizes and Atari 100k schedule for 64x64x3 frames (GPU-sized)."""
        return cls()

