import pytest

from wmenv.config import apply_overrides, config_from_dict, config_to_dict, list_presets
from wmenv.core.errors import ConfigError
from wmenv.models.dreamer import DreamerConfig
from wmenv.registry import create_config, get_model_spec, list_models


def test_presets_exist_and_are_valid() -> None:
    assert {"tiny", "small", "medium", "large", "xlarge"} <= set(list_presets(DreamerConfig))
    assert DreamerConfig.medium().rssm.deter == 1024
    assert DreamerConfig.xlarge().mlp_units == 1024
    assert DreamerConfig.tiny().rssm.stoch == 8


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "v3",
            {
                "reward_head": "twohot",
                "symlog_inputs": True,
                "kl.dyn_scale": 0.5,
                "kl.rep_scale": 0.1,
                "kl.free_bits": 1.0,
                "rssm.unimix": 0.01,
                "behavior.return_norm": True,
            },
        ),
        (
            "v2",
            {
                "reward_head": "mse",
                "symlog_inputs": False,
                "kl.dyn_scale": 0.8,
                "kl.balanced": True,
                "rssm.unimix": 0.0,
            },
        ),
        ("v1", {"reward_head": "mse", "kl.free_bits": 3.0, "kl.balanced": False, "norm": False}),
    ],
)
def test_version_fills_defaults(version: str, expected: dict) -> None:
    cfg = apply_overrides(DreamerConfig.tiny(), {"version": version}).resolved()
    for key, value in expected.items():
        obj = cfg
        for part in key.split("."):
            obj = getattr(obj, part)
        assert obj == value, key


def test_explicit_value_beats_version_default() -> None:
    cfg = DreamerConfig.tiny()
    assert cfg.resolved().optim.model_lr == 1e-3  # the tiny preset sets it
    cfg = apply_overrides(cfg, {"version": "v1", "kl.free_bits": "0.5"}).resolved()
    assert cfg.kl.free_bits == 0.5


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"rssm.deter": 0}, r"rssm\.deter: expected an int >= 1, got 0"),
        ({"rssm.classes": 1}, r"rssm\.classes: expected an int >= 2"),
        ({"rssm.unimix": 1.5}, r"rssm\.unimix: expected a float in \[0, 1\)"),
        ({"behavior.gamma": 1.5}, r"behavior\.gamma: expected a float in \(0, 1\]"),
        ({"version": "v4"}, r"expected one of \['v1', 'v2', 'v3'\]"),
        ({"mlp_units": 0}, r"mlp_units: expected an int >= 1"),
        ({"nope": 1}, r"unknown config key 'nope'"),
    ],
)
def test_validation_errors(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(DreamerConfig.tiny(), overrides)


def test_direct_construction_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"terminal_weight: expected a float >= 0, got -1"):
        DreamerConfig(terminal_weight=-1)


def test_roundtrip_dict() -> None:
    cfg = DreamerConfig.small()
    assert config_from_dict(DreamerConfig, config_to_dict(cfg)) == cfg


def test_registry_variants() -> None:
    names = set(list_models())
    assert {
        "dreamer",
        "dreamerv1",
        "dreamerv2",
        "dreamerv3",
        "dreamer-wm",
        "dreamerv1-wm",
        "dreamerv2-wm",
    } <= names
    assert create_config("dreamerv1-wm").version == "v1"
    assert create_config("dreamerv3-wm").version == "v3"
    assert create_config("dreamerv2").version == "v2"
    assert create_config("dreamerv1").version == "v1"
    assert create_config("dreamer").version == "v3"
    for name in ("dreamer", "dreamerv1", "dreamer-wm"):
        spec = get_model_spec(name)
        assert spec.family == "dreamer"
        assert callable(spec.to_world_model)
