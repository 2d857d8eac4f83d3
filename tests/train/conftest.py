"""Fixtures of the train tests: the registered test family and small collected replays."""

from __future__ import annotations

import pytest
import torch

from .testfamily import register


@pytest.fixture(autouse=True, scope="session")
def _test_family():
    """Register the ``test_mlp`` family once per session."""
    return register()


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models train far faster single-threaded (no oversubscription on busy CI machines)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cartpole_replay(tmp_path):
    """A replay of 600 random CartPole steps from 2 sub-envs (seeded)."""
    from wmenv.train import collect, make_replay

    replay = make_replay(5000, tmp_path / "scratch", slice_len=8, seed=0)
    collect("CartPole-v1", 600, num_envs=2, seed=0, replay=replay, progress=False)
    return replay
