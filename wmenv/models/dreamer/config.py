"""Configuration of the Dreamer family (V1, V2, V3) with presets.

``version`` selects the recipe; every field left at ``None`` takes that version's default when
the model is built (:meth:`DreamerConfig.resolved`), so ``version=v2`` on any preset gives V2
behaviour while explicit values still win.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.config import apply_overrides
from wmenv.core.errors import ConfigError

__all__ = ["DreamerConfig", "RSSMConfig", "KLConfig", "OptimConfig", "BehaviorConfig", "VERSION_DEFAULTS"]

Version = Literal["v1", "v2", "v3"]


def _check(cond: bool, what: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class RSSMConfig:
    """Sizes of the recurrent state-space model."""

    deter: int = 512
    """GRU state size."""
    stoch: int = 32
    """Number of latent variables (Gaussian dims in V1)."""
    classes: int = 32
    """Classes per categorical latent (ignored by Gaussian latents)."""
    discrete: bool | None = None
    """Categorical latents (default: True for V2/V3) or diagonal Gaussian ones (V1, PlaNet)."""
    hidden: int = 512
    """Width of the RSSM's input/prior/posterior layers."""
    unimix: float | None = None
    """Uniform mixture of categorical latents (default: 0.01 for V3, 0 otherwise)."""
    min_std: float = 0.1
    """Minimum std of Gaussian latents (V1)."""

    def __post_init__(self) -> None:
        for name in ("deter", "stoch", "hidden"):
            _check(getattr(self, name) >= 1, f"rssm.{name}", getattr(self, name), "an int >= 1")
        _check(self.classes >= 2, "rssm.classes", self.classes, "an int >= 2 (use version='v1' for Gaussian)")
        _check(self.unimix is None or 0 <= self.unimix < 1, "rssm.unimix", self.unimix, "a float in [0, 1)")
        _check(self.min_std > 0, "rssm.min_std", self.min_std, "a float > 0")


@dataclass(frozen=True)
class KLConfig:
    """KL regulariser between posterior and prior."""

    dyn_scale: float | None = None
    """Weight of KL(sg(post) || prior) (V3: 0.5, V2: 0.8, V1: 1.0 on the plain KL)."""
    rep_scale: float | None = None
    """Weight of KL(post || sg(prior)) (V3: 0.1, V2: 0.2, unused by V1)."""
    free_bits: float | None = None
    """Nats per step below which the KL is not penalised (V3: 1.0, V2: 1.0, V1: 3.0)."""
    balanced: bool | None = None
    """Balanced dyn/rep form (V2/V3) or plain KL (V1)."""

    def __post_init__(self) -> None:
        for name in ("dyn_scale", "rep_scale", "free_bits"):
            v = getattr(self, name)
            _check(v is None or v >= 0, f"kl.{name}", v, "a float >= 0 or None")


@dataclass(frozen=True)
class OptimConfig:
    """One optimizer group per component: world model, actor, critic (Adam)."""

    model_lr: float | None = None
    """World-model learning rate (V3: 1e-4, V2: 2e-4, V1: 6e-4)."""
    actor_lr: float | None = None
    """Actor learning rate (V3: 3e-5, V1/V2: 8e-5)."""
    critic_lr: float | None = None
    """Critic learning rate (V3: 3e-5, V1/V2: 8e-5)."""
    eps: float | None = None
    """Adam epsilon (V3: 1e-8, V1/V2: 1e-5)."""
    model_grad_clip: float | None = None
    """Gradient-norm clip of the world model (V3: 1000, V1/V2: 100)."""
    ac_grad_clip: float = 100.0
    """Gradient-norm clip of actor and critic."""
    weight_decay: float = 0.0
    """Weight decay of every group."""

    def __post_init__(self) -> None:
        for name in ("model_lr", "actor_lr", "critic_lr", "eps", "model_grad_clip"):
            v = getattr(self, name)
            _check(v is None or v > 0, f"optim.{name}", v, "a float > 0 or None")
        _check(self.ac_grad_clip > 0, "optim.ac_grad_clip", self.ac_grad_clip, "a float > 0")
        _check(self.weight_decay >= 0, "optim.weight_decay", self.weight_decay, "a float >= 0")


@dataclass(frozen=True)
class BehaviorConfig:
    """Actor-critic learned in imagination."""

    horizon: int = 15
    """Imagination horizon for actor-critic learning."""
    gamma: float | None = None
    """Discount (V3: 0.997, V1/V2: 0.99)."""
    lam: float = 0.95
    """Lambda of the lambda-returns."""
    entropy: float | None = None
    """Actor entropy bonus (V3: 3e-4, V2: 1e-4, V1: 0)."""
    return_norm: bool | None = None
    """Normalise advantages by the 5-95 percentile range of returns (V3)."""
    slow_critic_fraction: float = 0.02
    """EMA fraction of the slow target critic per update."""
    slow_critic_reg: float = 1.0
    """Weight of the critic's regulariser towards the slow critic (V3)."""
    actor_grad: Literal["auto", "reinforce", "dynamics"] = "auto"
    """Actor gradient: REINFORCE, backprop through dynamics, or auto (discrete: REINFORCE)."""
    continuous_dist: Literal["auto", "bounded_normal", "tanh_normal"] = "auto"
    """Continuous action distribution (auto: bounded normal for V3, tanh-normal for V1/V2)."""

    def __post_init__(self) -> None:
        _check(self.horizon >= 1, "behavior.horizon", self.horizon, "an int >= 1")
        _check(self.gamma is None or 0 < self.gamma <= 1, "behavior.gamma", self.gamma, "a float in (0, 1]")
        _check(0 <= self.lam <= 1, "behavior.lam", self.lam, "a float in [0, 1]")
        _check(
            0 < self.slow_critic_fraction <= 1,
            "behavior.slow_critic_fraction",
            self.slow_critic_fraction,
            "a float in (0, 1]",
        )


#: Defaults that ``version`` fills into fields left at ``None``.
VERSION_DEFAULTS: dict[str, dict[str, Any]] = {
    "v3": {
        "symlog_inputs": True,
        "reward_head": "twohot",
        "critic_head": "twohot",
        "norm": True,
        "act": "silu",
        "rssm.unimix": 0.01,
        "rssm.discrete": True,
        "kl.dyn_scale": 0.5,
        "kl.rep_scale": 0.1,
        "kl.free_bits": 1.0,
        "kl.balanced": True,
        "optim.model_lr": 1e-4,
        "optim.actor_lr": 3e-5,
        "optim.critic_lr": 3e-5,
        "optim.eps": 1e-8,
        "optim.model_grad_clip": 1000.0,
        "behavior.gamma": 0.997,
        "behavior.entropy": 3e-4,
        "behavior.return_norm": True,
    },
    "v2": {
        "symlog_inputs": False,
        "reward_head": "mse",
        "critic_head": "mse",
        "norm": True,
        "act": "elu",
        "rssm.unimix": 0.0,
        "rssm.discrete": True,
        "kl.dyn_scale": 0.8,
        "kl.rep_scale": 0.2,
        "kl.free_bits": 1.0,
        "kl.balanced": True,
        "optim.model_lr": 2e-4,
        "optim.actor_lr": 8e-5,
        "optim.critic_lr": 8e-5,
        "optim.eps": 1e-5,
        "optim.model_grad_clip": 100.0,
        "behavior.gamma": 0.99,
        "behavior.entropy": 1e-4,
        "behavior.return_norm": False,
    },
    "v1": {
        "symlog_inputs": False,
        "reward_head": "mse",
        "critic_head": "mse",
        "norm": False,
        "act": "elu",
        "rssm.unimix": 0.0,
        "rssm.discrete": False,
        "kl.dyn_scale": 1.0,
        "kl.rep_scale": 0.0,
        "kl.free_bits": 3.0,
        "kl.balanced": False,
        "optim.model_lr": 6e-4,
        "optim.actor_lr": 8e-5,
        "optim.critic_lr": 8e-5,
        "optim.eps": 1e-5,
        "optim.model_grad_clip": 100.0,
        "behavior.gamma": 0.99,
        "behavior.entropy": 0.0,
        "behavior.return_norm": False,
    },
}


@dataclass(frozen=True)
class DreamerConfig:
    """Dreamer world model and actor-critic; ``version`` picks the V1/V2/V3 recipe."""

    version: Version = "v3"
    """Recipe: v3 (discrete+unimix, symlog, two-hot, KL 0.5/0.1, free bits 1), v2, v1 (Gaussian)."""
    rssm: RSSMConfig = field(default_factory=RSSMConfig)
    """Recurrent state-space model sizes."""
    mlp_units: int = 512
    """Width of encoder/decoder/head MLPs (vector observations, reward, continue, actor, critic)."""
    mlp_layers: int = 2
    """Hidden layers of those MLPs."""
    cnn_depth: int = 32
    """Channel multiplier of the image encoder/decoder."""
    norm: bool | None = None
    """LayerNorm in MLPs and the GRU (default: True for V2/V3, False for V1)."""
    act: Literal["silu", "elu"] | None = None
    """Activation (V3: silu, V1/V2: elu)."""
    symlog_inputs: bool | None = None
    """Symlog vector observations and predict them in symlog space (V3)."""
    obs_norm: bool = True
    """Normalise vector observations by running mean/std before the encoder and for the decoder
    target (not in the papers; makes low-variance dimensions such as CartPole's count)."""
    reward_head: Literal["twohot", "mse"] | None = None
    """Reward head: two-hot symlog (V3) or unit Gaussian / MSE (V1/V2)."""
    critic_head: Literal["twohot", "mse"] | None = None
    """Critic head: two-hot symlog (V3) or unit Gaussian / MSE (V1/V2)."""
    bins: int = 255
    """Bins of the two-hot heads."""
    kl: KLConfig = field(default_factory=KLConfig)
    """KL regulariser."""
    obs_scale: float = 1.0
    """Weight of the observation reconstruction loss."""
    reward_scale: float = 1.0
    """Weight of the reward loss."""
    cont_scale: float = 1.0
    """Weight of the continue loss."""
    terminal_weight: float = 1.0
    """Extra weight of terminal steps in the continue loss (> 1 helps with rare terminations)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimizer groups."""
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)
    """Actor-critic in imagination."""

    def __post_init__(self) -> None:
        _check(
            self.version in VERSION_DEFAULTS, "version", self.version, f"one of {sorted(VERSION_DEFAULTS)}"
        )
        for name in ("mlp_units", "mlp_layers", "cnn_depth"):
            _check(getattr(self, name) >= 1, name, getattr(self, name), "an int >= 1")
        _check(self.bins >= 3, "bins", self.bins, "an int >= 3")
        for name in ("obs_scale", "reward_scale", "cont_scale", "terminal_weight"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "a float >= 0")
        for name, cls in (
            ("rssm", RSSMConfig),
            ("kl", KLConfig),
            ("optim", OptimConfig),
            ("behavior", BehaviorConfig),
        ):
            _check(isinstance(getattr(self, name), cls), name, getattr(self, name), f"a {cls.__name__}")

    def resolved(self) -> DreamerConfig:
        """Copy with every ``None`` field filled from :data:`VERSION_DEFAULTS` of ``version``."""
        fill: dict[str, Any] = {}
        for key, value in VERSION_DEFAULTS[self.version].items():
            obj: Any = self
            for part in key.split("."):
                obj = getattr(obj, part)
            if obj is None:
                fill[key] = value
        return apply_overrides(self, fill)

    def replace(self, **changes: Any) -> DreamerConfig:
        """``dataclasses.replace`` shortcut."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ presets
    @classmethod
    def debug(cls) -> DreamerConfig:
        """Seconds on a CPU (examples, recipes, tests): :meth:`tiny` with deter 64, hidden 64, MLPs 2x64."""
        base = cls.tiny()
        return dataclasses.replace(base, rssm=dataclasses.replace(base.rssm, deter=64, hidden=64), mlp_units=64)

    @classmethod
    def tiny(cls) -> DreamerConfig:
        """For tests and CPU: deter 128, 8x8 latents, MLPs 2x128, fast learning rates, terminal
        steps weighted 5x in the continue loss (rare terminations, e.g. CartPole)."""
        return cls(
            rssm=RSSMConfig(deter=128, stoch=8, classes=8, hidden=128),
            mlp_units=128,
            mlp_layers=2,
            cnn_depth=8,
            terminal_weight=5.0,
            optim=OptimConfig(model_lr=1e-3, actor_lr=3e-4, critic_lr=3e-4, eps=1e-6),
        )

    @classmethod
    def small(cls) -> DreamerConfig:
        """Small CPU/GPU model: deter 256, 16x16 latents, MLPs 2x256."""
        return cls(
            rssm=RSSMConfig(deter=256, stoch=16, classes=16, hidden=256),
            mlp_units=256,
            mlp_layers=2,
            cnn_depth=16,
            optim=OptimConfig(model_lr=3e-4, actor_lr=1e-4, critic_lr=1e-4),
        )

    @classmethod
    def medium(cls) -> DreamerConfig:
        """DreamerV3 M: deter 1024, 32x32 latents, MLPs 3x640, CNN depth 48."""
        return cls(
            rssm=RSSMConfig(deter=1024, stoch=32, classes=32, hidden=640),
            mlp_units=640,
            mlp_layers=3,
            cnn_depth=48,
        )

    @classmethod
    def large(cls) -> DreamerConfig:
        """DreamerV3 L: deter 2048, 32x32 latents, MLPs 4x768, CNN depth 64."""
        return cls(
            rssm=RSSMConfig(deter=2048, stoch=32, classes=32, hidden=768),
            mlp_units=768,
            mlp_layers=4,
            cnn_depth=64,
        )

    @classmethod
    def xlarge(cls) -> DreamerConfig:
        """DreamerV3 XL: deter 4096, 32x32 latents, MLPs 5x1024, CNN depth 96."""
        return cls(
            rssm=RSSMConfig(deter=4096, stoch=32, classes=32, hidden=1024),
            mlp_units=1024,
            mlp_layers=5,
            cnn_depth=96,
        )
