import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from tensordict import TensorDict
from torchrl.data import Unbounded

from wmenv.envs.latent import LatentObservationWrapper
from wmenv.models.dreamer import DreamerConfig, DreamerWorldModel, to_world_model
from wmenv.runs import latent_observation_wrapper


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class RunningSumFilter:
    """A non-Dreamer adapter: the latent is the running sum of observations (plus the last action)."""

    latent_spec = Unbounded(shape=(5,), dtype=torch.float32)

    def observe(self, state, action, observation, *, generator=None):
        obs = torch.as_tensor(observation, dtype=torch.float32)
        total = obs if state is None else state["sum"] + obs
        act = (
            torch.zeros(obs.shape[0], 1) if action is None else torch.as_tensor(action).float().reshape(-1, 1)
        )
        return TensorDict(
            {"state": {"sum": total}, "observation": torch.cat([total, act], -1)}, batch_size=[obs.shape[0]]
        )


def _tiny_wm(env: gym.Env) -> DreamerWorldModel:
    cfg = DreamerConfig.tiny().replace(mlp_units=32, mlp_layers=1)
    cfg = cfg.replace(rssm=cfg.rssm.__class__(deter=32, stoch=4, classes=4, hidden=32))
    torch.manual_seed(0)
    return DreamerWorldModel(cfg, env.observation_space, env.action_space)


def test_generic_adapter() -> None:
    env = LatentObservationWrapper(gym.make("CartPole-v1"), RunningSumFilter())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32 and obs[-1] == 0
    obs2, reward, terminated, truncated, _ = env.step(1)
    assert obs2[-1] == 1 and obs2 in env.observation_space
    assert reward == 1.0


def test_dreamer_latents_pass_gymnasium_checker() -> None:
    real = gym.make("CartPole-v1")
    wm = _tiny_wm(real)
    env = LatentObservationWrapper(real, to_world_model(wm, sample=True))
    assert env.observation_space.shape == (wm.rssm.feature_dim,)
    check_env(env, skip_render_check=True)
    first, _ = env.reset(seed=3)
    again, _ = env.reset(seed=3)
    assert np.array_equal(first, again)  # the filter's sampling follows reset(seed=)
    for _ in range(5):
        obs, *_ = env.step(env.action_space.sample())
        assert obs in env.observation_space


def test_latent_observation_wrapper_from_model_matches_direct_filter() -> None:
    real = gym.make("CartPole-v1")
    wm = _tiny_wm(real)
    wrap = latent_observation_wrapper(wm, sample=False)
    env = wrap(real)
    obs, _ = env.reset(seed=0)
    direct = to_world_model(wm, sample=False).observe(
        None, None, real.unwrapped.state[None].astype(np.float32)
    )
    np.testing.assert_allclose(obs, direct["observation"][0].numpy(), atol=1e-6)


def test_wrapper_rejects_objects_without_filter() -> None:
    with pytest.raises(TypeError, match="has no observe"):
        LatentObservationWrapper(gym.make("CartPole-v1"), object())
