"""The diffusion world models as imagination envs: batched vs single members, determinism, every face.

"Batched equals single" (see wmenv.models.diamond.adapter): a member's randomness is a hash of the key
it drew from the generator at ``initial_state`` and of its step counter, so

1. stepping member ``i`` alone from ``state[i:i+1]`` reproduces member ``i`` of the batched run, and
2. (CPU) ``N`` single imaginations started one after another from one generator equal one batched
   imagination of the same ``N`` contexts from a generator with the same seed,

both with the same actions: identical frames, rewards and terminations.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.core.errors import ConfigError
from wmenv.core.protocol import ReplayStartStates, WorldModel
from wmenv.models.diamond import DiamondImagination, to_world_model
from wmenv.registry import create_model, get_model_spec
from wmenv.testing import check_world_model_env, random_replay_batch

MINATAR = gym.spaces.Box(0, 1, (10, 10, 4), np.uint8)
ACTIONS = gym.spaces.Discrete(3)


def rows(n: int = 60, seed: int = 0):
    data = random_replay_batch(MINATAR, ACTIONS, 1, n, seed=seed).reshape(-1)
    data["observation"] = data["observation"] % 2
    return data


def trained_like(name: str = "diamond", **overrides) -> torch.nn.Module:
    """A tiny model with randomised weights (a fresh denoiser predicts exactly 0 everywhere)."""
    model = create_model(name, observation_space=MINATAR, action_space=ACTIONS, preset="tiny", **overrides)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def rollout(wm, state, actions):
    frames, rewards, ends = [], [], []
    for a in actions:
        out = wm.step(state, a, generator=torch.Generator())
        state = out["state"]
        frames.append(out["observation"])
        rewards.append(out["reward"])
        ends.append(out["terminated"])
    return torch.stack(frames, 1), torch.stack(rewards, 1), torch.stack(ends, 1)


@pytest.mark.parametrize("name", ["diamond", "ddpm", "dit"])
def test_batched_imagination_equals_single_members(name):
    wm = to_world_model(trained_like(name, ddpm__eta=1.0) if name == "ddpm" else trained_like(name))
    assert isinstance(wm, WorldModel) and wm.context_length == 2
    start = ReplayStartStates(rows(), context_length=2)
    n, horizon = 5, 4
    g = torch.Generator().manual_seed(3)
    batched = wm.initial_state(start.sample(n, generator=g), generator=torch.Generator().manual_seed(11))
    actions = [torch.randint(0, 3, (n,), generator=g) for _ in range(horizon)]
    full = rollout(wm, batched["state"], actions)
    assert full[0].dtype == torch.uint8 and set(full[0].unique().tolist()) <= {0, 1}
    for i in range(n):  # 1. a member stepped alone
        alone = rollout(wm, batched["state"][i:i + 1], [a[i:i + 1] for a in actions])
        for x, y in zip(alone, full):
            assert torch.equal(x[0], y[i])
    # 2. N single imaginations drawn one after another from one generator
    contexts = start.sample(n, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(11)
    singles = [wm.initial_state(contexts[i:i + 1], generator=gen) for i in range(n)]
    batched = wm.initial_state(contexts, generator=torch.Generator().manual_seed(11))
    full = rollout(wm, batched["state"], actions)
    for i, single in enumerate(singles):
        assert torch.equal(single["observation"][0], batched["observation"][i])
        alone = rollout(wm, single["state"], [a[i:i + 1] for a in actions])
        for x, y in zip(alone, full):
            assert torch.equal(x[0], y[i])


def test_members_differ_and_generators_decide():
    wm = to_world_model(trained_like())
    start = ReplayStartStates(rows(), context_length=2)
    ctx = start.sample(1, generator=torch.Generator().manual_seed(0))
    ctx = torch.cat([ctx] * 4)  # the same context four times: only the keys differ
    state = wm.initial_state(ctx, generator=torch.Generator().manual_seed(1))["state"]
    assert state["key"].unique().numel() == 4
    out = wm.step(state, torch.zeros(4, dtype=torch.long), generator=torch.Generator())
    assert len({tuple(f.flatten().tolist()) for f in out["observation"]}) > 1  # different noise, different frames
    again = wm.step(wm.initial_state(ctx, generator=torch.Generator().manual_seed(1))["state"],
                    torch.zeros(4, dtype=torch.long), generator=torch.Generator())
    assert torch.equal(out["observation"], again["observation"])


def test_sampling_steps_is_the_number_of_denoiser_calls_per_step():
    model = trained_like()
    calls = []
    model.world_model.denoiser.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    start = ReplayStartStates(rows(), context_length=2)
    for steps in (1, 3, 10):
        wm = to_world_model(model, sampling_steps=steps)
        state = wm.initial_state(start.sample(6, generator=torch.Generator()), generator=torch.Generator())["state"]
        calls.clear()
        wm.step(state, torch.zeros(6, dtype=torch.long), generator=torch.Generator())
        assert calls == [6] * steps  # one batched call per denoising step for all 6 members


def test_short_and_single_frame_contexts_are_padded():
    wm = to_world_model(trained_like())
    one = rows()[:3]  # [B] context: one frame each
    out = wm.initial_state(one, generator=torch.Generator())
    assert out["state", "valid"].tolist() == [[False, True]] * 3
    assert torch.equal(out["observation"], one["observation"])
    step = wm.step(out["state"], torch.ones(3, dtype=torch.long), generator=torch.Generator())
    assert step["observation"].shape == (3, 10, 10, 4) and step["state", "valid"].all()


def test_adapter_errors():
    model = trained_like()
    with pytest.raises(ConfigError, match="decoded"):
        to_world_model(model, observation_mode="latent")
    with pytest.raises(ConfigError):
        to_world_model(model, sampling_steps=0)
    with pytest.raises(TypeError):
        to_world_model(torch.nn.Linear(2, 2))
    assert isinstance(get_model_spec("dit").to_world_model(model.world_model), DiamondImagination)


@pytest.mark.parametrize("name", ["diamond", "ddpm", "dit"])
def test_every_face_conforms(name):
    wm = to_world_model(trained_like(name), sampling_steps=1)
    start = ReplayStartStates(rows(), context_length=wm.context_length)
    report = check_world_model_env(wm, start, max_episode_steps=8, num_envs=3, steps=16)
    assert set(report) == {"gymnasium", "sb3", "vector[next_step]", "vector[same_step]", "torchrl", "sb3_vec"}
