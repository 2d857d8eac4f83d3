"""The backend registry: names and aliases, auto selection, listing, errors, user backends."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from wmenv.core.errors import ConfigError, UnknownEnvError
from wmenv.envs.backends import registry
from wmenv.envs.make import (
    EnvBackendSpec,
    describe_protocol,
    get_env_backend_spec,
    list_env_backends,
    list_envs,
    make_env,
    register_env_backend,
    resolve_env_backend,
)


def test_builtin_backends_in_auto_order() -> None:
    assert list_env_backends() == ["mujoco", "ale", "dmc", "minatar", "gymnasium"]


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("gym", "gymnasium"),
        ("gymnasium", "gymnasium"),
        ("ale", "ale"),
        ("ATARI", "ale"),
        ("dmc", "dmc"),
        ("dm_control", "dmc"),
        ("dm-control", "dmc"),
        ("mujoco", "mujoco"),
        ("mjcf", "mujoco"),
    ],
)
def test_aliases_resolve(alias: str, name: str) -> None:
    spec = get_env_backend_spec(alias)
    assert spec.name == name
    assert spec.description


def test_spec_is_frozen() -> None:
    spec = get_env_backend_spec("dmc")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env_id", "backend"),
    [
        ("CartPole-v1", "gymnasium"),
        ("HalfCheetah-v5", "gymnasium"),
        ("CarRacing-v3", "gymnasium"),
        ("ALE/Pong-v5", "ale"),
        ("Pong-v5", "ale"),
        ("PongNoFrameskip-v4", "ale"),
        ("walker-walk", "dmc"),
        ("cup-catch", "dmc"),
        ("dmc/cheetah-run", "dmc"),
        ("dm_control/cartpole-swingup-v0", "dmc"),
        ("some/dir/model.xml", "mujoco"),
    ],
)
def test_auto_selection(env_id: str, backend: str) -> None:
    assert resolve_env_backend(env_id).name == backend


def test_unknown_env_id_suggests_close_matches() -> None:
    with pytest.raises(
        UnknownEnvError, match=r"unknown env id 'CartPol-v1'; did you mean 'CartPole-v1'"
    ) as info:
        make_env("CartPol-v1")
    assert isinstance(info.value, KeyError)
    assert "CartPole-v1" in info.value.close_matches


def test_unknown_dmc_like_id_suggests_task() -> None:
    with pytest.raises(UnknownEnvError, match=r"did you mean 'walker-walk'"):
        make_env("walker-wlak")


def test_unknown_backend_lists_backends() -> None:
    with pytest.raises(
        UnknownEnvError, match=r"unknown env backend 'bullet'.*Known env backends: .*dmc.*gymnasium"
    ):
        make_env("CartPole-v1", backend="bullet")


def test_bad_env_id_type() -> None:
    with pytest.raises(ConfigError, match="env_id must be a non-empty string or path, got 3"):
        make_env(3)  # type: ignore[arg-type]


def test_list_envs_covers_every_backend() -> None:
    ids = list_envs()
    for env_id in ("CartPole-v1", "HalfCheetah-v5", "ALE/Pong-v5", "Pong-v5", "walker-walk", "cup-catch"):
        assert env_id in ids
    assert ids == sorted(set(ids))
    assert "ALE/Pong-v5" not in list_envs("gym")
    assert all("-" in env_id and "/" not in env_id for env_id in list_envs("dmc"))
    assert list_envs("mujoco") == []


def test_path_objects_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(UnknownEnvError, match="unknown MJCF file"):
        make_env(tmp_path / "missing.xml")


@pytest.fixture
def isolated_registry() -> Any:
    """Lets a test register backends without leaking them into other tests."""
    saved = registry.BACKENDS.snapshot()
    yield
    registry.BACKENDS.restore(saved)


def _toy_spec(**overrides: object) -> EnvBackendSpec:
    fields: dict[str, object] = {
        "name": "toy",
        "aliases": ("toys",),
        "description": "CartPole under another name.",
        "make": lambda env_id, **kwargs: gym.make("CartPole-v1", **kwargs),
        "list_envs": lambda: ["Toy-v0"],
        "matches": lambda env_id: env_id == "Toy-v0",
    }
    fields.update(overrides)
    return EnvBackendSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.usefixtures("isolated_registry")
def test_register_user_backend() -> None:
    register_env_backend(_toy_spec())
    assert list_env_backends()[-1] == "toy"
    assert get_env_backend_spec("TOYS").name == "toy"
    assert "Toy-v0" in list_envs()
    env = make_env("Toy-v0", max_episode_steps=7)
    assert env.spec is not None and env.spec.max_episode_steps == 7
    with pytest.raises(ConfigError, match=r"already registered.*replace=True"):
        register_env_backend(_toy_spec())
    register_env_backend(_toy_spec(aliases=()), replace=True)
    with pytest.raises(UnknownEnvError):
        get_env_backend_spec("toys")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "Toy"}, "must be a non-empty lower-case string"),
        ({"name": "auto"}, "reserved"),
        ({"aliases": "toys"}, "must be a tuple of strings"),
        ({"make": None}, "EnvBackendSpec.make must be callable"),
    ],
)
def test_spec_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _toy_spec(**overrides)


def test_register_rejects_non_spec() -> None:
    with pytest.raises(ConfigError, match="expected an EnvBackendSpec, got dict"):
        register_env_backend({"name": "toy"})  # type: ignore[arg-type]


def test_describe_protocol_of_foreign_env() -> None:
    protocol = describe_protocol(gym.make("CartPole-v1"))
    assert protocol == {"backend": None, "env_id": "CartPole-v1", "max_episode_steps": 500, "kwargs": {}}


def test_describe_protocol_survives_extra_wrappers_and_is_a_copy() -> None:
    env = gym.wrappers.RecordEpisodeStatistics(make_env("CartPole-v1"))
    protocol = describe_protocol(env)
    assert protocol["backend"] == "gymnasium"
    protocol["env_id"] = "changed"
    assert describe_protocol(env)["env_id"] == "CartPole-v1"
