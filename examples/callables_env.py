"""Your own model as a Gymnasium env with four callables, no base class to inherit from.

``WorldModelEnv(model, observation_space=..., action_space=..., reset_fn=..., transition_fn=...,
action_transform_fn=..., max_episode_steps=...)`` wraps any object: here a toy "point on a line"
model in plain NumPy. ``reset_fn`` draws a start, ``transition_fn`` predicts the next state, the
reward and whether the episode ended, and ``action_transform_fn`` maps the env's action (an
``int`` for ``Discrete``) to what the model takes (a force). The result passes Gymnasium's
``check_env`` and trains a Stable-Baselines3 PPO agent like any other env.

Usage::

    python examples/callables_env.py [--ppo-steps 4096]
"""

from __future__ import annotations

import argparse
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.utils.env_checker import check_env

from wmenv.envs import WorldModelEnv


class PointModel:
    """A toy learned-model stand-in: position and velocity of a point pushed left or right."""

    def __init__(self, dt: float = 0.1, friction: float = 0.1) -> None:
        self.dt, self.friction = dt, friction

    def predict(self, state: np.ndarray, force: float) -> np.ndarray:
        """Next ``[position, velocity]``."""
        pos, vel = state
        vel = (1 - self.friction) * vel + self.dt * force
        return np.array([pos + self.dt * vel, vel], dtype=np.float32)


def reset_fn(model: PointModel, seed: int | None = None, options: dict | None = None) -> dict[str, Any]:
    """Start at a random position, at rest (``seed`` makes it reproducible)."""
    rng = np.random.default_rng(seed)
    state = np.array([rng.uniform(-1.5, 1.5), 0.0], dtype=np.float32)
    return {"state": state, "observation": state}


def transition_fn(model: PointModel, state: np.ndarray, force: float) -> dict[str, Any]:
    """Reward 1 near 0 (|position| < 0.25); the episode ends when the point leaves [-2, 2]."""
    nxt = model.predict(state, force)
    return {
        "state": nxt,
        "observation": nxt,
        "reward": float(abs(nxt[0]) < 0.25),
        "terminated": bool(abs(nxt[0]) > 2.0),
    }


def action_transform_fn(model: PointModel, action: int) -> float:
    """Discrete action 0 / 1 / 2 -> force -1 / 0 / +1."""
    return float(action) - 1.0


def make_env(max_episode_steps: int = 100) -> WorldModelEnv:
    """The toy model as a ``gymnasium.Env``."""
    return WorldModelEnv(
        PointModel(),
        observation_space=gym.spaces.Box(np.array([-3, -2], np.float32), np.array([3, 2], np.float32)),
        action_space=gym.spaces.Discrete(3),
        reset_fn=reset_fn,
        transition_fn=transition_fn,
        action_transform_fn=action_transform_fn,
        max_episode_steps=max_episode_steps,
    )


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ppo-steps", type=int, default=4096)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    env = make_env()
    check_env(env, skip_render_check=True)  # Gymnasium's own conformance checks
    obs, _ = env.reset(seed=0)
    total, done = 0.0, False
    while not done:  # a random episode
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        total, done = total + reward, terminated or truncated
    print(f"random policy: return {total:.1f}")

    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    agent = PPO("MlpPolicy", env, n_steps=512, batch_size=128, learning_rate=3e-3, seed=0, device="cpu")
    agent.learn(args.ppo_steps)
    mean, std = evaluate_policy(agent, Monitor(make_env()), n_eval_episodes=5)
    print(f"PPO after {args.ppo_steps} steps: return {mean:.1f} ± {std:.1f} (max 100)")
    return {"random_return": total, "ppo_return": float(mean)}


if __name__ == "__main__":
    main()
