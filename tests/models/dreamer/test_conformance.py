"""The adapter through every env face, with the field's own checkers (wmenv.testing)."""

import gymnasium as gym
import pytest

from tests.models.dreamer.conftest import BOX, DISCRETE, IMAGE, make_batch, micro
from wmenv.core import ReplayStartStates
from wmenv.models.dreamer import DreamerWorldModel, to_world_model
from wmenv.testing import check_world_model_env

BOUNDED_VECTOR = gym.spaces.Box(-1.0, 1.0, (4,), "float32")


@pytest.mark.parametrize(
    ("obs_space", "act_space", "mode"),
    [(BOUNDED_VECTOR, DISCRETE, "decoded"), (BOUNDED_VECTOR, BOX, "latent"), (IMAGE, DISCRETE, "decoded")],
)
def test_adapter_passes_face_checkers(obs_space: gym.Space, act_space: gym.Space, mode: str) -> None:
    model = DreamerWorldModel(micro(), obs_space, act_space).eval()
    replay = make_batch(obs_space, act_space, b=4, t=8).reshape(-1)
    if obs_space is BOUNDED_VECTOR:
        replay["observation"] = replay["observation"].clamp(-1, 1)
    report = check_world_model_env(
        to_world_model(model, observation_mode=mode),
        ReplayStartStates(replay, 2),
        max_episode_steps=6,
        num_envs=2,
        steps=12,
    )
    assert set(report.values()) == {"ok"}
