"""Configuration of PlaNet (Hafner et al. 2019, "Learning Latent Dynamics for Planning from Pixels").

Presets: ``tiny`` (tests, CPU smoke runs), ``small`` (vector control tasks on CPU, e.g.
Pendulum-v1), ``paper`` (the paper's sizes: 200-unit GRU, 30-dim Gaussian latent, free nats 3,
CEM with horizon 12, 1000 candidates, top 100; 8 CEM iterations where the paper uses 10).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.config import apply_overrides
from wmenv.core.errors import ConfigError
from wmenv.nn.planning import CEMConfig

__all__ = ["PlanetConfig", "PlanetRSSMConfig"]


def _check(cond: bool, what: str, value: Any, expected: str) -> None:
    if not cond:
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")


@dataclass(frozen=True)
class PlanetRSSMConfig:
    """Sizes of the Gaussian recurrent state-space model."""

    deter: int = 200
    """GRU state size."""
    stoch: int = 30
    """Dimensions of the diagonal Gaussian latent."""
    hidden: int = 200
    """Width of the RSSM's input, prior and posterior layers."""
    min_std: float = 0.1
    """Minimum std of the latent Gaussians."""

    def __post_init__(self) -> None:
        for name in ("deter", "stoch", "hidden"):
            v = getattr(self, name)
            _check(isinstance(v, int) and v >= 1, f"rssm.{name}", v, "an int >= 1")
        _check(self.min_std > 0, "rssm.min_std", self.min_std, "a float > 0")


@dataclass(frozen=True)
class PlanetConfig:
    """PlaNet world model, variational-bound loss and CEM planner."""

    rssm: PlanetRSSMConfig = field(default_factory=PlanetRSSMConfig)
    """Recurrent state-space model sizes."""
    planner: CEMConfig = field(default_factory=CEMConfig)
    """CEM sizes for acting greedily (``make_policy(explore=False)``, benchmarks) and in imagination."""
    collect_planner: CEMConfig = field(default_factory=CEMConfig)
    """CEM sizes of the collection policy (``make_policy(explore=True)``); smaller ones speed up collection."""
    mlp_units: int = 200
    """Width of the vector encoder/decoder and of the reward/continue heads."""
    mlp_layers: int = 2
    """Hidden layers of those MLPs."""
    cnn_depth: int = 32
    """Channel multiplier of the conv encoder/decoder (64x64x3 images)."""
    act: Literal["relu", "elu", "silu", "tanh"] = "relu"
    """Activation of every block (the paper: ReLU)."""
    norm: bool = False
    """LayerNorm in the MLPs, conv blocks and GRU (the paper: none)."""
    free_nats: float = 3.0
    """KL below this many nats per step is not penalised."""
    kl_scale: float = 1.0
    """Weight of the one-step KL term."""
    overshooting: int = 0
    """Latent overshooting distance D (0: off; the paper's ablation uses D = horizon)."""
    overshooting_scale: float = 1.0
    """Weight beta of the multi-step KL terms (each of distances 2..D gets beta / D)."""
    obs_scale: float = 1.0
    """Weight of the reconstruction term (= 1 / std**2 of the Gaussian observation likelihood)."""
    reward_scale: float = 1.0
    """Weight of the reward term."""
    predict_termination: bool = True
    """Learn a continue head (episode ends); the paper's DMC tasks never terminate."""
    lr: float = 1e-3
    """Adam learning rate."""
    eps: float = 1e-4
    """Adam epsilon."""
    grad_clip: float = 1000.0
    """Max global gradient norm."""
    explore_noise: float = 0.3
    """Exploration noise of the collection policy (Gaussian std in [-1, 1] scale; epsilon for Discrete)."""
    plan_sample: bool = False
    """Sample prior latents while planning (else prior means: lower-variance returns)."""

    def __post_init__(self) -> None:
        for name in ("mlp_units", "mlp_layers", "cnn_depth"):
            v = getattr(self, name)
            low = 0 if name == "mlp_layers" else 1
            _check(isinstance(v, int) and v >= low, name, v, f"an int >= {low}")
        for name in ("free_nats", "kl_scale", "overshooting_scale", "obs_scale", "reward_scale"):
            _check(getattr(self, name) >= 0, name, getattr(self, name), "a float >= 0")
        _check(isinstance(self.overshooting, int) and self.overshooting >= 0, "overshooting",
               self.overshooting, "an int >= 0 (0 disables latent overshooting)")
        _check(self.overshooting != 1, "overshooting", self.overshooting,
               "0 (off) or a distance >= 2 (distance 1 is the ordinary KL term)")
        for name in ("lr", "eps", "grad_clip"):
            _check(getattr(self, name) > 0, name, getattr(self, name), "a float > 0")
        _check(0 <= self.explore_noise <= 1, "explore_noise", self.explore_noise, "a float in [0, 1]")

    def replace(self, **changes: Any) -> PlanetConfig:
        """Copy with fields replaced (validated)."""
        return dataclasses.replace(self, **changes)

    def override(self, overrides: dict[str, Any]) -> PlanetConfig:
        """Copy with dot-notation overrides (``{"rssm.deter": 64}``) applied and type-checked."""
        return apply_overrides(self, overrides)

    @classmethod
    def tiny(cls) -> PlanetConfig:
        """Tiny model and planner for tests and CPU smoke runs (seconds per hundred updates)."""
        return cls(
            rssm=PlanetRSSMConfig(deter=32, stoch=8, hidden=32), planner=CEMConfig.tiny(),
            collect_planner=CEMConfig.tiny(), mlp_units=32, mlp_layers=1, cnn_depth=4, free_nats=1.0,
        )

    @classmethod
    def small(cls) -> PlanetConfig:
        """Low-dimensional control on a CPU (Pendulum-v1): small RSSM, the default CEM sizes for acting
        and a CEM of 500 candidates, 6 iterations, top 50 for collection.

        ``obs_scale=100`` makes the vector likelihood a Gaussian of std 0.1 in the [-1, 1]-scaled
        space: with unit variance a 3-D observation costs almost nothing to get wrong, and
        open-loop predictions over the planning horizon were 4x worse on Pendulum.
        """
        return cls(
            rssm=PlanetRSSMConfig(deter=64, stoch=8, hidden=64), mlp_units=64, mlp_layers=2,
            cnn_depth=16, free_nats=1.0, obs_scale=100.0, predict_termination=False,
            collect_planner=CEMConfig(candidates=500, iterations=6, top_k=50),
        )

    @classmethod
    def paper(cls) -> PlanetConfig:
        """The paper's sizes (pixels, DMC): GRU 200, latent 30, free nats 3, no termination head."""
        return cls(predict_termination=False)
