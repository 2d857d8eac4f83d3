"""IRIS imagination: protocol, KV cache == recomputation, batched == single members, faces.

What "the same imagination" means here: every member carries its own random stream, keyed by
``rng_key`` (drawn from the env's generator at reset, or given in the context). The same context, key
and actions give the same trajectory, whatever the batch around the member, with or without the KV
cache, and however its neighbours are reset.
"""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from tests.models.iris.conftest import catch_rows, tiny_model, windows
from wmenv.core.errors import ConfigError
from wmenv.core.protocol import ReplayStartStates, WorldModel
from wmenv.models.iris import IRISImagination, to_world_model
from wmenv.testing import check_world_model_env


def trained_enough():
    """A tiny model whose world model has seen the game a little (non-trivial token distributions)."""
    model = tiny_model()
    batch = windows(catch_rows(3), 4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for mode in ("tokenizer", "world_model"):
        model.set_mode(mode)
        for _ in range(15):
            out = model.loss(batch)
            loss = sum(v for k, v in out.items() if k.startswith("loss_"))
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.after_update(0)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return trained_enough()


@pytest.fixture(scope="module")
def contexts():
    return windows(catch_rows(4, seed=10), 3, stride=3)  # [B, 3] real slices


def rollout(wm: IRISImagination, context: TensorDict, actions: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    out = wm.initial_state(context, generator=torch.Generator().manual_seed(seed))
    state, obs = out["state"], [out["observation"]]
    tokens, rewards, ends = [], [], []
    for a in actions:
        step = wm.step(state, a, generator=torch.Generator().manual_seed(123))
        state = step["state"]
        obs.append(step["observation"])
        tokens.append(state["obs_tokens"][torch.arange(len(a)), state["steps"] - 1])
        rewards.append(step["reward"])
        ends.append(step["info", "end_prob"])
    return {"obs": torch.stack(obs, 1), "tokens": torch.stack(tokens, 1), "reward": torch.stack(rewards, 1),
            "end_prob": torch.stack(ends, 1), "state": state}


def keyed(context: TensorDict, keys: list[int]) -> TensorDict:
    """``context`` ``[B, T]`` with the members' stream keys (a ``(B, T)`` column, as replay rows hold them)."""
    out = context.clone()
    out["rng_key"] = torch.tensor(keys)[:, None].expand(*context.batch_size)
    return out


def actions_for(n: int, steps: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 3, (steps, n), generator=torch.Generator().manual_seed(seed))


def test_protocol_and_state(model, contexts):
    wm = to_world_model(model)
    assert isinstance(wm, WorldModel) and wm.context_length == model.config.world_model.burn_in
    ctx = contexts[:5]
    out = wm.initial_state(ctx, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out["observation"], ctx["observation"][:, -1])  # the last real frame
    state = out["state"]
    k, steps = model.config.tokenizer.tokens_per_frame, model.config.world_model.context_steps
    assert state["obs_tokens"].shape == (5, steps, k) and state["steps"].tolist() == [3] * 5
    assert state["cache", "length"].tolist() == [3 * (k + 1) - 2] * 5
    single = wm.initial_state(ctx[:, -1], generator=torch.Generator().manual_seed(0))  # [B] contexts work too
    assert single["state", "steps"].tolist() == [1] * 5
    before = state.clone()
    step = wm.step(state, torch.zeros(5, dtype=torch.int64), generator=torch.Generator())
    assert (state == before).all()  # copy_state: the input state is untouched
    assert step["observation"].shape == (5, 10, 10, 4) and step["observation"].dtype == torch.uint8
    assert step["reward"].dtype == torch.float32 and step["terminated"].dtype == torch.bool
    assert set(step["reward"].tolist()) <= {-1.0, 0.0, 1.0}  # sign classes
    assert step["state", "steps"].tolist() == [4] * 5


def test_latent_mode_and_observe(model, contexts):
    wm = to_world_model(model, observation_mode="latent")
    dim = model.config.tokenizer.tokens_per_frame * model.config.tokenizer.code_dim
    assert wm.observation_spec.shape == (dim,)
    out = wm.initial_state(contexts[:2], generator=torch.Generator().manual_seed(0))
    assert out["observation"].shape == (2, dim) and out["observation"].dtype == torch.float32
    seen = wm.observe(None, None, contexts["observation"][:2, -1].numpy())
    assert torch.allclose(seen["observation"], out["observation"])  # the same frame, the same code vectors
    with pytest.raises(ConfigError):
        to_world_model(model, observation_mode="pixels")
    with pytest.raises(TypeError):
        to_world_model(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("copy_state", [True, False])
def test_kv_cache_equals_recomputing_the_context(model, contexts, copy_state):
    """12 steps cross two refreshes of the 4-step window: the cache must give what recomputation gives."""
    ctx, acts = contexts[:6], actions_for(6, 12)
    cached = rollout(to_world_model(model, copy_state=copy_state), ctx, acts)
    plain = rollout(to_world_model(model, use_cache=False), ctx, acts)
    assert torch.equal(cached["tokens"], plain["tokens"])
    assert torch.equal(cached["obs"], plain["obs"]) and torch.equal(cached["reward"], plain["reward"])
    torch.testing.assert_close(cached["end_prob"], plain["end_prob"], atol=1e-5, rtol=1e-5)
    assert len(set(cached["tokens"].flatten().tolist())) > 1  # a non-trivial check


def test_batched_equals_single_members_with_the_same_keys(model, contexts):
    n, acts = 6, actions_for(6, 10)
    ctx = keyed(contexts[:n], [11, 22, 33, 44, 55, 66])
    wm = to_world_model(model)
    batched = rollout(wm, ctx, acts)
    for i in range(n):
        single = rollout(wm, ctx[i : i + 1], acts[:, i : i + 1])
        assert torch.equal(single["tokens"][0], batched["tokens"][i]), i
        assert torch.equal(single["obs"][0], batched["obs"][i]), i
        assert torch.equal(single["reward"][0], batched["reward"][i]), i
    # keys drawn from the generator: the same seed gives the same keys and trajectories
    drawn = contexts[:n]
    assert torch.equal(rollout(wm, drawn, acts, seed=4)["tokens"], rollout(wm, drawn, acts, seed=4)["tokens"])
    assert not torch.equal(rollout(wm, drawn, acts, seed=4)["tokens"], rollout(wm, drawn, acts, seed=5)["tokens"])


def test_partial_reset_restarts_only_its_members(model, contexts):
    """The core resets members with ``state[mask] = initial_state(...)["state"]``; nobody else notices."""
    wm = to_world_model(model)
    ctx = keyed(contexts[:4], [1, 2, 3, 4])
    fresh = keyed(contexts[4:5], [99])
    acts = actions_for(4, 9)
    state = wm.initial_state(ctx)["state"]
    tokens = []
    for t in range(9):
        if t == 3:  # member 2 starts a new episode from another context
            mask = torch.tensor([False, False, True, False])
            new_state = state.clone()
            new_state[mask] = wm.initial_state(fresh)["state"]
            state = new_state
        state = wm.step(state, acts[t])["state"]
        tokens.append(state["obs_tokens"][torch.arange(4), state["steps"] - 1])
    tokens = torch.stack(tokens, 1)
    untouched = rollout(wm, ctx, acts)["tokens"]
    for i in (0, 1, 3):
        assert torch.equal(tokens[i], untouched[i])
    restarted = rollout(wm, fresh, acts[3:, 2:3])["tokens"][0]
    assert torch.equal(tokens[2, 3:], restarted)


@pytest.mark.parametrize("mode", ["decoded", "latent"])
def test_conformance_on_every_face(model, mode):
    wm = to_world_model(model, observation_mode=mode)
    start = ReplayStartStates(catch_rows(4), context_length=wm.context_length)
    report = check_world_model_env(wm, start, max_episode_steps=8, num_envs=3, steps=20)
    assert set(report) == {"gymnasium", "sb3", "vector[next_step]", "vector[same_step]", "torchrl", "sb3_vec"}
