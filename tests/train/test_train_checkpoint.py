"""Checkpoint atomicity, plain-data content, and every CheckpointError path."""

from __future__ import annotations

import dataclasses
import os

import gymnasium as gym
import numpy as np
import pytest
import torch

from wmenv.core.errors import CheckpointError
from wmenv.registry import create_model
from wmenv.train import checkpoint as ckpt_mod
from wmenv.train import load_checkpoint, load_model, save_checkpoint, space_from_dict, space_to_dict

from .testfamily import MLPConfig

OBS = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
ACT = gym.spaces.Discrete(2)


class Payload:
    """A custom class: a pickle of it carries code references."""

    def __init__(self) -> None:
        self.x = 1


def _save(path, config=None, **kw):
    config = config or MLPConfig.tiny()
    model = create_model("test_mlp", observation_space=OBS, action_space=ACT, config=config)
    kw.setdefault("family", "test")
    return model, save_checkpoint(
        path,
        model_name="test_mlp",
        config=config,
        model=model,
        step=7,
        observation_space=OBS,
        action_space=ACT,
        **kw,
    )


@pytest.mark.parametrize(
    "space",
    [
        gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
        gym.spaces.Box(np.array([-1.0, -2.0]), np.array([1.0, np.inf]), dtype=np.float64),
        gym.spaces.Discrete(5, start=1),
        gym.spaces.MultiDiscrete([3, 4]),
        gym.spaces.MultiBinary(6),
        gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(-1, 1, (2,))}),
        gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiBinary([2, 2]))),
    ],
)
def test_space_roundtrip(space):
    data = space_to_dict(space)
    back = space_from_dict(data)
    assert back == space and back.dtype == space.dtype


def test_roundtrip_and_content_is_plain(tmp_path):
    model, path = _save(tmp_path / "c.pt", extra={"note": "hi", "rng": torch.get_rng_state()})
    data = torch.load(path, weights_only=True)  # loads without any allow-listing
    assert data["format_version"] == ckpt_mod.FORMAT_VERSION and isinstance(data["wmenv_version"], str)
    assert data["observation_space"]["type"] == "Box" and data["step"] == 7
    loaded, meta = load_model(path, expected_family="test")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert meta["config_obj"] == MLPConfig.tiny() and meta["extra"]["note"] == "hi"


def test_save_is_atomic(tmp_path, monkeypatch):
    _, path = _save(tmp_path / "c.pt")
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        _save(tmp_path / "c.pt", config=MLPConfig(hidden=8))
    assert path.read_bytes() == before  # the old checkpoint is untouched
    assert os.listdir(tmp_path) == ["c.pt"]  # and no temporary file is left behind


def test_save_refuses_non_plain_extra(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint\['extra'\]\['arr'\] is a numpy.ndarray"):
        _save(tmp_path / "c.pt", extra={"arr": np.zeros(3)})
    assert not (tmp_path / "c.pt").exists()


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=f"no checkpoint file at {tmp_path / 'nope.pt'}"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path):
    _, path = _save(tmp_path / "c.pt")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match=r"Payload.*can run code.*weights_only=True") as info:
        load_checkpoint(path)
    assert "not tensors or plain data" in str(info.value)


def test_not_a_wmenv_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="not a wmenv checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_wrong_format_version(tmp_path):
    _, path = _save(tmp_path / "c.pt")
    data = torch.load(path, weights_only=True)
    data["format_version"] = 999
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="format_version 999, this wmenv .* reads format_version 1"):
        load_checkpoint(path)


def test_family_mismatch(tmp_path):
    _, path = _save(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="is of family 'test', expected 'dreamer'"):
        load_model(path, expected_family="dreamer")


def test_shape_mismatch_named(tmp_path):
    _, path = _save(tmp_path / "c.pt", config=MLPConfig(hidden=16))
    data = torch.load(path, weights_only=True)
    data["config"] = dataclasses.asdict(MLPConfig(hidden=24))  # config says 24, weights are 16 wide
    data["model"].pop("reward_head.bias")
    torch.save(data, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    msg = str(info.value)
    assert "body.0.weight: checkpoint (16, 6) vs model (24, 6)" in msg
    assert "reward_head.bias: missing from checkpoint" in msg


def test_bad_config_in_checkpoint(tmp_path):
    _, path = _save(tmp_path / "c.pt")
    data = torch.load(path, weights_only=True)
    data["config"]["hidden"] = -3
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="config does not fit MLPConfig"):
        load_model(path)
