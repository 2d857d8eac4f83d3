"""Agent registry, the real-env evaluator, and the built-in random and SB3 adapters."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wmenv.benchmarks.adapters import (
    AgentAdapter,
    RandomAgent,
    RealEnvEvaluator,
    SB3Agent,
    detect_sb3_algorithm,
    get_agent,
    list_agents,
    make_real_env,
)
from wmenv.core.errors import (
    CheckpointError,
    ConfigError,
    UnknownEnvError,
    UnknownNameError,
    UnsupportedSpaceError,
)


def test_builtins_registered_and_aliases_resolve() -> None:
    assert {"random", "sb3"} <= set(list_agents())
    assert isinstance(get_agent("uniform", env_id="CartPole-v1"), RandomAgent)
    assert isinstance(get_agent("stable-baselines3", env_id="CartPole-v1"), SB3Agent)


def test_unknown_agent_lists_registered_ones() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown agent 'randm'; did you mean 'random'.*Known agents: .*sb3"
    ):
        get_agent("randm", env_id="CartPole-v1")


def test_register_agent_refuses_duplicates_unless_overwrite(registry: Any) -> None:
    registry.register_agent("mine", RandomAgent, aliases=("my-agent",))
    assert "mine" in registry.list_agents() and "my-agent" not in registry.list_agents()
    assert isinstance(registry.get_agent("my-agent", env_id="CartPole-v1"), RandomAgent)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register_agent("other", RandomAgent, aliases=("mine",))
    registry.register_agent("mine", SB3Agent, overwrite=True)
    assert isinstance(registry.get_agent("mine", env_id="CartPole-v1"), SB3Agent)


def test_random_agent_conforms_and_is_seeded() -> None:
    agent = RandomAgent("CartPole-v1")
    assert isinstance(agent, AgentAdapter)
    ticks: list[int] = []
    a = agent.evaluate(3, seed=5, progress=ticks.append)
    b = agent.evaluate(3, seed=5)
    agent.close()
    assert a == b and ticks == [1, 1, 1]
    assert len(a["episode_returns"]) == len(a["episode_lengths"]) == 3
    assert all(r == n for r, n in zip(a["episode_returns"], a["episode_lengths"]))  # CartPole: +1 per step


def test_evaluator_seeds_episode_i_with_seed_plus_i() -> None:
    starts: list[int | None] = []
    ev = RealEnvEvaluator("CartPole-v1")
    first = ev.run(lambda obs: int(obs[2] > 0), 3, seed=10, on_episode_start=starts.append)
    again = ev.run(lambda obs: int(obs[2] > 0), 1, seed=11)
    ev.close()
    assert starts == [10, 11, 12]
    assert again["episode_returns"] == first["episode_returns"][1:2]
    with pytest.raises(ConfigError, match="num_episodes"):
        ev.run(lambda obs: 0, 0)


def test_evaluator_applies_observation_wrapper() -> None:
    import gymnasium as gym

    seen: list[Any] = []
    ev = RealEnvEvaluator(
        "CartPole-v1",
        observation_wrapper=lambda env: gym.wrappers.TransformObservation(
            env, lambda o: o * 0.0, env.observation_space
        ),
    )
    ev.run(lambda obs: seen.append(obs) or 0, 1, seed=0)
    ev.close()
    assert all(np.all(o == 0) for o in seen)


def test_unknown_env_id_suggests_close_matches() -> None:
    with pytest.raises(UnknownEnvError, match="CartPole-v1"):
        make_real_env("CartPole-v9")


def test_sb3_adapter_detects_loads_and_evaluates(ppo_cartpole: Path, tmp_path: Path) -> None:
    from stable_baselines3 import A2C, DQN

    assert detect_sb3_algorithm(ppo_cartpole) == "PPO"
    A2C("MlpPolicy", "CartPole-v1", device="cpu").save(tmp_path / "a2c.zip")
    DQN("MlpPolicy", "CartPole-v1", device="cpu", learning_starts=0, buffer_size=100).save(
        tmp_path / "dqn.zip"
    )
    assert detect_sb3_algorithm(tmp_path / "a2c.zip") == "A2C"
    assert detect_sb3_algorithm(tmp_path / "dqn.zip") == "DQN"
    agent = SB3Agent("CartPole-v1")
    agent.load_checkpoint(ppo_cartpole)
    res = agent.evaluate(2, seed=0)
    assert agent.algo == "PPO" and len(res["episode_returns"]) == 2
    assert res == agent.evaluate(2, seed=0)
    agent.close()


def test_sb3_adapter_errors(ppo_cartpole: Path, tmp_path: Path) -> None:
    agent = SB3Agent("CartPole-v1")
    with pytest.raises(CheckpointError, match="call load_checkpoint"):
        agent.evaluate(1)
    with pytest.raises(CheckpointError, match="does not exist"):
        agent.load_checkpoint(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_text("not a zip")
    with pytest.raises(CheckpointError, match="not a Stable-Baselines3"):
        agent.load_checkpoint(tmp_path / "junk.zip")
    with zipfile.ZipFile(tmp_path / "nodata.zip", "w") as zf:
        zf.writestr("other", "x")
    with pytest.raises(CheckpointError, match="not a Stable-Baselines3"):
        agent.load_checkpoint(tmp_path / "nodata.zip")
    with pytest.raises(UnknownNameError, match="SB3 algorithm"):
        SB3Agent("CartPole-v1", algo="PPG")
    other = SB3Agent("Acrobot-v1")  # 6-D observations, policy expects CartPole's 4
    with pytest.raises(UnsupportedSpaceError, match="shape \\(4,\\).*observation_wrapper"):
        other.load_checkpoint(ppo_cartpole)  # refused at load: the saved shape is checked first
    other.close()


def test_sb3_world_model_hook_needs_a_run_or_a_wrapper() -> None:
    with pytest.raises(CheckpointError, match="no checkpoint at wm.pt"):
        SB3Agent("CartPole-v1", world_model="wm.pt")
    agent = SB3Agent("CartPole-v1", world_model="wm.pt", observation_wrapper=lambda env: env)
    assert agent._eval.observation_wrapper is not None


def test_sb3_zip_with_a_pickle_payload_loads_without_running_it(tmp_path: Path, ppo_cartpole: Path) -> None:
    """SB3's own load would unpickle the zip's ':serialized:' entries; wmenv never does."""
    import base64
    import json
    import os
    import zipfile

    import cloudpickle

    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    blob = base64.b64encode(cloudpickle.dumps(Payload())).decode()
    with zipfile.ZipFile(ppo_cartpole) as z:
        files = {n: z.read(n) for n in z.namelist()}
    data = json.loads(files["data"])
    data["policy_class"][":serialized:"] = blob
    data["observation_space"][":serialized:"] = blob
    data["extra"] = {":type:": "x", ":serialized:": blob}
    files["data"] = json.dumps(data).encode()
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as w:
        for name, content in files.items():
            w.writestr(name, content)
    agent = SB3Agent("CartPole-v1")
    agent.load_checkpoint(evil)
    assert len(agent.evaluate(1, seed=0)["episode_returns"]) == 1
    assert not marker.exists()
    data["policy_class"]["__init__"] = "<function Payload.__init__ at 0x0>"  # a class outside the allow-list
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(evil, "w") as w:
        for name, content in files.items():
            w.writestr(name, content)
    with pytest.raises(CheckpointError, match="not one of PPO's own policies"):
        SB3Agent("CartPole-v1").load_checkpoint(evil)
    assert not marker.exists()
