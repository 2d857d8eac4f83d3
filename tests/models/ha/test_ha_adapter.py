import numpy as np
import pytest
import torch
from tensordict import TensorDict

from tests.models.ha.conftest import BOX, DISCRETE, IMAGE, VECTOR, micro
from wmenv.core import ImaginationCore, TensorDictStartStates, WorldModel
from wmenv.core.errors import ConfigError
from wmenv.envs import WorldModelVectorEnv
from wmenv.models.ha import WorldModelsAgent, to_world_model
from wmenv.registry import get_model_spec
from wmenv.testing import check_world_model_env


def _starts(space, n: int = 8, seed: int = 0) -> TensorDictStartStates:
    g = torch.Generator().manual_seed(seed)
    if space is IMAGE:
        obs = torch.randint(0, 256, (n, 64, 64, 3), generator=g, dtype=torch.uint8)
    else:
        obs = torch.randn(n, 4, generator=g) * 0.1
    return TensorDictStartStates(TensorDict({"observation": obs}, [n]))


@pytest.mark.parametrize(
    ("obs_space", "act_space", "mode"),
    [(VECTOR, DISCRETE, "latent"), (IMAGE, BOX, "decoded")],
    ids=["vector-latent", "image-decoded"],
)
def test_faces_conform(obs_space, act_space, mode) -> None:
    agent = WorldModelsAgent(micro(), obs_space, act_space).eval()
    dream = to_world_model(agent, observation_mode=mode, temperature=1.15)
    assert isinstance(dream, WorldModel)
    report = check_world_model_env(dream, _starts(obs_space), max_episode_steps=6, num_envs=3, steps=12)
    assert set(report) == {"gymnasium", "sb3", "vector[next_step]", "vector[same_step]", "torchrl", "sb3_vec"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("obs_space", "act_space", "mode"), [(VECTOR, BOX, "decoded"), (IMAGE, DISCRETE, "latent")]
)
def test_faces_conform_other_modes(obs_space, act_space, mode) -> None:
    agent = WorldModelsAgent(micro(), obs_space, act_space).eval()
    check_world_model_env(to_world_model(agent, mode), _starts(obs_space))


def test_latent_observation_is_z_and_h_and_steps_are_batched() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE).eval()
    dream = to_world_model(agent)
    cfg = agent.config
    assert tuple(dream.observation_spec.shape) == (cfg.z_dim + cfg.rnn.hidden,)
    g = torch.Generator().manual_seed(0)
    out = dream.initial_state(_starts(VECTOR).data[:5], generator=g)
    assert set(out["state"].keys()) == {"z", "h", "c"}
    torch.testing.assert_close(out["observation"][:, : cfg.z_dim], out["state"]["z"])
    assert bool((out["observation"][:, cfg.z_dim:] == 0).all())  # h before any action
    step = dream.step(out["state"], torch.tensor([0, 1, 0, 1, 1]), generator=g)
    assert step["reward"].shape == (5,) and step["terminated"].dtype == torch.bool
    assert step["info"]["done_prob"].shape == (5,)


def test_context_history_runs_the_lstm() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE).eval()
    dream = to_world_model(agent)
    obs = torch.randn(2, 3, 4)
    ctx = TensorDict({"observation": obs, "action": torch.tensor([[0, 1, 1], [0, 0, 1]])}, [2, 3])
    out = dream.initial_state(ctx, generator=torch.Generator())
    z, _ = agent.vae.encode(obs)
    h, c = agent.mdnrnn.initial(2)
    for t in range(2):
        h, c = agent.mdnrnn.step(z[:, t], ctx["action"][:, t + 1], h, c)
    torch.testing.assert_close(out["state"]["h"], h)
    torch.testing.assert_close(out["state"]["z"], z[:, -1])
    with pytest.raises(ConfigError, match="needs an 'action' entry"):
        dream.initial_state(ctx.exclude("action"), generator=torch.Generator())


def test_same_seed_same_dream_and_temperature_matters() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE).eval()

    def rollout(seed: int, tau: float) -> np.ndarray:
        env = WorldModelVectorEnv(to_world_model(agent, temperature=tau), _starts(VECTOR), 4, max_episode_steps=10)
        obs, _ = env.reset(seed=seed)
        seq = [obs]
        for t in range(8):
            obs, *_ = env.step(np.array([t % 2, 1, 0, 1]))
            seq.append(obs)
        return np.stack(seq)

    assert np.array_equal(rollout(3, 1.0), rollout(3, 1.0))
    assert not np.array_equal(rollout(3, 1.0), rollout(4, 1.0))
    assert not np.array_equal(rollout(3, 1.0), rollout(3, 2.0))


def test_extras_and_bad_arguments() -> None:
    agent = WorldModelsAgent(micro(), VECTOR, DISCRETE)
    assert get_model_spec("world-models").to_world_model is to_world_model
    with pytest.raises(TypeError, match="expects a WorldModelsAgent"):
        to_world_model(torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="observation_mode must be 'latent' or 'decoded'"):
        to_world_model(agent, "pixels")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        to_world_model(agent, temperature=0.0)


def test_decoded_images_stay_in_space() -> None:
    agent = WorldModelsAgent(micro(), IMAGE, DISCRETE).eval()
    core = ImaginationCore(to_world_model(agent, "decoded", real_start_observation=False), _starts(IMAGE), 2)
    obs = core.reset(seed=0)
    assert obs.dtype == torch.uint8 and obs.shape == (2, 64, 64, 3)
    out = core.step(torch.tensor([0, 1]))
    assert out.observation.dtype == torch.uint8
