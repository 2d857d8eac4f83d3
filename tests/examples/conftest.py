"""One tiny CartPole world model for the examples' tests (trained once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run directory of a tiny Dreamer CartPole world model (60 updates on 600 random steps), trained
    with ``wmenv.train`` as the integrations' recipes train theirs (``integrations.common``).

    Kept under the session's base temp dir, where the ``tests/integrations`` fixture of the same name
    looks too, so a session running both trains it once.
    """
    from wmenv.train import Schedule, train

    torch.set_num_threads(1)
    run = tmp_path_factory.getbasetemp() / "tiny_cartpole_world_model"
    if not (run / "checkpoint.pt").is_file():
        train(
            "dreamer-wm",
            "CartPole-v1",
            steps=60,
            preset="debug",  # tiny with deter 64, MLPs 64: seconds on a CPU
            schedule=Schedule(seed_steps=600),
            trainer={
                "batch_size": 8,
                "seq_len": 16,
                "lr": 1e-3,
                "log_every": 25,
                "checkpoint_every": 0,
                "tensorboard": False,
            },
            run_dir=run,
            progress=False,
        )
    return run
