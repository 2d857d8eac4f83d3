"""The four faces over the core: the field's checkers, libraries training through them, bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.core import InvalidActionError, ModelOutputError, ResetNeededError
from wmenv.envs import (
    ENV_ID,
    WorldModelEnv,
    WorldModelSB3VecEnv,
    WorldModelTorchRLEnv,
    WorldModelVectorEnv,
)
from wmenv.testing import FakeWorldModel, check_world_model_env, fake_start_states


@pytest.mark.parametrize("observation", ["vector", "image", "dict"])
@pytest.mark.parametrize("action", ["discrete", "continuous"])
def test_every_face_passes_the_checkers(observation, action):
    model = FakeWorldModel(observation, action)
    report = check_world_model_env(model, fake_start_states(model))
    assert set(report) == {"gymnasium", "sb3", "vector[next_step]", "vector[same_step]", "torchrl", "sb3_vec"}


def _toy_callables():
    """The seed's callables API with a model that inherits from nothing."""

    class Toy:
        def __init__(self):
            self.k = 0.5

    def reset_fn(model, seed=None, options=None):
        rng = np.random.default_rng(seed)
        return {"state": rng.uniform(-0.1, 0.1, 2), "observation": np.zeros(2, np.float32)}

    def transition_fn(model, state, action):
        nxt = state + model.k * (np.asarray(action, np.float32) - 0.5)
        return {
            "state": nxt,
            "observation": nxt.astype(np.float32),
            "reward": float(-abs(nxt).sum()),
            "terminated": bool(abs(nxt).max() > 3),
        }

    return Toy(), reset_fn, transition_fn


def test_callables_api_unchanged():
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    toy, reset_fn, transition_fn = _toy_callables()
    seen = []

    def action_transform_fn(model, action):
        seen.append(action)
        return np.array([action, action], np.float32)

    kwargs = dict(
        observation_space=gym.spaces.Box(-np.inf, np.inf, (2,), np.float32),
        action_space=gym.spaces.Discrete(2),
        reset_fn=reset_fn,
        transition_fn=transition_fn,
        action_transform_fn=action_transform_fn,
        max_episode_steps=10,
        seed=3,
    )
    env = WorldModelEnv(toy, **kwargs)
    check_env(env, skip_render_check=True)
    sb3_check_env(WorldModelEnv(toy, **kwargs), warn=False)
    obs, _ = env.reset(seed=0)
    for _t in range(10):
        obs, r, term, trunc, _ = env.step(1)
    assert trunc and not term and isinstance(r, float)
    assert seen[-1] == 1 and isinstance(seen[-1], int)


def test_callables_reset_fn_with_wrong_keys_is_named():
    toy, _, transition_fn = _toy_callables()
    env = WorldModelEnv(
        toy, observation_space=gym.spaces.Box(-1, 1, (2,), np.float32), action_space=gym.spaces.Discrete(2),
        reset_fn=lambda model, seed=None, options=None: {"obs": np.zeros(2)}, transition_fn=transition_fn,
    )
    with pytest.raises(ModelOutputError, match=r"reset_fn must return a dict with keys \['state', 'observation'\]"):
        env.reset()


def test_single_env_bad_input():
    model = FakeWorldModel()
    env = WorldModelEnv(model, fake_start_states(model), max_episode_steps=5)
    with pytest.raises(ResetNeededError):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(InvalidActionError, match=r"shape \(\)"):
        env.step(np.array([0, 1]))
    with pytest.raises(InvalidActionError, match="integers"):
        env.step(7)
    with pytest.raises(TypeError, match="start_states is required"):
        WorldModelEnv(model)


def test_sb3_ppo_learns_inside_a_world_model_env():
    from stable_baselines3 import PPO
    from stable_baselines3.common.evaluation import evaluate_policy

    model = FakeWorldModel(terminate_at=None, noise=0.0)
    env = WorldModelEnv(model, fake_start_states(model), max_episode_steps=16, seed=0)
    agent = PPO("MlpPolicy", env, n_steps=256, batch_size=64, learning_rate=3e-3, seed=0, verbose=0)
    before, _ = evaluate_policy(agent, env, n_eval_episodes=10)
    agent.learn(4096)
    after, _ = evaluate_policy(agent, env, n_eval_episodes=10)
    assert after > 13.0 and after > before  # 16 is perfect, ~8 random


def test_sb3_ppo_on_the_batched_vec_env_face():
    from stable_baselines3 import PPO

    model = FakeWorldModel(terminate_at=None, noise=0.0)
    venv = WorldModelSB3VecEnv(model, fake_start_states(model), num_envs=16, max_episode_steps=16, seed=0)
    agent = PPO("MlpPolicy", venv, n_steps=32, batch_size=128, learning_rate=3e-3, seed=0, verbose=0)
    agent.learn(4096)
    obs = venv.reset()
    total = 0.0
    for _ in range(16):
        obs, rew, _, _ = venv.step(agent.predict(obs, deterministic=True)[0])
        total += rew.mean()
    assert total > 13.0


def test_sb3_vec_env_conventions():
    model = FakeWorldModel(terminate_at=None)
    venv = WorldModelSB3VecEnv(model, fake_start_states(model), num_envs=4, max_episode_steps=3, seed=0)
    venv.reset()
    for _ in range(2):
        _, _, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
        assert not dones.any()
    obs, _, dones, infos = venv.step(np.zeros(4, dtype=np.int64))
    assert dones.all()
    assert all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["terminal_observation"].shape == (4,) for info in infos)
    assert not np.array_equal(infos[0]["terminal_observation"], obs[0])


def test_vector_next_step_autoreset_matches_gymnasium_semantics():
    model = FakeWorldModel(terminate_at=None)
    venv = WorldModelVectorEnv(model, fake_start_states(model), 3, max_episode_steps=2)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    venv.reset(seed=0)
    venv.step(np.zeros(3, dtype=np.int64))
    _, _, term, trunc, _ = venv.step(np.zeros(3, dtype=np.int64))
    assert trunc.all()
    _, rew, term, trunc, _ = venv.step(np.ones(3, dtype=np.int64))
    assert (rew == 0).all() and not term.any() and not trunc.any()
    obs, _ = venv.reset(options={"reset_mask": np.array([True, False, False])})
    assert obs.shape == (3, 4)


def test_torchrl_face_rollout_partial_reset_and_collector():
    from torchrl.collectors import Collector  # torchrl 0.14 name of SyncDataCollector

    model = FakeWorldModel()
    env = WorldModelTorchRLEnv(model, fake_start_states(model), num_envs=4, max_episode_steps=6, seed=0)
    td = env.rollout(20, break_when_any_done=False)
    assert td.batch_size == torch.Size([4, 20])
    reset_td = env.reset()
    reset_td["_reset"] = torch.tensor([[True], [False], [False], [False]])
    before = reset_td["observation"].clone()
    out = env.reset(reset_td)
    assert torch.equal(out["observation"][1:], before[1:])
    collector = Collector(env, policy=None, frames_per_batch=64, total_frames=128)
    batches = [b for b in collector]
    collector.shutdown()
    assert len(batches) == 2 and batches[0].numel() == 64


def test_torchrl_step_and_maybe_reset_matches_the_base_class_path():
    """The face's one-call step-and-reset gives exactly what EnvBase's step + maybe_reset give."""
    from torchrl.envs import EnvBase

    model = FakeWorldModel(terminate_at=0.5)  # terminations and horizon cuts both happen
    envs = [WorldModelTorchRLEnv(model, fake_start_states(model), num_envs=5, max_episode_steps=4, seed=7)
            for _ in range(2)]
    tds = [env.reset() for env in envs]
    g = torch.Generator().manual_seed(0)
    resets = 0
    for _ in range(30):
        action = torch.randint(0, 2, (5,), generator=g)
        hidden = torch.randn(5, 3, generator=g)  # a recurrent policy's carry: kept, zeroed at resets
        for td in tds:
            td.set("action", action.clone())
            if "hidden" not in td.keys():
                td.set("hidden", hidden.clone())
        done_fast, tds[0] = envs[0].step_and_maybe_reset(tds[0])
        done_base, tds[1] = EnvBase.step_and_maybe_reset(envs[1], tds[1])
        assert (done_fast == done_base).all(), "step outputs differ"
        assert set(tds[0].keys(True)) == set(tds[1].keys(True))
        assert (tds[0] == tds[1]).all(), "next root differs"
        resets += int(done_base["next", "done"].sum())
    assert resets > 5


def test_gym_make_by_id_and_cleanrl_thunks():
    model = FakeWorldModel()
    start = fake_start_states(model)

    def make_env(seed):
        def thunk():
            env = gym.make(ENV_ID, model=model, start_states=start, max_episode_steps=8)
            env = gym.wrappers.RecordEpisodeStatistics(env)
            env.action_space.seed(seed)
            return env

        return thunk

    envs = gym.vector.SyncVectorEnv([make_env(i) for i in range(3)])
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 4)
    for _ in range(20):
        obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())
    vec = gym.make_vec(ENV_ID, num_envs=5, vectorization_mode="vector_entry_point", model=model, start_states=start,
                       max_episode_steps=8)
    assert isinstance(vec, WorldModelVectorEnv) and vec.num_envs == 5
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (5, 4)


def test_gym_make_without_model_says_what_is_needed():
    with pytest.raises(TypeError, match="needs checkpoint=RUN_DIR, or model="):
        gym.make(ENV_ID)


def test_torchrl_face_under_transforms():
    """TorchRL transforms wrap the face as any env: specs check, rollouts, collectors."""
    from torchrl.collectors import Collector
    from torchrl.envs import Compose, InitTracker, RewardSum, StepCounter, TransformedEnv
    from torchrl.envs.utils import check_env_specs

    model = FakeWorldModel(terminate_at=None)
    base = WorldModelTorchRLEnv(model, fake_start_states(model), num_envs=4, max_episode_steps=6, seed=0)
    env = TransformedEnv(base, Compose(StepCounter(), RewardSum(), InitTracker()))
    check_env_specs(env)
    td = env.rollout(30, break_when_any_done=False)
    assert td["next", "step_count"].max() == 6  # the horizon cut resets the counter
    assert td["next", "done"].sum() == 4 * 5  # every member truncated at steps 6, 12, 18, 24, 30
    collector = Collector(env, policy=None, frames_per_batch=40, total_frames=80)
    assert [b.numel() for b in collector] == [40, 40]
    collector.shutdown()
