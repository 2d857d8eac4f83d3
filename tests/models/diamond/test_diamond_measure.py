"""wmenv.models.diamond.measure: the speed / fidelity table of the number of denoising steps."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from wmenv.models.diamond.measure import format_table, one_step_transitions, sampling_tradeoff
from wmenv.registry import create_model
from wmenv.testing import random_replay_batch

MINATAR = gym.spaces.Box(0, 1, (10, 10, 4), np.uint8)
ACTIONS = gym.spaces.Discrete(3)


def test_one_step_transitions_stay_inside_episodes():
    rows = random_replay_batch(MINATAR, ACTIONS, 1, 40).reshape(-1)  # episodes start at rows 0 and 20
    ctx, action, target = one_step_transitions(rows, 2)
    assert ctx.batch_size == (36, 2) and action.shape == (36,) and target.shape == (36, 10, 10, 4)
    assert not ctx["is_first"][:, 1].any()  # the target's episode started no later than the last context frame
    ctx, _, _ = one_step_transitions(rows, 2, limit=5)
    assert ctx.batch_size == (5, 2)


def test_sampling_tradeoff_table():
    torch.manual_seed(0)
    model = create_model("diamond", observation_space=MINATAR, action_space=ACTIONS, preset="tiny")
    rows = random_replay_batch(MINATAR, ACTIONS, 1, 40).reshape(-1)
    rows["observation"] = rows["observation"] % 2
    res = sampling_tradeoff(model, rows, (1, 2), num_envs=4, speed_steps=2, transitions=16)
    assert [r["sampling_steps"] for r in res] == [1, 2]
    for r in res:
        assert r["steps_per_s"] > 0 and 0 <= r["cell_error"] <= 1 and 0 <= r["frame_exact"] <= 1
        assert r["mae"] == r["cell_error"]  # binary frames: every wrong cell is off by the whole range
    text = format_table(res, "title")
    assert text.startswith("title") and "| 2 |" in text and "copying the last real frame" in text
