"""One tiny CartPole world model for every integration and example test (trained once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `integrations` and `examples` live next to the package


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a tiny Dreamer CartPole world model (60 updates on 600 random steps).

    Kept under the session's base temp dir, so the ``tests/examples`` conftest, which imports this
    fixture, reuses the same run instead of training a second one.
    """
    from integrations.common import train_world_model

    torch.set_num_threads(1)
    run = tmp_path_factory.getbasetemp() / "tiny_cartpole_world_model"
    if not (run / "checkpoint.pt").is_file():
        train_world_model(run, "CartPole-v1", updates=60, seed_steps=600, batch_size=8, seq_len=16)
    return run
