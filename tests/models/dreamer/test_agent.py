import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.models.dreamer.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro, train
from wmenv.models.dreamer import DreamerAgent, DreamerPolicy
from wmenv.registry import create_model


def _total(out) -> torch.Tensor:
    return sum(v for k, v in out.items() if k.startswith("loss_"))


@pytest.mark.parametrize(
    ("version", "act_space"), [("v3", DISCRETE), ("v3", BOX), ("v2", DISCRETE), ("v1", BOX)]
)
def test_agent_trains_and_loss_decreases(version: str, act_space: gym.Space) -> None:
    agent = DreamerAgent(micro(version), VECTOR, act_space)
    batch = make_batch(VECTOR, act_space)
    before = agent.loss(batch)
    assert {"loss_obs", "loss_reward", "loss_cont", "loss_kl", "loss_actor", "loss_critic"} <= set(
        before.keys()
    )
    train(agent, batch, 40)
    after = agent.loss(batch)
    recon = ("loss_obs", "loss_reward", "loss_cont")
    assert sum(float(after[k].detach()) for k in recon) < 0.8 * sum(float(before[k].detach()) for k in recon)
    assert torch.isfinite(_total(after))


@pytest.mark.parametrize(("obs_space", "act_space"), [(VECTOR, DISCRETE), (VECTOR, BOX), (IMAGE, DISCRETE)])
def test_every_group_gets_gradients_from_the_summed_loss(obs_space: gym.Space, act_space: gym.Space) -> None:
    agent = DreamerAgent(micro(), obs_space, act_space)
    _total(agent.loss(make_batch(obs_space, act_space, b=2, t=4))).backward()
    groups = agent.optim_groups()
    assert set(groups) == {"model", "actor", "critic"}
    for name, group in groups.items():
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in group["params"]), name
    grouped = {id(p) for g in groups.values() for p in g["params"]}
    trainable = {id(p) for p in agent.parameters() if p.requires_grad}
    assert grouped == trainable  # every trainable parameter in exactly one group, slow critic in none
    assert all(p.grad is None for p in agent.slow_critic.parameters())


@pytest.mark.parametrize(
    ("act_space", "key", "others"),
    [
        (DISCRETE, "loss_actor", ("world_model", "critic")),
        (BOX, "loss_actor", ("world_model", "critic")),  # dynamics backprop: flows through the frozen model
        (DISCRETE, "loss_critic", ("world_model", "actor")),
    ],
)
def test_losses_do_not_leak_into_other_components(act_space: gym.Space, key: str, others: tuple) -> None:
    agent = DreamerAgent(micro(), VECTOR, act_space)
    out = agent.loss(make_batch(VECTOR, act_space, b=2, t=4))
    out[key].backward()
    for name in others:
        leaked = [
            n
            for n, p in getattr(agent, name).named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0
        ]
        assert not leaked, f"{key} leaked into {name}: {leaked[:3]}"
    own = agent.actor if key == "loss_actor" else agent.critic
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in own.parameters())
    assert all(p.requires_grad for p in agent.world_model.parameters())  # unfrozen afterwards


def test_slow_critic_follows_critic() -> None:
    agent = DreamerAgent(micro(), VECTOR, DISCRETE)
    with torch.no_grad():
        for p in agent.critic.parameters():
            p.add_(1.0)
    gap = sum((s - f).abs().sum() for s, f in zip(agent.slow_critic.parameters(), agent.critic.parameters()))
    agent.after_update(0)
    new_gap = sum(
        (s - f).abs().sum() for s, f in zip(agent.slow_critic.parameters(), agent.critic.parameters())
    )
    assert new_gap < gap


@pytest.mark.parametrize(("act_space", "dtype"), [(DISCRETE, np.int64), (BOX, np.float32)])
def test_policy_acts_and_resets(act_space: gym.Space, dtype: type) -> None:
    agent = DreamerAgent(micro(), VECTOR, act_space)
    policy = agent.make_policy(explore=True, seed=0)
    assert isinstance(policy, DreamerPolicy)
    obs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    for _ in range(3):
        action = policy(obs)
        assert action.dtype == dtype and all(act_space.contains(a) for a in action)
    policy.reset(np.array([True, False, False]))
    assert policy(obs).shape[0] == 3
    policy.reset()
    assert policy.state is None
    greedy = agent.make_policy(explore=False)
    assert np.array_equal(greedy(obs), agent.make_policy(explore=False)(obs))


def test_create_model_returns_agent() -> None:
    env = gym.make("CartPole-v1")
    agent = create_model("dreamer", env, rssm__deter=32, rssm__hidden=32, mlp_units=32)
    assert isinstance(agent, DreamerAgent)
    action, state = agent.act(torch.zeros(1, 4), None, explore=True)
    assert action.shape == (1,) and set(state.keys()) == {"deter", "stoch", "action"}
