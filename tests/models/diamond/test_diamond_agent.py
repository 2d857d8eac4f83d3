"""The diffusion family's actor-critic: lambda-returns, training in imagination, the real-env policy."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.core.errors import ConfigError
from wmenv.models.diamond import DiamondPolicy, lambda_returns
from wmenv.registry import create_model, get_model_spec
from wmenv.testing import random_replay_batch

MINATAR = gym.spaces.Box(0, 1, (10, 10, 4), np.uint8)
DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def test_lambda_returns_limits():
    reward = torch.tensor([[1.0, 0.0, 2.0]])
    end = torch.zeros(1, 3)
    value = torch.tensor([[0.5, 1.0, 2.0, 4.0]])
    g = 0.9
    mc = lambda_returns(reward, end, value, g, 1.0)  # lambda = 1: discounted return + bootstrap
    torch.testing.assert_close(mc[0, 0], torch.tensor(1 + g * 0 + g**2 * 2 + g**3 * 4))
    td = lambda_returns(reward, end, value, g, 0.0)  # lambda = 0: one-step targets
    torch.testing.assert_close(td, reward + g * value[:, 1:])
    cut = lambda_returns(reward, torch.tensor([[0.0, 1.0, 0.0]]), value, g, 0.95)
    torch.testing.assert_close(cut[0, 1], torch.tensor(0.0))  # termination on arriving at step 2: no future
    torch.testing.assert_close(cut[0, 0], torch.tensor(1 + g * (0.05 * 1.0 + 0.95 * 0.0)))


def test_actor_critic_loss_trains_only_the_actor_critic_and_respects_terminal_starts():
    model = create_model("diamond", observation_space=MINATAR, action_space=DISCRETE, preset="tiny",
                         actor_critic__horizon=3)
    model.set_phase("actor_critic")
    batch = random_replay_batch(MINATAR, DISCRETE, 4, 2, seed=1)
    batch["observation"] = batch["observation"] % 2
    batch["is_first"][:] = False
    out = model.loss(batch)
    total = out["loss_actor"] + out["loss_value"] + out["loss_entropy"]
    total.backward()
    assert all(p.grad is None for p in model.world_model.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.actor_critic.parameters())
    batch["terminated"][:, -1] = True  # every start is terminal: nothing to learn
    model.zero_grad()
    out = model.loss(batch)
    assert float(out["loss_actor"].detach()) == 0.0 and float(out["loss_value"].detach()) == 0.0


def test_discrete_policy():
    model = create_model("diamond", observation_space=MINATAR, action_space=DISCRETE, preset="tiny")
    obs = np.random.default_rng(0).integers(0, 2, (5, 10, 10, 4)).astype(np.uint8)
    policy = get_model_spec("diamond").policy(model, seed=3, explore=False)
    assert isinstance(policy, DiamondPolicy)
    a = policy(obs)
    assert a.shape == (5,) and a.dtype == np.int64 and set(a.tolist()) <= {0, 1, 2}
    again = model.make_policy(explore=False, seed=3)
    assert np.array_equal(again(obs), a)  # same seed, same samples
    policy.reset(np.array([True, False, False, False, False]))
    assert float(policy.state[0][0].abs().sum()) == 0.0
    policy.reset()
    assert policy.state is None
    model.config = replace(model.config, actor_critic=replace(model.config.actor_critic, eval_sample=False))
    mode = model.make_policy(explore=False, seed=0)
    probs = torch.softmax(model.actor_critic(model.world_model.codec.encode(torch.as_tensor(obs)),
                                             model.actor_critic.initial_state(5, torch.device("cpu")))[0], -1)
    assert np.array_equal(mode(obs), probs.argmax(-1).numpy())  # the most likely action
    eps = create_model("diamond", observation_space=MINATAR, action_space=DISCRETE, preset="tiny",
                       actor_critic__explore_epsilon=1.0).make_policy(explore=True, seed=0)
    draws = np.concatenate([eps(obs) for _ in range(40)])
    assert set(draws.tolist()) == {0, 1, 2}


def test_continuous_actions():
    model = create_model("diamond", observation_space=MINATAR, action_space=BOX, preset="tiny",
                         actor_critic__horizon=2)
    batch = random_replay_batch(MINATAR, BOX, 2, 5)
    batch["observation"] = batch["observation"] % 2
    batch["action"] = batch["action"].clamp(torch.as_tensor(BOX.low), torch.as_tensor(BOX.high))
    out = model.loss(batch)
    assert all(torch.isfinite(v) for k, v in out.items() if k.startswith("loss_"))
    obs = np.zeros((3, 10, 10, 4), np.uint8)
    for explore in (True, False):
        a = model.make_policy(explore=explore, seed=0)(obs)
        assert a.shape == (3, 2) and a.dtype == np.float32
        assert np.all(a >= BOX.low - 1e-6) and np.all(a <= BOX.high + 1e-6)


def test_actor_critic_refuses_pooling_frames_away():
    with pytest.raises(ConfigError, match="pool"):
        create_model("diamond", observation_space=MINATAR, action_space=DISCRETE, preset="tiny",
                     actor_critic__channels=(4, 4, 4, 4, 4), actor_critic__down=(True,) * 5)
