"""Your own PyTorch model through the ``WorldModel`` protocol: batched, seeded, every face for free.

A tiny MLP learns CartPole's dynamics (next state, "did the pole fall") from random real
transitions. ``MLPWorldModel`` then implements the protocol: ``observation_spec`` and
``action_spec``, ``initial_state(context)`` and ``step(state, action)``, batched TensorDicts in and
out, randomness only from the given generator. Start states are real first
observations (``TensorDictStartStates``), never noise. The same object then backs ``WorldModelVectorEnv``
(256 envs, one forward pass per step) and passes ``wmenv.testing.check_world_model_env``, the
Gymnasium / SB3 / TorchRL checkers over all faces.

Usage::

    python examples/own_model_protocol.py [--steps 5000]
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torch import nn
from torchrl.data import Bounded, Categorical

from wmenv.core import TensorDictStartStates
from wmenv.envs import WorldModelVectorEnv
from wmenv.testing import check_world_model_env

LIMITS = np.array([4.8, 5.0, 0.418, 5.0], dtype=np.float32)  # CartPole positions / velocities we clamp to


class Dynamics(nn.Module):
    """``(state (B, 4), one-hot action (B, 2)) -> (state change (B, 4), fall logit (B,))``."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(6, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 5)
        )

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([state, nn.functional.one_hot(action.long(), 2).float()], -1))
        return out[:, :4], out[:, 4]


class MLPWorldModel:
    """The protocol: specs plus two batched calls. State is just the CartPole state ``(B, 4)``.

    Args:
        dynamics: a trained :class:`Dynamics`.
    """

    def __init__(self, dynamics: Dynamics) -> None:
        self.dynamics = dynamics.eval()
        limits = torch.as_tensor(LIMITS)
        self.observation_spec = Bounded(-limits, limits, shape=(4,), dtype=torch.float32)
        self.action_spec = Categorical(2, shape=(), dtype=torch.int64)

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        """Start from a batch of real observations ``context["observation"]`` (B, 4)."""
        obs = context["observation"].float()
        return TensorDict({"state": {"x": obs}, "observation": obs}, batch_size=context.batch_size[:1])

    @torch.no_grad()
    def step(
        self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator
    ) -> TensorDictBase:
        """One forward pass for the whole batch; the fall is sampled from the generator."""
        x = state["x"]
        delta, fall_logit = self.dynamics(x, action)
        limits = torch.as_tensor(LIMITS)
        nxt = torch.maximum(torch.minimum(x + delta, limits), -limits)
        fell = torch.rand(fall_logit.shape, generator=generator) < torch.sigmoid(fall_logit)
        return TensorDict(
            {"state": {"x": nxt}, "observation": nxt, "reward": torch.ones(x.shape[0]), "terminated": fell},
            batch_size=x.shape[:1],
        )


def collect(steps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random-policy CartPole transitions: ``obs``, ``action``, ``next_obs``, ``terminated``, ``first``."""
    env = gym.make("CartPole-v1")
    env.action_space.seed(seed)
    rows: dict[str, list] = {"obs": [], "action": [], "next_obs": [], "terminated": [], "first": []}
    obs, _ = env.reset(seed=seed)
    first = True
    for _ in range(steps):
        action = env.action_space.sample()
        nxt, _, terminated, truncated, _ = env.step(action)
        for key, value in zip(rows, (obs, action, nxt, terminated, first)):
            rows[key].append(value)
        first = terminated or truncated
        obs = env.reset()[0] if first else nxt
    return {k: torch.as_tensor(np.array(v)) for k, v in rows.items()}


def fit(data: dict[str, torch.Tensor], updates: int = 1500, seed: int = 0) -> Dynamics:
    """Regress the state change; classify the fall (unweighted, so its probability stays calibrated)."""
    torch.manual_seed(seed)
    model = Dynamics()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    fall = data["terminated"].float()
    for _ in range(updates):
        idx = torch.randint(0, len(fall), (256,))
        delta, logit = model(data["obs"][idx], data["action"][idx])
        loss = nn.functional.mse_loss(delta, data["next_obs"][idx] - data["obs"][idx])
        loss = loss + nn.functional.binary_cross_entropy_with_logits(logit, fall[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000, help="random real transitions to learn from")
    parser.add_argument("--updates", type=int, default=1500)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    data = collect(args.steps)
    world_model = MLPWorldModel(fit(data, args.updates))
    starts = data["obs"][data["first"]]  # real first observations: imagined episodes start where real ones do
    start_states = TensorDictStartStates(TensorDict({"observation": starts}, batch_size=[len(starts)]))
    print("conformance:", check_world_model_env(world_model, start_states))

    envs = WorldModelVectorEnv(
        world_model, start_states, num_envs=256, max_episode_steps=200, autoreset_mode="same_step"
    )
    envs.reset(seed=0)
    lengths, alive, steps = [], np.zeros(256, dtype=int), 0
    while len(lengths) < 256 and steps < 200:  # random policy: how long do imagined episodes last?
        _, _, terminated, truncated, _ = envs.step(envs.action_space.sample())
        alive += 1
        steps += 1
        for i in np.flatnonzero(terminated | truncated):
            lengths.append(int(alive[i]))
        alive[terminated | truncated] = 0
    real = float(np.mean(np.diff(np.flatnonzero(np.r_[True, data["terminated"].numpy()]))))
    print(f"random-policy episode length: imagined {np.mean(lengths):.1f} vs real {real:.1f} steps")
    return {"imagined_length": float(np.mean(lengths)), "real_length": real}


if __name__ == "__main__":
    main()
