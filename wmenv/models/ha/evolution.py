"""Controller training by CMA-ES, with the population evaluated in parallel in the dream or the real env.

Dream: one :class:`~wmenv.core.ImaginationCore` over the MDN-RNN with ``P x E`` members (``P``
candidates, ``E`` episodes each) and temperature ``tau``; every candidate starts from the same
``E`` real start observations (common random numbers). Real: one ``SyncVectorEnv`` of ``P x E``
envs, episode ``e`` of every candidate reset with the same seed. Either way one batched forward
pass per step acts for the whole population.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from tensordict import TensorDictBase

from wmenv.core.imagination import ImaginationCore
from wmenv.core.protocol import StartStates
from wmenv.models.ha.adapter import to_world_model
from wmenv.models.ha.agent import WorldModelsAgent, WorldModelsPolicy
from wmenv.models.ha.config import CMAConfig

__all__ = ["TiledStartStates", "dream_returns", "real_returns", "train_controller"]


class TiledStartStates:
    """Draw ``E`` contexts and repeat them for each of ``P`` candidates (member ``p * E + e`` gets ``e``).

    Args:
        base: the real start-state source.
        repeats: ``P``.
    """

    def __init__(self, base: StartStates, repeats: int) -> None:
        self.base, self.repeats = base, int(repeats)

    def sample(
        self,
        batch_size: int,
        *,
        generator: torch.Generator,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> TensorDictBase:
        if batch_size % self.repeats:
            raise ValueError(f"batch {batch_size} is not a multiple of the {self.repeats} candidates")
        one = self.base.sample(batch_size // self.repeats, generator=generator, seed=seed, options=options)
        return one.unsqueeze(0).expand(self.repeats, *one.batch_size).reshape(batch_size).clone()


@torch.no_grad()
def dream_returns(
    agent: WorldModelsAgent,
    params: torch.Tensor,
    episodes: int,
    start_states: StartStates,
    *,
    horizon: int,
    temperature: float,
    seed: int,
) -> torch.Tensor:
    """Returns ``(P, E)`` of ``P`` candidate controllers over ``E`` dreamed episodes each.

    Args:
        agent: the agent with trained V and M.
        params: ``(P, num_params)`` controller parameters.
        episodes: ``E``.
        start_states: real start observations.
        horizon: step cap of a dreamed episode.
        temperature: ``tau``.
        seed: seed of the dream's generator (start states and sampling).
    """
    p = params.shape[0]
    dream = to_world_model(agent, "latent", temperature)
    core = ImaginationCore(dream, TiledStartStates(start_states, p), p * episodes, max_episode_steps=horizon,
                           validate_actions=False)
    obs = core.reset(seed=seed)
    params = params.to(obs.device)
    alive = torch.ones(p * episodes, dtype=torch.bool, device=obs.device)
    total = torch.zeros(p * episodes, device=obs.device)
    for _ in range(horizon):
        act = agent.controller.population_act(params, obs.reshape(p, episodes, -1))
        out = core.step(act.reshape(p * episodes, *act.shape[2:]))
        total += out.reward * alive
        alive &= ~(out.terminated | out.truncated)
        if not bool(alive.any()):
            break
        obs = out.observation
    return total.reshape(p, episodes).cpu()


@torch.no_grad()
def real_returns(
    agent: WorldModelsAgent,
    params: torch.Tensor | None,
    episodes: int,
    env_fn: Callable[[], gym.Env],
    *,
    seed: int,
    max_steps: int | None = None,
) -> torch.Tensor:
    """Returns ``(P, E)`` of candidate controllers in a vector env of ``P x E`` real envs.

    Args:
        agent: the agent (V and M run on the real observations).
        params: ``(P, num_params)``, or ``None`` for the agent's own controller (``P = 1``).
        episodes: ``E``; episode ``e`` of every candidate resets with ``seed + e``.
        env_fn: makes one real env.
        seed: base seed.
        max_steps: optional cap on episode length.
    """
    p = 1 if params is None else params.shape[0]
    n = p * episodes
    venv = gym.vector.SyncVectorEnv([env_fn for _ in range(n)], autoreset_mode=AutoresetMode.NEXT_STEP)
    policy = WorldModelsPolicy(agent, params)
    try:
        obs, _ = venv.reset(seed=[seed + (i % episodes) for i in range(n)])
        alive = np.ones(n, dtype=bool)
        total = np.zeros(n)
        steps = 0
        while alive.any() and (max_steps is None or steps < max_steps):
            action = policy(obs)
            obs, reward, term, trunc, _ = venv.step(action)
            total += reward * alive
            alive &= ~(term | trunc)
            steps += 1
    finally:
        venv.close()
    return torch.as_tensor(total, dtype=torch.float32).reshape(p, episodes)


def train_controller(
    agent: WorldModelsAgent,
    config: CMAConfig,
    *,
    temperature: float,
    start_states: StartStates | None = None,
    env_fn: Callable[[], gym.Env] | None = None,
    log: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Search the controller's parameters with CMA-ES; the final CMA-ES mean is loaded into the agent.

    Args:
        agent: agent with trained V and M (else :class:`~wmenv.models.ha.agent.StageOrderError`).
        config: :class:`CMAConfig` (``where`` picks dream or real fitness).
        temperature: dream temperature ``tau``.
        start_states: real start observations for dreams (needed when ``where="dream"``).
        env_fn: makes one real env (needed when ``where="real"`` or ``eval_every > 0``).
        log: called with each generation's metrics.

    Returns:
        One metrics dict per generation: ``fitness_mean``, ``fitness_max``, ``sigma``, ``seconds``
        and, every ``eval_every`` generations, ``real_return`` of the CMA-ES mean (monitoring only:
        it never feeds back into the search).
    """
    agent.require_trained("controller")
    import cma  # imported here: it pulls in scipy (seconds)

    if config.where == "dream" and start_states is None:
        raise ValueError("cma.where='dream' needs start_states (real observations to start dreams from)")
    if (config.where == "real" or config.eval_every) and env_fn is None:
        raise ValueError("cma.where='real' and cma.eval_every > 0 need env_fn (a real env factory)")
    agent.eval()
    x0 = agent.controller.get_flat().double().numpy()
    if config.init == "zeros":
        x0 = np.zeros_like(x0)
    es = cma.CMAEvolutionStrategy(x0, config.sigma0, {"popsize": config.popsize, "seed": config.seed + 1,
                                                      "verbose": -9})
    history: list[dict[str, float]] = []
    for gen in range(config.generations):
        t0 = time.perf_counter()
        candidates = es.ask()
        params = torch.as_tensor(np.stack(candidates), dtype=torch.float32)
        seed = config.seed * 100_003 + gen
        if config.where == "dream":
            returns = dream_returns(agent, params, config.episodes_per_candidate, start_states,
                                    horizon=config.dream_horizon, temperature=temperature, seed=seed)
        else:
            returns = real_returns(agent, params, config.episodes_per_candidate, env_fn, seed=seed,
                                   max_steps=config.real_max_steps)
        fitness = returns.mean(1).double().numpy()
        es.tell(candidates, (-fitness).tolist())
        row = {"generation": float(gen + 1), "fitness_mean": float(fitness.mean()),
               "fitness_max": float(fitness.max()), "sigma": float(es.sigma)}
        if config.eval_every and (gen + 1) % config.eval_every == 0:
            mean = torch.as_tensor(es.mean, dtype=torch.float32)[None]
            real = real_returns(agent, mean, config.eval_episodes, env_fn, seed=10_000 + gen,
                                max_steps=config.real_max_steps)
            row["real_return"] = float(real.mean())
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        if log is not None:
            log(row)
    agent.controller.set_flat(np.asarray(es.mean))
    agent.mark_trained("controller")
    return history
