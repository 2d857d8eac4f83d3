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
def registry(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The adapters module with a private registry of the built-ins only (restored after the test).

    Families registered elsewhere in the session are hidden, so ``--all-agents`` stays fast here.
    """
    builtins = ("random", "sb3")
    monkeypatch.setattr(adapters, "_REGISTRY", {k: adapters._REGISTRY[k] for k in builtins})
    monkeypatch.setattr(adapters, "_ALIASES", {k: v for k, v in adapters._ALIASES.items() if v in builtins})
    TrainableRandom.calls = []
    return adapters


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
