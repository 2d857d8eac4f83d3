"""One tiny CartPole world model for every integration test (trained once per session).

The recipes import ``integrations.common``, which is not installed: like the recipes themselves
(``python -m integrations.sb3.ppo_latent``), these tests run from the repository root, with it on
``sys.path`` (``python -m pytest``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a tiny Dreamer CartPole world model (60 updates on 600 random steps).

    Kept under the session's base temp dir, where the ``tests/examples`` fixture of the same name
    looks too, so a session running both trains it once.
    """
    from integrations.common import train_tiny_world_model

    torch.set_num_threads(1)
    run = tmp_path_factory.getbasetemp() / "tiny_cartpole_world_model"
    if not (run / "checkpoint.pt").is_file():
        train_tiny_world_model(run, "CartPole-v1", updates=60, seed_steps=600)
    return run
