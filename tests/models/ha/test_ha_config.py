import dataclasses

import pytest

from tests.models.ha.conftest import DISCRETE, IMAGE, VECTOR, micro
from wmenv.config import apply_overrides, config_from_dict, config_to_dict
from wmenv.core.errors import ConfigError, UnsupportedSpaceError
from wmenv.models.ha import (
    CMAConfig,
    ControllerConfig,
    MDNRNNConfig,
    ScheduleConfig,
    VAEConfig,
    WorldModelsAgent,
    WorldModelsConfig,
)
from wmenv.registry import create_config, get_model_spec


def test_presets_and_paper_sizes() -> None:
    paper = WorldModelsConfig.paper()
    assert (paper.z_dim, paper.rnn.hidden, paper.rnn.n_mixtures, paper.cma.popsize) == (32, 256, 5, 64)
    assert paper.cma.episodes_per_candidate == 16 and paper.vae.conv_depth == 32
    default = WorldModelsConfig()
    assert (default.z_dim, default.rnn.n_mixtures, default.temperature, default.vae.kind) == (32, 5, 1.0, "auto")
    for preset in ("tiny", "small", "paper"):
        cfg = create_config("world-models", preset)
        assert config_from_dict(WorldModelsConfig, config_to_dict(cfg)) == cfg


def test_every_field_has_a_docstring() -> None:
    import inspect

    for cls in (WorldModelsConfig, VAEConfig, MDNRNNConfig, CMAConfig, ControllerConfig, ScheduleConfig):
        src = inspect.getsource(cls)
        for f in dataclasses.fields(cls):
            after = src.split(f"    {f.name}:", 1)[1].split("\n", 2)[1]
            assert after.strip().startswith('"""'), f"{cls.__name__}.{f.name} has no docstring"


def test_registry_alias() -> None:
    assert get_model_spec("ha") is get_model_spec("world-models")
    assert get_model_spec("ha").family == "world-models"
    assert callable(get_model_spec("ha").to_world_model)


@pytest.mark.parametrize("popsize", [0, 1, -3])
def test_cma_population_too_small(popsize: int) -> None:
    with pytest.raises(ConfigError, match=r"population of at least 2 candidates, got .*cma.popsize=2"):
        CMAConfig(popsize=popsize)
    with pytest.raises(ConfigError, match="at least 2 candidates"):
        create_config("world-models", "tiny", {"cma.popsize": "1"})


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"z_dim": 0}, r"z_dim: expected an int >= 1, got 0"),
        ({"temperature": 0.0}, r"temperature: expected a float > 0"),
        ({"done_threshold": 1.5}, r"done_threshold: expected a float in \(0, 1\)"),
        ({"vae.kind": "vit"}, r"expected one of \['auto', 'conv', 'mlp'\]"),
        ({"vae.kl_tolerance": -1}, r"vae.kl_tolerance: expected a float >= 0"),
        ({"rnn.n_mixtures": 0}, r"rnn.n_mixtures: expected an int >= 1"),
        ({"rnn.grad_clip": 0}, r"rnn.grad_clip: expected > 0 or None"),
        ({"cma.sigma0": 0}, r"cma.sigma0: expected a float > 0"),
        ({"cma.where": "moon"}, r"expected one of \['dream', 'real'\]"),
        ({"schedule.rnn_seq_len": 1}, r"one transition needs two rows"),
        ({"schedule.iterations": -1}, r"schedule.iterations: expected an int >= 0"),
        ({"schedule.explore_epsilon": 1.5}, r"schedule.explore_epsilon: expected a float in \[0, 1\]"),
        ({"cma.init": "random"}, r"expected one of \['current', 'zeros'\]"),
        ({"nope": 1}, r"unknown config key 'nope'"),
    ],
)
def test_invalid_config_errors(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(WorldModelsConfig.tiny(), overrides)


def test_vae_kind_must_fit_the_space() -> None:
    with pytest.raises(ConfigError, match="vae.kind='conv' does not fit vector observations"):
        WorldModelsAgent(micro(vae=VAEConfig(kind="conv")), VECTOR, DISCRETE)
    with pytest.raises(ConfigError, match="vae.kind='mlp' does not fit image observations"):
        WorldModelsAgent(micro(vae=VAEConfig(kind="mlp")), IMAGE, DISCRETE)


def test_unsupported_space_names_the_fix() -> None:
    import gymnasium as gym
    import numpy as np

    with pytest.raises(UnsupportedSpaceError, match=r"World Models cannot model .*gymnasium.wrappers.ResizeObservation"):
        WorldModelsAgent(micro(), gym.spaces.Box(0, 255, (96, 96, 3), np.uint8), DISCRETE)
