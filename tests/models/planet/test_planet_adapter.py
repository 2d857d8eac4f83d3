"""PlaNet through every env face (wmenv.testing checkers), and its planner acting in imagination."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.planet.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro
from wmenv.core import ReplayStartStates
from wmenv.envs import WorldModelVectorEnv
from wmenv.models.planet import PlanetAgent, to_world_model
from wmenv.registry import get_model_spec
from wmenv.testing import check_world_model_env


def _start_states(obs_space: gym.Space, act_space: gym.Space) -> ReplayStartStates:
    return ReplayStartStates(make_batch(obs_space, act_space, b=4, t=8).reshape(-1), context_length=2)


@pytest.mark.parametrize(
    ("obs_space", "act_space", "mode"),
    [(VECTOR, BOX, "decoded"), (VECTOR, DISCRETE, "latent"), (IMAGE, DISCRETE, "decoded")],
)
def test_adapter_passes_the_face_checkers(obs_space: gym.Space, act_space: gym.Space, mode: str) -> None:
    agent = PlanetAgent(micro(), obs_space, act_space).eval()
    report = check_world_model_env(
        to_world_model(agent, observation_mode=mode), _start_states(obs_space, act_space),
        max_episode_steps=5, num_envs=2, steps=10,
    )
    assert set(report.values()) == {"ok"}


def test_registry_extra_is_the_adapter_and_specs_follow_the_mode() -> None:
    assert get_model_spec("planet").to_world_model is to_world_model
    agent = PlanetAgent(micro(), IMAGE, BOX)
    latent = to_world_model(agent, observation_mode="latent")
    assert latent.observation_spec.shape == (agent.world_model.rssm.feature_dim,)
    decoded = to_world_model(agent.world_model, observation_mode="decoded")
    assert decoded.observation_spec.shape == (64, 64, 3) and decoded.observation_spec.dtype == torch.uint8
    with pytest.raises(TypeError, match="expects a PlanetAgent or PlanetWorldModel"):
        to_world_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="observation_mode must be 'latent' or 'decoded'"):
        to_world_model(agent, observation_mode="pixels")


def test_burn_in_uses_the_whole_context_and_steps_are_seeded() -> None:
    agent = PlanetAgent(micro(), VECTOR, BOX).eval()
    wm = to_world_model(agent)
    context = make_batch(VECTOR, BOX, b=3, t=4)
    context["is_first"][:] = False
    s1 = wm.initial_state(context, generator=torch.Generator().manual_seed(0))
    s2 = wm.initial_state(context[:, 2:], generator=torch.Generator().manual_seed(0))
    assert s1["state", "deter"].shape == (3, 16) and not torch.equal(s1["state", "deter"], s2["state", "deter"])
    action = torch.full((3, 1), 0.5)
    a = wm.step(s1["state"], action, generator=torch.Generator().manual_seed(1))
    b = wm.step(s1["state"], action, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a["observation"], b["observation"]) and a["reward"].shape == (3,)
    assert a["terminated"].dtype == torch.bool and "continue_prob" in a["info"].keys()


@pytest.mark.parametrize("act_space", [BOX, DISCRETE])
def test_the_same_planner_acts_in_imagination(act_space: gym.Space) -> None:
    agent = PlanetAgent(micro(), VECTOR, act_space).eval()
    wm = to_world_model(agent, observation_mode="latent")
    policy = wm.make_policy(seed=0)
    env = WorldModelVectorEnv(wm, _start_states(VECTOR, act_space), 3, max_episode_steps=4)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        action = policy(obs)
        assert action in env.action_space
        obs, reward, term, trunc, _ = env.step(action)
        assert reward.shape == (3,) and np.isfinite(reward).all()
    # the planner maximises the model's imagined return: better than random sequences on average
    state = wm.state_from_latent(torch.as_tensor(obs))
    planner = agent.planner()
    with torch.no_grad():
        rand = planner.evaluate(state, _random_plans(planner, 3, act_space), agent.world_model.plan_step)
    planned = planner.plan(state, agent.world_model.plan_step, generator=torch.Generator().manual_seed(0))
    assert float(planned["return"].mean()) >= float(rand.mean())
    with pytest.raises(ValueError, match="plans from latent observations"):
        to_world_model(agent, observation_mode="decoded").make_policy()


def _random_plans(planner, b: int, act_space: gym.Space) -> torch.Tensor:
    c = planner.config
    g = torch.Generator().manual_seed(3)
    if planner.discrete:
        idx = torch.randint(planner.action_dim, (b, c.candidates, c.horizon), generator=g)
        return torch.nn.functional.one_hot(idx, planner.action_dim).float()
    return torch.rand(b, c.candidates, c.horizon, planner.action_dim, generator=g) * 2 - 1
