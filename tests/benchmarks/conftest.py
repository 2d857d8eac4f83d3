"""Fixtures of the benchmark tests: an isolated agent registry, fake agents and tiny SB3 models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wmenv.benchmarks import adapters
from wmenv.benchmarks.adapters import RandomAgent


class TrainableRandom(RandomAgent):
    """A random agent with a ``train`` method that only records its calls."""

    name = "trainable"
    calls: list[dict[str, Any]] = []

    def train(
        self,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        seed: int = 0,
        log_dir: str | None = None,
    ):
        type(self).calls.append({"steps": steps, "epochs": epochs, "seed": seed, "log_dir": log_dir})


@pytest.fixture
def registry() -> Any:
    """The adapters module with its agent registry holding the built-ins only (restored after the test).

    Families' agents are hidden, so ``--all-agents`` stays fast here.
    """
    builtins = ("random", "sb3")
    saved = adapters.AGENTS.snapshot()
    entries, aliases = saved
    adapters.AGENTS.restore(
        ({k: v for k, v in entries.items() if k in builtins}, {a: t for a, t in aliases.items() if t in builtins})
    )
    TrainableRandom.calls = []
    yield adapters
    adapters.AGENTS.restore(saved)


@pytest.fixture
def trainable(registry: Any) -> type[TrainableRandom]:
    """Registers ``trainable`` (a random agent with a recording ``train``) for one test."""
    registry.register_agent("trainable", TrainableRandom)
    return TrainableRandom


@pytest.fixture(scope="session")
def ppo_cartpole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained SB3 PPO CartPole model saved as a .zip."""
    from stable_baselines3 import PPO

    path = tmp_path_factory.mktemp("sb3") / "ppo_cartpole.zip"
    PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, device="cpu", seed=0).save(path)
    return path
