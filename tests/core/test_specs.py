"""TorchRL spec ↔ Gymnasium space conversions."""

import gymnasium as gym
import numpy as np
import pytest

from wmenv.core import UnsupportedSpaceError, space_to_spec, spec_to_space


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Discrete(3),
        gym.spaces.Box(-1.0, 1.0, (2,), np.float32),
        gym.spaces.Box(-np.inf, np.inf, (5,), np.float32),
        gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
        gym.spaces.MultiDiscrete([2, 3]),
        gym.spaces.MultiBinary(4),
        gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(0.0, 1.0, (3,), np.float32)}),
    ],
)
def test_roundtrip(space):
    assert spec_to_space(space_to_spec(space)) == space


def test_unsupported_space():
    with pytest.raises(UnsupportedSpaceError, match="supported: Discrete"):
        space_to_spec(gym.spaces.Text(5))
