"""Imagined steps per second at N = 1 .. 1024 envs: why the faces batch.

``WorldModelVectorEnv`` steps all ``N`` imagined envs with one forward pass of the world model, so
the cost of a step grows far slower than ``N``. This measures a Dreamer world model (the ``tiny``
preset for CartPole; weights do not matter for speed, so none are trained unless you pass a
``--checkpoint``) on one CPU thread. ``wmenv perf`` compares every face on a fixed toy model.

Usage::

    python examples/batched_throughput.py [--checkpoint runs/cartpole] [--sizes 1 4 16 64 256 1024]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tensordict import TensorDict

import wmenv
from wmenv.core import TensorDictStartStates


def dreamer_world_model(checkpoint: str | None) -> tuple[Any, Any]:
    """A trained run's world model and replay starts, or an untrained tiny Dreamer with real starts."""
    if checkpoint is not None:
        run = wmenv.open_run(checkpoint)
        model = run.world_model(observation_mode="latent")
        return model, run.start_states(world_model=model)
    env = gym.make("CartPole-v1")
    model = wmenv.create_model("dreamer-wm", env=env, preset="tiny").eval()
    obs = np.stack([env.reset(seed=i)[0] for i in range(64)])  # real first observations
    starts = TensorDictStartStates(TensorDict({"observation": torch.as_tensor(obs)}, batch_size=[64]))
    to_world_model = wmenv.get_model_spec("dreamer-wm").to_world_model  # the family's adapter
    return to_world_model(model, observation_mode="latent"), starts


def steps_per_second(model: Any, starts: Any, n: int, steps: int) -> float:
    """Imagined env steps per second of a ``WorldModelVectorEnv`` of ``n`` envs (random actions)."""
    envs = wmenv.WorldModelVectorEnv(model, starts, num_envs=n, max_episode_steps=100)
    envs.reset(seed=0)
    envs.action_space.seed(0)
    actions = [envs.action_space.sample() for _ in range(steps + 3)]
    for a in actions[:3]:  # warm-up
        envs.step(a)
    start = time.perf_counter()
    for a in actions[3:]:
        envs.step(a)
    return n * steps / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[int, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default=None, help="run dir from `wmenv train` (default: untrained tiny)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256, 1024])
    parser.add_argument("--steps", type=int, default=30, help="timed vector steps per size")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    model, starts = dreamer_world_model(args.checkpoint)
    rates = {n: steps_per_second(model, starts, n, args.steps) for n in args.sizes}
    print(f"{'N':>6} {'steps/s':>10} {'x N=1':>7}")
    for n, rate in rates.items():
        print(f"{n:>6} {rate:>10.0f} {rate / rates[args.sizes[0]]:>7.1f}")
    return rates


if __name__ == "__main__":
    main()
