"""Model-free reference agent: Stable-Baselines3 PPO trained on the REAL env (``ppo-real``).

The agent a world-model agent has to beat at equal real-env budget: it learns only from real
interaction, ``train(steps=N)`` using at most ``N`` real agent steps.

Hyper-parameters (:data:`MINATAR_PPO`, used for every env with image-like ``(H, W, C)`` frames;
flat observations get SB3's defaults with its MLP policy). rl-zoo3 has no MinAtar settings; these
follow the PPO setups published for MinAtar and Atari-style budgets, then a small sweep:

- network: the MinAtar paper's (Young & Tian 2019, arXiv:1903.03176): one 3x3 convolution with
  16 channels (stride 1, no padding) + ReLU, a 128-unit ReLU layer, shared by the policy and value
  heads (linear heads, SB3's orthogonal init). SB3's NatureCNN needs >= 36x36 frames.
- PPO structure: CleanRL's ``ppo_atari.py`` (8 envs, ~128 steps per env and rollout, 4 minibatches,
  4 epochs, gamma 0.99, entropy 0.01, value coefficient 0.5, gradient norm 0.5, Adam epsilon
  1e-5, learning rate annealed linearly to 0). ``n_steps`` is 125 instead of 128 so that a 100k
  budget is exactly 100 rollouts of 1000 steps.
- learning rate 2.5e-3, clip range 0.1 and GAE lambda 0.8 instead of CleanRL's 2.5e-4 / 0.1 /
  0.95 and PureJaxRL's MinAtar 5e-4 / 0.2 / 0.95: chosen by a sweep on MinAtar Breakout (tuning
  seeds 100 and 101, never the reference seeds 0-4) and checked on Asterix, Seaquest and
  SpaceInvaders (seed 100). At 100k steps the 5e-4 / 0.2 / 0.95 setting scored 3.9-4.0 on
  Breakout and 6.4 after 1M steps; 2.5e-3 / 0.1 / 0.8 scored 5.1-5.6 at 100k and ~10 at 300k, and
  tripled SpaceInvaders at 100k. The sweep is listed in ``wmenv/benchmarks/data/minatar100k/README.md``.

Budgets: ``steps`` real agent steps (summed over the 8 envs) are rounded DOWN to whole rollouts
(``n_envs * n_steps``); budgets below one rollout shrink ``n_steps`` (tiny test runs). ``epochs=N``
means N PPO iterations (rollout + update). The learning-rate schedule spans the budget.

Evaluation is greedy (``deterministic=True``, SB3's ``predict`` default and what the ``sb3`` agent
does); in the sweep it scored as well as or better than sampled actions on every Breakout policy
(e.g. 11.2 vs 9.5 at 300k). Sticky actions keep greedy play from looping, and the MinAtar
backend's 10,000-step time limit bounds an episode anyway. With ``deterministic=False`` episode
``i`` reseeds the policy's sampling with the episode's reset seed.

After training, ``log_dir`` holds ``policy.pt`` (weights only), ``ppo_config.json`` (what
:meth:`PPORealAgent.load_checkpoint` needs) and SB3's ``progress.csv`` (training curve).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wmenv.benchmarks.adapters import AGENTS, EvaluationResult, RealEnvEvaluator, make_real_env
from wmenv.core.errors import CheckpointError, ConfigError, UnsupportedSpaceError

__all__ = [
    "MINATAR_PPO",
    "MLP_PPO",
    "PPORealAgent",
    "hyperparameters_for",
    "register_model_free_agents",
    "rollout_plan",
]

#: PPO settings for small image-like frames (MinAtar); sources in the module docstring.
MINATAR_PPO: dict[str, Any] = {
    "policy": "cnn-minatar",
    "n_envs": 8,
    "n_steps": 125,
    "batch_size": 250,
    "n_epochs": 4,
    "learning_rate": 2.5e-3,
    "anneal_lr": True,
    "gamma": 0.99,
    "gae_lambda": 0.8,
    "clip_range": 0.1,
    "ent_coef": 0.01,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "adam_eps": 1e-5,
    "conv_channels": 16,
    "hidden": 128,
}
#: SB3's PPO defaults with its MLP policy (flat observations such as CartPole).
MLP_PPO: dict[str, Any] = {
    "policy": "mlp",
    "n_envs": 1,
    "n_steps": 2048,
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "anneal_lr": False,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "vf_coef": 0.5,
    "max_grad_norm": 0.5,
    "adam_eps": 1e-8,
}
POLICY_FILE, CONFIG_FILE = "policy.pt", "ppo_config.json"


def hyperparameters_for(observation_space: Any) -> dict[str, Any]:
    """:data:`MINATAR_PPO` for ``(H, W, C)`` boxes, :data:`MLP_PPO` for flat boxes (a copy)."""
    shape = tuple(getattr(observation_space, "shape", None) or ())
    if len(shape) == 3 and min(shape[:2]) >= 3:
        return dict(MINATAR_PPO)
    if len(shape) == 1:
        return dict(MLP_PPO)
    raise UnsupportedSpaceError(
        f"ppo-real handles (H, W, C) frames and flat vectors, got observation space {observation_space}"
    )


def rollout_plan(steps: int | None, epochs: int | None, n_envs: int, n_steps: int) -> tuple[int, int]:
    """``(n_steps, iterations)``: whole rollouts of ``n_envs * n_steps`` within the budget.

    Raises:
        ConfigError: Neither or both of ``steps`` and ``epochs``, or a budget below ``n_envs`` steps.
    """
    if (steps is None) == (epochs is None):
        raise ConfigError(f"ppo-real trains for exactly one of steps= or epochs=, got steps={steps}, epochs={epochs}")
    if epochs is not None:
        if epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {epochs}")
        return n_steps, int(epochs)
    assert steps is not None
    if steps < n_envs:
        raise ConfigError(f"ppo-real needs a budget of at least {n_envs} real steps (one per env), got {steps}")
    n_steps = min(n_steps, steps // n_envs)
    return n_steps, steps // (n_envs * n_steps)


def _minatar_extractor(conv_channels: int, hidden: int) -> type:
    """The MinAtar-paper network as an SB3 features extractor (HWC input, permuted here)."""
    import torch
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
    from torch import nn

    class MinAtarCNN(BaseFeaturesExtractor):
        def __init__(self, observation_space: Any, features_dim: int = hidden) -> None:
            super().__init__(observation_space, features_dim)
            height, width, channels = observation_space.shape
            self.conv = nn.Sequential(nn.Conv2d(channels, conv_channels, 3), nn.ReLU(), nn.Flatten())
            flat = conv_channels * (height - 2) * (width - 2)
            self.linear = nn.Sequential(nn.Linear(flat, features_dim), nn.ReLU())

        def forward(self, observations: torch.Tensor) -> torch.Tensor:
            return self.linear(self.conv(observations.float().permute(0, 3, 1, 2)))

    return MinAtarCNN


def _build_ppo(env: Any, hp: dict[str, Any], n_steps: int, total: int, seed: int, device: str) -> Any:
    """An SB3 PPO over ``env`` with ``hp``; the learning rate anneals to 0 over ``total`` steps."""
    from stable_baselines3 import PPO

    lr0 = float(hp["learning_rate"])
    learning_rate: Any = (lambda remaining: lr0 * remaining) if hp["anneal_lr"] else lr0
    policy_kwargs: dict[str, Any] = {"optimizer_kwargs": {"eps": float(hp["adam_eps"])}}
    if hp["policy"] == "cnn-minatar":
        policy_kwargs.update(
            features_extractor_class=_minatar_extractor(int(hp["conv_channels"]), int(hp["hidden"])),
            net_arch=[],
        )
    rollout = int(hp["n_envs"]) * n_steps
    minibatches = max(1, int(hp["n_envs"]) * int(hp["n_steps"]) // int(hp["batch_size"]))
    return PPO(
        "MlpPolicy",
        env,
        learning_rate=learning_rate,
        n_steps=n_steps,
        batch_size=max(1, rollout // minibatches),  # shorter rollouts (tiny budgets): same minibatch count
        n_epochs=int(hp["n_epochs"]),
        gamma=float(hp["gamma"]),
        gae_lambda=float(hp["gae_lambda"]),
        clip_range=float(hp["clip_range"]),
        ent_coef=float(hp["ent_coef"]),
        vf_coef=float(hp["vf_coef"]),
        max_grad_norm=float(hp["max_grad_norm"]),
        policy_kwargs=policy_kwargs,
        seed=seed,
        device=device,
        verbose=0,
    )


class PPORealAgent:
    """SB3 PPO trained from scratch on the real env (``train``), judged there (``evaluate``).

    Args:
        env_id: Real env id (``"MinAtar/Breakout-v1"``, ``"CartPole-v1"``, ...).
        device: Torch device.
        env_kwargs: Extra ``make_env`` arguments (training and evaluation envs alike).
        preset: Ignored (the settings follow the observation space, see the module docstring).
        deterministic: Greedy actions at evaluation (default) instead of sampled ones.
        **overrides: Replace entries of the hyper-parameter table (e.g. ``learning_rate=2.5e-4``).
    """

    name = "ppo-real"
    requires_checkpoint = True

    def __init__(
        self,
        env_id: str,
        device: str = "cpu",
        env_kwargs: dict[str, Any] | None = None,
        preset: str | None = None,
        deterministic: bool = True,
        **overrides: Any,
    ) -> None:
        self.env_id, self.device, self.preset = env_id, device, preset
        self.env_kwargs = dict(env_kwargs or {})
        self.deterministic = bool(deterministic)
        self._eval = RealEnvEvaluator(env_id, self.env_kwargs)
        self.hyperparameters = hyperparameters_for(self._eval.env().observation_space)
        unknown = sorted(set(overrides) - set(self.hyperparameters))
        if unknown:
            raise ConfigError(f"unknown ppo-real setting(s) {unknown}; known: {sorted(self.hyperparameters)}")
        self.hyperparameters.update(overrides)
        self.model: Any = None
        self.train_info: dict[str, Any] = {}

    def _vec_env(self, n_envs: int, seed: int) -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

        kwargs = self.env_kwargs
        venv = VecMonitor(DummyVecEnv([lambda: make_real_env(self.env_id, **kwargs) for _ in range(n_envs)]))
        venv.seed(seed)  # sub-env i resets with seed + i
        return venv

    def train(
        self,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        log_dir: str | None = None,
    ) -> None:
        """Trains a fresh PPO for at most ``steps`` real agent steps (or ``epochs`` PPO iterations).

        Raises:
            ConfigError: Neither or both budgets given, or a budget below one step per env.
        """
        from stable_baselines3.common.logger import configure

        hp = self.hyperparameters
        n_envs = int(hp["n_envs"])
        n_steps, iterations = rollout_plan(steps, epochs, n_envs, int(hp["n_steps"]))
        total = iterations * n_envs * n_steps
        venv = self._vec_env(n_envs, seed)
        start = time.perf_counter()
        try:
            self.model = _build_ppo(venv, hp, n_steps, total, seed, self.device)
            if log_dir is not None:
                Path(log_dir).mkdir(parents=True, exist_ok=True)
                self.model.set_logger(configure(str(log_dir), ["csv"]))
            self.model.learn(total_timesteps=total, progress_bar=False)
            episodes = list(self.model.ep_info_buffer)
        finally:
            venv.close()
        self.train_info = {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "seed": seed,
            "budget_steps": steps,
            "budget_epochs": epochs,
            "real_steps": int(self.model.num_timesteps),
            "iterations": iterations,
            "n_steps": n_steps,
            "hyperparameters": hp,
            "wall_seconds": round(time.perf_counter() - start, 1),
            "last_train_episode_returns": [float(e["r"]) for e in episodes],
        }
        if log_dir is not None:
            self.save(log_dir)

    def save(self, directory: str | Path) -> Path:
        """Writes ``policy.pt`` (state dict) and ``ppo_config.json`` into ``directory``."""
        import torch

        if self.model is None:
            raise CheckpointError("no trained policy to save; call train() first")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.policy.state_dict(), out / POLICY_FILE)
        (out / CONFIG_FILE).write_text(json.dumps(self.train_info, indent=2) + "\n")
        return out

    def load_checkpoint(self, path: str | Path) -> None:
        """Loads ``policy.pt`` (a directory holding it, or the file) written by :meth:`save`.

        Weights are read with ``weights_only=True``; ``ppo_config.json`` next to them gives the
        network settings.

        Raises:
            CheckpointError: Missing files, or weights that do not fit this env's policy.
        """
        import torch

        target = Path(path)
        weights = target / POLICY_FILE if target.is_dir() else target
        config = weights.parent / CONFIG_FILE
        if not weights.is_file() or not config.is_file():
            raise CheckpointError(f"{path}: expected {POLICY_FILE} and {CONFIG_FILE} written by ppo-real")
        try:
            info = json.loads(config.read_text())
            hp = {**self.hyperparameters, **dict(info["hyperparameters"])}
            venv = self._vec_env(1, 0)
            try:
                model = _build_ppo(venv, {**hp, "n_envs": 1}, 8, 8, 0, self.device)
            finally:
                venv.close()
            state = torch.load(weights, map_location=self.device, weights_only=True)
            model.policy.load_state_dict(state)
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as err:
            raise CheckpointError(f"could not load ppo-real policy {weights}: {type(err).__name__}: {err}") from err
        self.model, self.train_info = model, info

    def evaluate(
        self,
        num_episodes: int,
        render: bool = False,
        seed: int | None = None,
        progress: Callable[[int], Any] | None = None,
    ) -> EvaluationResult:
        """Plays ``num_episodes`` episodes in the real env with the trained policy."""
        if self.model is None:
            raise CheckpointError("ppo-real has no policy: train it (--steps) or load a checkpoint first")
        model = self.model
        model.policy.set_training_mode(False)

        def act(obs: np.ndarray) -> Any:
            return model.predict(obs, deterministic=self.deterministic)[0]

        def on_start(ep_seed: int | None) -> None:
            if not self.deterministic and ep_seed is not None:
                model.set_random_seed(int(ep_seed))

        return self._eval.run(act, num_episodes, seed=seed, render=render, on_episode_start=on_start,
                              progress=progress)

    def close(self) -> None:
        """Closes the real env."""
        self._eval.close()


AGENT_NAME, AGENT_ALIASES = "ppo-real", ("ppo_real",)


def register_model_free_agents() -> str:
    """Registers ``ppo-real`` in the agent registry unless it is there already; returns its name.

    Called when this module is imported (``wmenv benchmark`` and the MinAtar 100k suite import it)
    and again by the suite, so a registry restored by a test still finds the agent.
    """
    if AGENT_NAME not in AGENTS.known():
        AGENTS.register(AGENT_NAME, PPORealAgent, aliases=[a for a in AGENT_ALIASES if a not in AGENTS.known()])
    return AGENT_NAME


register_model_free_agents()
