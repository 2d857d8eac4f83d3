"""Stable-Baselines3 PPO (``MultiInputPolicy``) on a Dict observation, judged in the real env.

No registered family emits Dict observations yet, so this recipe builds one the way you would for
your own model: it wraps the decoded CartPole world model at the protocol level so that each
imagined observation is ``{"observation": decoded state, "last_action": one-hot previous action}``
(:class:`LastActionObservations`), and wraps the real env with a small Gymnasium wrapper that
emits the very same dict (:class:`LastActionWrapper`). ``WorldModelSB3VecEnv`` turns the composite
spec into a ``gymnasium.spaces.Dict`` and dict-of-arrays observations, which ``MultiInputPolicy``
reads. (``wmenv.testing.FakeWorldModel("dict")`` has a native ``{"vector", "image"}`` Dict
observation for tests, but no real env to be judged in.)

Usage::

    python -m integrations.sb3.ppo_dict                        # from the repo root; tiny world model first
    python -m integrations.sb3.ppo_dict --checkpoint runs/cartpole --total-steps 100000

Writes ``--out``: ``results.json``, ``returns.csv``, ``returns.png`` and ``policy.zip``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite

from integrations.common import prepare, recipe_parser, sb3_imagined_vec_env, sb3_learn_judged
from wmenv.core import UnsupportedSpaceError


class LastActionObservations:
    """A ``WorldModel`` whose observation is ``{"observation": inner observation, "last_action": a}``.

    ``a`` is the previous action, one-hot for discrete actions (zeros at an episode start).

    Args:
        model: any ``wmenv.core.WorldModel`` with a single-tensor observation.
    """

    def __init__(self, model: Any) -> None:
        if isinstance(model.observation_spec, Composite):
            raise UnsupportedSpaceError("the model already emits Dict observations; use it as it is")
        self.model = model
        self.action_spec = model.action_spec
        if isinstance(model.action_spec, Categorical):
            self.action_size = int(model.action_spec.space.n)
        else:
            self.action_size = int(np.prod(model.action_spec.shape))
        last = Bounded(-1.0, 1.0, shape=(self.action_size,), dtype=torch.float32)
        self.observation_spec = Composite(observation=model.observation_spec, last_action=last)

    def _encode(self, action: torch.Tensor) -> torch.Tensor:
        if isinstance(self.action_spec, Categorical):
            return torch.nn.functional.one_hot(action.long().reshape(-1), self.action_size).float()
        return action.float().reshape(action.shape[0], -1).clamp(-1, 1)

    def _wrap(self, out: TensorDictBase, last_action: torch.Tensor) -> TensorDictBase:
        fields = dict(out.items())  # state, reward, terminated, info pass through untouched
        obs = fields["observation"]
        fields["observation"] = TensorDict(
            {"observation": obs, "last_action": last_action.to(obs.device)}, batch_size=out.batch_size
        )
        return TensorDict(fields, batch_size=out.batch_size)

    def initial_state(self, context: TensorDictBase, *, generator: torch.Generator) -> TensorDictBase:
        out = self.model.initial_state(context, generator=generator)
        return self._wrap(out, torch.zeros(out.batch_size[0], self.action_size))

    def step(
        self, state: TensorDictBase, action: torch.Tensor, *, generator: torch.Generator
    ) -> TensorDictBase:
        return self._wrap(self.model.step(state, action, generator=generator), self._encode(action))


class LastActionWrapper(gym.Wrapper):
    """The real-env side of :class:`LastActionObservations`: the same dict, from real observations."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.action_space
        self.discrete = isinstance(space, gym.spaces.Discrete)
        self.action_size = int(space.n) if self.discrete else int(np.prod(space.shape))
        last = gym.spaces.Box(-1.0, 1.0, (self.action_size,), np.float32)
        self.observation_space = gym.spaces.Dict({"observation": env.observation_space, "last_action": last})

    def _obs(self, obs: Any, action: Any) -> dict[str, np.ndarray]:
        last = np.zeros(self.action_size, np.float32)
        if action is not None and self.discrete:
            last[int(np.asarray(action))] = 1.0
        elif action is not None:
            last[:] = np.clip(np.asarray(action, np.float32).reshape(-1), -1, 1)
        return {"observation": np.asarray(obs, dtype=self.env.observation_space.dtype), "last_action": last}

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._obs(obs, None), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs, action), reward, terminated, truncated, info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the recipe; returns the results written to ``results.json``."""
    parser = recipe_parser(
        "SB3 PPO MultiInputPolicy on Dict observations, judged in the real env",
        total_steps=60_000,
        num_envs=64,
        horizon=64,
        eval_every=10_000,
        out="results/sb3_ppo_dict",
    )
    parser.add_argument("--n-steps", type=int, default=32, help="PPO rollout length per imagined env")
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args(argv)

    run = prepare(args)  # wmenv.open_run(--checkpoint), or a tiny world model trained first
    model_with_dict = LastActionObservations(run.world_model(observation_mode="decoded"))
    venv = sb3_imagined_vec_env(run, args, "dict", "MultiInputPolicy", "decoded", world_model=model_with_dict)
    model = PPO(
        "MultiInputPolicy",
        venv,
        n_steps=args.n_steps,
        batch_size=min(512, args.n_steps * args.num_envs),
        n_epochs=4,
        learning_rate=args.lr,
        gamma=0.98,
        seed=args.seed,
        device="cpu",
        verbose=0,
    )

    return sb3_learn_judged(
        model, run, args, "sb3-ppo-dict (MultiInputPolicy)", "decoded", real_wrap=LastActionWrapper
    )


if __name__ == "__main__":
    main()
