import gymnasium as gym
import pytest
import torch
from torchrl.data import Bounded, Categorical, Unbounded

from tests.models.dreamer.conftest import BOX, DISCRETE, IMAGE, VECTOR, make_batch, micro
from wmenv.core import ImaginationCore, ReplayStartStates, WorldModel
from wmenv.models.dreamer import DreamerAgent, DreamerImagination, DreamerWorldModel, to_world_model

BOUNDED_VECTOR = gym.spaces.Box(-1.0, 1.0, (4,), "float32")


def replay(obs_space: gym.Space, act_space: gym.Space):
    return make_batch(obs_space, act_space, b=4, t=8).reshape(-1)  # 32 consecutive transitions


def rollout(core: ImaginationCore, seed: int, steps: int = 5) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    out = [core.reset(seed=seed).clone()]
    for _ in range(steps):
        action = core.action_spec.rand(torch.Size([core.num_envs]))
        if isinstance(core.action_spec, Categorical):
            action = torch.randint(0, int(core.action_spec.space.n), (core.num_envs,), generator=g)
        step = core.step(action, autoreset="same_step")
        out += [step.observation.clone(), step.reward.clone(), step.terminated.clone()]
    return out


@pytest.mark.parametrize(
    ("obs_space", "act_space", "mode"),
    [
        (VECTOR, DISCRETE, "latent"),
        (BOUNDED_VECTOR, DISCRETE, "decoded"),
        (IMAGE, BOX, "decoded"),
        (IMAGE, DISCRETE, "latent"),
    ],
)
def test_adapter_drives_imagination_core(obs_space: gym.Space, act_space: gym.Space, mode: str) -> None:
    model = DreamerWorldModel(micro(), obs_space, act_space)
    imagined = to_world_model(model, observation_mode=mode)
    assert isinstance(imagined, WorldModel)
    if mode == "latent":
        assert isinstance(imagined.observation_spec, Unbounded)
        assert imagined.observation_spec.shape == (model.rssm.feature_dim,)
    else:
        assert imagined.observation_spec.dtype == (torch.uint8 if obs_space is IMAGE else torch.float32)
    core = ImaginationCore(
        imagined, ReplayStartStates(replay(obs_space, act_space), 3), num_envs=3, max_episode_steps=4
    )
    obs = core.reset(seed=0)
    assert imagined.observation_spec.is_in(obs[0])
    for _ in range(6):
        step = core.step(core.action_spec.rand(torch.Size([3])), autoreset="same_step")
        assert step.reward.shape == (3,) and step.terminated.dtype == torch.bool
        assert all(imagined.observation_spec.is_in(o) for o in step.observation)


def test_decoded_vector_respects_real_bounds() -> None:
    model = DreamerWorldModel(micro(), BOUNDED_VECTOR, DISCRETE)
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(5.0)  # decoder means far outside [-1, 1]
    imagined = to_world_model(model, observation_mode="decoded")
    assert isinstance(imagined.observation_spec, Bounded)
    core = ImaginationCore(imagined, ReplayStartStates(replay(BOUNDED_VECTOR, DISCRETE), 2), num_envs=2)
    core.reset(seed=0)
    obs = core.step(torch.tensor([0, 1])).observation
    assert obs.max() <= 1.0 and imagined.observation_spec.is_in(obs[0])


@pytest.mark.parametrize(("sample", "version"), [(True, "v3"), (False, "v3"), (True, "v1"), (True, "v2")])
def test_same_seed_same_trajectory(sample: bool, version: str) -> None:
    model = DreamerWorldModel(micro(version), VECTOR, DISCRETE)
    imagined = to_world_model(model, sample=sample, sample_termination=sample)
    core = ImaginationCore(
        imagined, ReplayStartStates(replay(VECTOR, DISCRETE), 2), num_envs=4, max_episode_steps=3
    )
    torch.manual_seed(1)  # the global RNG must not matter
    first = rollout(core, seed=7)
    torch.manual_seed(2)
    second = rollout(core, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    if sample:
        third = rollout(core, seed=8)
        assert not all(torch.equal(a, b) for a, b in zip(first, third))


def test_initial_state_accepts_single_step_context() -> None:
    model = DreamerWorldModel(micro(), VECTOR, BOX)
    imagined = to_world_model(model, observation_mode="decoded")
    context = replay(VECTOR, BOX)[:5].select("observation")  # [B], observation only
    out = imagined.initial_state(context, generator=torch.Generator().manual_seed(0))
    assert out["state"]["deter"].shape == (5, 32)
    assert torch.equal(out["observation"], context["observation"])  # the real start observation


def test_filter_observe_matches_posterior() -> None:
    model = DreamerWorldModel(micro(), VECTOR, DISCRETE)
    imagined = to_world_model(model, sample=False)
    batch = make_batch(VECTOR, DISCRETE, b=2, t=8)[:, :3]  # no episode boundary inside
    state = None
    for t in range(3):
        action = None if t == 0 else batch["action"][:, t]
        out = imagined.observe(state, action, batch["observation"][:, t].numpy())
        state = out["state"]
        assert out["observation"].shape == (2, model.rssm.feature_dim)
    post, _ = model.observe(batch, sample=False)
    torch.testing.assert_close(out["observation"], model.rssm.features(post[:, -1]))


def test_to_world_model_accepts_agent_and_rejects_others() -> None:
    agent = DreamerAgent(micro(), VECTOR, DISCRETE)
    assert isinstance(to_world_model(agent), DreamerImagination)
    with pytest.raises(TypeError, match="expects a DreamerAgent or DreamerWorldModel, got Linear"):
        to_world_model(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="observation_mode must be 'latent' or 'decoded'"):
        DreamerImagination(agent.world_model, observation_mode="pixels")  # type: ignore[arg-type]
