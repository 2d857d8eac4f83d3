"""Configuration of ``wmenv demo``: one frozen dataclass, one preset per kind of env."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from wmenv.config import apply_overrides, config_to_dict
from wmenv.core.errors import ConfigError

__all__ = ["DemoConfig", "demo_config_for"]


@dataclass(frozen=True)
class DemoConfig:
    """What ``wmenv demo`` runs. Sizes are for 2 CPU cores; raise them on a GPU."""

    env_id: str = "CartPole-v1"
    """Real env id (any ``wmenv.make_env`` id)."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Extra ``make_env`` arguments (e.g. ``{"pixels": True}``)."""
    pixels: bool = False
    """Whether observations are images."""
    model: str = "dreamer-wm"
    """Registered world model to train."""
    preset: str = "tiny"
    """Model preset."""
    model_overrides: Mapping[str, Any] = field(default_factory=dict)
    """Dot-notation overrides of the model config."""
    observation_mode: Literal["decoded", "latent"] = "decoded"
    """What the policy sees in imagination (``latent`` is cheaper for pixels)."""
    real_step_budget: int = 5000
    """Real env steps used for learning, in total (evaluation excluded)."""
    seed_steps: int = 1500
    """Random-policy real steps before the first round."""
    collect_steps: int = 700
    """Real steps collected by each round's policy."""
    rounds: int = 6
    """Rounds of world-model training, policy training in imagination and collection."""
    wm_updates_first: int = 800
    """World-model updates in round 0."""
    wm_updates: int = 300
    """World-model updates in later rounds."""
    batch_size: int = 16
    """Sequences per world-model update."""
    seq_len: int = 32
    """Steps per sequence."""
    lr: float = 1e-3
    """Trainer learning rate (families may set their own per optimizer group)."""
    algo: Literal["ppo", "sac"] = "ppo"
    """SB3 algorithm trained in imagination."""
    algo_kwargs: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the SB3 algorithm."""
    policy_steps: int = 40_000
    """Imagined steps of policy training per round."""
    num_envs: int = 16
    """Imagined envs stepped in one forward pass."""
    horizon: int = 100
    """Imagination horizon (episodes are truncated there and bootstrapped)."""
    start_near_end: float = 0.0
    """Share of imagined episodes started within ``start_end_window`` steps before a real termination
    (:class:`~wmenv.core.protocol.ReplayStartStates` ``end_bias``); 0 = uniform starts."""
    start_end_window: int = 20
    """Steps before a real termination that count as near it."""
    context_length: int = 4
    """Real steps burned into the model at each imagined reset."""
    collect_deterministic: bool = True
    """Collect real data with the policy's deterministic action (the one that is evaluated)."""
    collect_epsilon: float = 0.1
    """Probability of a random action during collection (exploration around the policy)."""
    sample_termination: bool = True
    """Draw terminations from the continue head instead of thresholding it."""
    eval_episodes: int = 20
    """Real-env evaluation episodes of the final policy."""
    threads: int = 1
    """torch threads (1 is fastest for tiny models on a shared CPU; 0 keeps torch's default)."""

    def __post_init__(self) -> None:
        for name in ("real_step_budget", "seed_steps", "rounds", "batch_size", "seq_len", "policy_steps",
                     "num_envs", "horizon", "context_length", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"demo config {name} must be >= 1, got {getattr(self, name)!r}")
        if self.seed_steps > self.real_step_budget:
            raise ConfigError(
                f"seed_steps ({self.seed_steps}) exceeds real_step_budget ({self.real_step_budget}); lower it"
            )
        if self.algo not in ("ppo", "sac"):
            raise ConfigError(f"algo must be 'ppo' or 'sac', got {self.algo!r}")
        if self.observation_mode not in ("decoded", "latent"):
            raise ConfigError(f"observation_mode must be 'decoded' or 'latent', got {self.observation_mode!r}")

    def with_overrides(self, overrides: Mapping[str, Any]) -> DemoConfig:
        """Copy with dot-notation overrides (``rounds=3``, ``model_overrides`` via ``model.<key>``)."""
        model_ov = {k[len("model."):]: v for k, v in overrides.items() if k.startswith("model.")}
        rest = {k: v for k, v in overrides.items() if not k.startswith("model.")}
        out = apply_overrides(self, rest)
        if model_ov:
            out = dataclasses.replace(out, model_overrides={**out.model_overrides, **model_ov})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the report and summary.json)."""
        return config_to_dict(self)


_PPO_DISCRETE = dict(n_steps=128, batch_size=256, n_epochs=10, gae_lambda=0.95, gamma=0.995, learning_rate=3e-4)


def demo_config_for(env_id: str, *, pixels: bool = False) -> DemoConfig:
    """The demo preset for an env: CartPole-v1, Pendulum-v1, dm_control pixels, or a generic one."""
    if env_id == "CartPole-v1":
        # Gaussian latents (V1 RSSM) model CartPole's low-dimensional state precisely enough that
        # terminations are predicted (recall ~0.75 at 1 step vs ~0 for 8x8 discrete latents); a long
        # horizon lets the policy see cart drift, which only ends episodes after ~200 steps.
        return DemoConfig(
            env_id=env_id, model="dreamerv1-wm", algo_kwargs=_PPO_DISCRETE, model_overrides={"terminal_weight": 5.0},
            horizon=300, rounds=8, collect_steps=500, policy_steps=50_000, wm_updates=250,
        )
    if env_id == "Pendulum-v1":
        return DemoConfig(
            env_id=env_id, real_step_budget=10_000, seed_steps=2000, collect_steps=1000, rounds=8,
            horizon=64, algo="sac", policy_steps=6000, num_envs=8, sample_termination=False,
            algo_kwargs=dict(learning_rate=1e-3, batch_size=256, gradient_steps=8, train_freq=1,
                             learning_starts=500, buffer_size=100_000, gamma=0.98),
        )
    if pixels or "-" in env_id and env_id[0].islower():
        return DemoConfig(
            env_id=env_id, env_kwargs={"pixels": True} if pixels else {}, pixels=pixels, observation_mode="latent",
            real_step_budget=10_000, seed_steps=2000, collect_steps=1000, rounds=4, horizon=32, algo="sac",
            policy_steps=4000, num_envs=16, sample_termination=False, batch_size=8, seq_len=32,
            algo_kwargs=dict(learning_rate=3e-4, batch_size=256, gradient_steps=4, learning_starts=500,
                             buffer_size=100_000),
        )
    return DemoConfig(env_id=env_id, algo_kwargs=_PPO_DISCRETE)
